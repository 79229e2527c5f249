"""Tests for snippet selection: what is chosen, in which order, within which budget."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from lsp_server.repo.context import (
    RankOptions,
    RepoContext,
    RepoSelection,
    definitions,
    repo_budget,
    resolution,
    similarity,
)
from lsp_server.repo.context import files as file_candidates
from lsp_server.repo.context.base import Snippet
from lsp_server.repo.context.examples import UsageExamples
from lsp_server.repo.index import WorkspaceIndex


def count(text: str) -> int:
    """A stand-in tokenizer: about four characters per token."""
    return len(text) // 4 + 1


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


BASE = '''"""Base shapes."""


class Shape:
    """Anything with an area."""

    name: str = "shape"

    def area(self) -> float:
        """The area."""
        raise NotImplementedError
'''

GEOMETRY = (
    '''"""Geometry helpers."""
from .base import Shape

PI = 3.14159


class Circle(Shape):
    """A circle."""

    radius: float

    def area(self) -> float:
        return PI * self.radius**2


def distance(a, b):
    """Euclidean distance between two points."""
    dx = a[0] - b[0]
    dy = a[1] - b[1]
    return (dx * dx + dy * dy) ** 0.5
'''
    + "\n".join(f"\n\ndef helper_{i}(x):\n    return x + {i}" for i in range(40))
    + "\n"
)

MAIN = """from .geometry import Circle, distance
from .base import Shape
import os


def report(points):
    first = points[0]
    total = 0.0
    for p in points[1:]:
        total += 1
    return total
"""


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[WorkspaceIndex, Path]:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/base.py", BASE)
    write(tmp_path, "pkg/geometry.py", GEOMETRY)
    main = write(tmp_path, "pkg/main.py", MAIN)
    index = WorkspaceIndex([tmp_path])
    index.build()
    return index, main


def select(
    index: WorkspaceIndex,
    main: Path,
    text: str,
    offset: int,
    budget: int = 400,
    repo: RepoContext | None = None,
) -> tuple[tuple[str, str], ...]:
    """The files chosen (by ``repo``, or by a new, cold context over ``index``)."""
    repo = repo or RepoContext(index)
    return repo.select(str(main), text, offset, "python", budget, count).files


def files_at_end(root: Path, main: Path) -> dict[str, str]:
    """The repository block for a cursor at the end of ``main``, ``root`` indexed."""
    index = WorkspaceIndex([root])
    index.build()
    text = main.read_text()
    return dict(select(index, main, text, len(text)))


LOAD_ALL = "def load_all(cfg):\n    path = cfg.path\n    with open(path) as fh:\n"


def usage_examples(
    root: Path, contents: dict[str, str], current: str, names: tuple[str, ...]
) -> list[Snippet]:
    """The usage examples of ``names`` for ``current`` in a workspace of ``contents``."""
    for rel, text in contents.items():
        write(root, rel, text)
    index = WorkspaceIndex([root])
    index.build()
    return UsageExamples(RankOptions()).examples(index, current, names, [])


def test_imported_definitions_in_dependency_order(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, main = workspace
    offset = MAIN.index("        total += 1")
    files = select(index, main, MAIN, offset)
    paths = [p for p, _ in files]
    assert paths == ["pkg/base.py", "pkg/geometry.py"]  # geometry imports base: base first
    geometry = dict(files)["pkg/geometry.py"]
    # Imported but not used yet, so likely next: signature + docstring + body.
    assert "def distance(a, b):" in geometry and "Euclidean distance" in geometry
    assert "class Circle(Shape):" in geometry and "radius: float" in geometry
    assert "helper_39" not in geometry or len(geometry) < len(GEOMETRY)
    assert dict(files)["pkg/base.py"].startswith('"""Base shapes."""')  # small file: whole
    selection = RepoContext(index).select(str(main), MAIN, offset, "python", 400, count)
    assert selection.files == files
    assert selection.current == "pkg/main.py"  # as the prompt names it


def test_budget_is_respected(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, main = workspace
    offset = MAIN.index("        total += 1")
    for budget in (0, 20, 60, 150, 400, 2000):
        files = select(index, main, MAIN, offset, budget)
        used = sum(count(c) + count(p) + 4 for p, c in files)
        assert used <= budget
    nothing = RepoContext(index).select(str(main), MAIN, offset, "python", 0, count)
    assert nothing == RepoSelection((), None)


def test_stable_while_typing_on_a_line(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, main = workspace
    offset = MAIN.index("        total += 1") + len("        total += 1")
    before = select(index, main, MAIN, offset)
    typed = MAIN[:offset] + " * 2" + MAIN[offset:]
    assert select(index, main, typed, offset + 4) == before
    # Moving a line down inside the same block keeps the same context too.
    row_start = MAIN.index("    return total")
    assert select(index, main, MAIN, row_start) == before


def test_usage_near_cursor_brings_member_definitions(
    workspace: tuple[WorkspaceIndex, Path],
) -> None:
    index, main = workspace
    text = MAIN.replace(
        "        total += 1",
        "        total += distance(first, p)\n        c = Circle()\n        c.area()",
    )
    files = dict(select(index, main, text, text.index("c.area()"), 200))
    assert "def distance(a, b):" in files["pkg/geometry.py"]


def test_snippets_repeating_the_current_file_are_dropped(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "def shared(x):\n    value = x * 2\n    value += 3\n    return value\n")
    main = write(
        tmp_path,
        "b.py",
        "from a import shared\n\ndef shared_copy(x):\n"
        "    value = x * 2\n    value += 3\n    return value\n\n",
    )
    index = WorkspaceIndex([tmp_path])
    index.build()
    text = main.read_text()
    assert select(index, main, text, len(text)) == ()


def test_open_buffer_text_is_used(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, main = workspace
    base = main.parent / "base.py"
    index.set_open_document(base, BASE.replace("Anything with an area.", "Edited, not saved."))
    files = dict(select(index, main, MAIN, MAIN.index("        total += 1")))
    assert "Edited, not saved." in files["pkg/base.py"]


def test_similar_chunks_from_other_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        "other.py",
        "def unrelated():\n    pass\n\n\ndef load(cfg):\n    path = cfg.path\n"
        "    with open(path) as fh:\n        return parse_config(fh.read(), strict=cfg.strict)\n",
    )
    files = files_at_end(tmp_path, write(tmp_path, "main.py", LOAD_ALL))
    assert "parse_config" in files.get("other.py", "")


def test_a_chunk_that_stops_mid_file_says_the_file_goes_on(tmp_path: Path) -> None:
    load = (
        "def load(cfg):\n    path = cfg.path\n    with open(path) as fh:\n"
        "        return parse_config(fh.read(), strict=cfg.strict)\n"
    )
    rest = "".join(f"\n\ndef helper_{i}(x):\n    return x + {i}\n" for i in range(12))
    write(tmp_path, "long.py", load + rest)
    write(tmp_path, "short.py", "\n\n" + load)
    files = files_at_end(tmp_path, write(tmp_path, "main.py", LOAD_ALL))
    # Cut after 16 lines, mid-file: the reader is told that more follows.
    assert "parse_config" in files["long.py"]
    assert files["long.py"].endswith("\n# ...") and "helper_11" not in files["long.py"]
    # A chunk that reaches the end of its file gets no marker.
    assert files["short.py"].rstrip().endswith("strict=cfg.strict)")


def test_import_lines_do_not_make_a_file_similar(tmp_path: Path) -> None:
    header = "import numpy as np\nimport pandas as pd\nfrom scipy import stats\n\n"
    write(
        tmp_path,
        "sibling.py",
        header + "\ndef spread(xs):\n    mean = np.mean(xs)\n"
        "    dev = [(x - mean) ** 2 for x in xs]\n    return np.sqrt(sum(dev) / len(xs))\n",
    )
    main = write(tmp_path, "main.py", header + "\n")
    # The window holds nothing but imports: a file with the same imports is not "similar
    # code" (its import header is all that would match).
    assert "sibling.py" not in files_at_end(tmp_path, main)
    write(
        tmp_path,
        "main.py",
        header + "\ndef spread_all(xss):\n    return [np.sqrt(np.mean(xs)) for xs in xss]\n",
    )
    assert "sibling.py" in files_at_end(tmp_path, main)


def test_untitled_buffer_and_unknown_language(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, _ = workspace
    untitled = RepoContext(index).select(None, "x = 1\n", 3, None, 400, count)
    assert untitled == RepoSelection((), "untitled")


def test_concurrent_build_and_selection(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, main = workspace
    errors: list[BaseException] = []

    def rebuild() -> None:
        try:
            for _ in range(5):
                index.update_file(main.parent / "geometry.py")
                index.build()
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=rebuild)
    thread.start()
    for _ in range(20):
        select(index, main, MAIN, 50)
    thread.join()
    assert not errors


class _YieldingVersion(tuple[int, ...]):
    """A file version whose hashing lets other threads run: at every cache lookup."""

    def __hash__(self) -> int:
        time.sleep(0)  # gives up the GIL right in the middle of a lookup
        return super().__hash__()


class _YieldingIndex:
    """The index, its file versions yielding (see :class:`_YieldingVersion`)."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self._index = index

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)

    def file_version(self, display: str) -> tuple[int, ...] | None:
        version = self._index.file_version(display)
        return None if version is None else _YieldingVersion(version)


def test_clear_from_another_thread_never_breaks_a_selection(
    workspace: tuple[WorkspaceIndex, Path],
) -> None:
    """The prewarm thread and the worker share the caches; either may clear them.

    Every lookup hands the GIL to a thread that clears the caches in a loop, so a clear
    lands between each membership test and its read: a cache that tests ``key in d``
    and then reads ``d[key]`` outside a lock raises KeyError at once (the old pattern).
    """
    index, main = workspace
    repo = RepoContext(_YieldingIndex(index))  # type: ignore[arg-type]
    offset = MAIN.index("        total += 1")
    expected = select(index, main, MAIN, offset)
    stop = threading.Event()
    clears = 0

    def clearing() -> None:
        nonlocal clears
        while not stop.is_set():
            repo.clear()
            clears += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # the clearing thread gives the GIL back soon
    thread = threading.Thread(target=clearing)
    thread.start()
    try:
        for _ in range(10):
            assert select(index, main, MAIN, offset, repo=repo) == expected
            assert repo.prewarm(str(main), MAIN, "python", 400) >= 2
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert clears > 0


def test_repo_budget_share() -> None:
    assert repo_budget(2000) == 800
    assert repo_budget(2000, 0.9) == 2000 - 256  # the local window keeps its minimum
    assert repo_budget(200) == 0


def test_function_local_import_near_the_cursor_brings_its_definition(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/warnings.py", "def shadow():\n    pass\n")
    write(tmp_path, "pkg/util.py", 'def getcode(obj):\n    """Code of obj."""\n    return obj\n')
    text = (
        "import warnings\n\n\nclass K:\n    def f(self, meth):\n"
        "        from .util import getcode\n\n" + "        x = 1\n" * 30 + "        \n"
    )
    main = write(tmp_path, "pkg/main.py", text)
    index = WorkspaceIndex([tmp_path])
    index.build()
    files = dict(select(index, main, text, len(text) - 1))
    assert "def getcode(obj):" in files.get("pkg/util.py", "")
    assert "pkg/warnings.py" not in files  # ``import warnings`` is the standard library's


def test_similar_chunks_skip_very_large_files(tmp_path: Path) -> None:
    body = "def load(cfg):\n    path = cfg.path\n    return parse_config(path, strict=cfg.strict)\n"
    write(tmp_path, "big.py", body + "\n".join(f"X{i} = {i}" for i in range(9000)) + "\n")
    write(tmp_path, "small.py", body)
    files = files_at_end(
        tmp_path, write(tmp_path, "main.py", "def load_all(cfg):\n    path = cfg.path\n")
    )
    assert "parse_config" in files.get("small.py", "")
    assert "big.py" not in files


def test_most_relevant_file_goes_last_when_order_is_free(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/near.py", "def needed(x):\n    return x\n")
    write(tmp_path, "pkg/far.py", "def elsewhere(y):\n    return y\n")
    text = (
        "from .near import needed\nfrom .far import elsewhere\n\n\n"
        "def top():\n    return elsewhere(1)\n"
        + "\n" * 60
        + "def bottom():\n    value = needed(2)\n    "
    )
    main = write(tmp_path, "pkg/main.py", text)
    index = WorkspaceIndex([tmp_path])
    index.build()
    paths = [p for p, _ in select(index, main, text, len(text))]
    # ``needed`` is used at the cursor, ``elsewhere`` far from it: although ``near`` is
    # imported first and neither file imports the other, ``near`` goes nearest the code.
    assert paths == ["pkg/far.py", "pkg/near.py"]


def test_class_members_left_out_read_as_python_stubs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "shapes.py",
        "class Square:\n    side: float\n\n    def area(self) -> float:\n"
        "        return self.side**2\n\n    def grow(self, by: float) -> None:\n"
        "        self.side += by\n"
        # Too large to go in whole.
        + "".join(f"\n\ndef helper_{i}(x):\n    return x + {i}\n" for i in range(40)),
    )
    text = "from shapes import Square\n\n\ndef f():\n    s = Square()\n    s."
    main = write(tmp_path, "main.py", text)
    index = WorkspaceIndex([tmp_path])
    index.build()
    shown = dict(select(index, main, text, len(text)))["shapes.py"]
    assert "    def area(self) -> float: ..." in shown
    assert "return self.side" not in shown
    compile(shown, "shapes.py", "exec")


def test_resolved_imports_survive_edits_and_follow_new_files(
    workspace: tuple[WorkspaceIndex, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, main = workspace
    repo = RepoContext(index)
    calls: list[str] = []
    real = resolution.resolve_imports

    def counting(view, current, language, imports):  # type: ignore[no-untyped-def]
        calls.extend(ref.source for ref in imports)
        return real(view, current, language, imports)

    monkeypatch.setattr(resolution, "resolve_imports", counting)
    offset = MAIN.index("        total += 1")
    before = select(index, main, MAIN, offset, repo=repo)
    assert calls  # the first selection resolves the file's imports
    calls.clear()
    # Editing a file (here: the imported one, on disk) changes no path: nothing resolved again.
    write(main.parent.parent, "pkg/base.py", BASE + "\n\nSIDES = 0\n")
    index.update_file(main.parent / "base.py")
    edited = MAIN.replace("import os", "import os\nimport sys")
    select(index, main, edited, offset + len("\nimport sys"), repo=repo)
    assert calls == ["sys"]  # only the new import
    after = dict(select(index, main, MAIN, offset, repo=repo))
    assert after["pkg/base.py"].endswith("SIDES = 0")  # the edit itself is seen
    assert list(after) == [p for p, _ in before]
    # A new file can change what an import means: everything resolves again.
    calls.clear()
    write(main.parent.parent, "pkg/os.py", "def getcwd():\n    return '/'\n")
    index.update_file(main.parent / "os.py")
    select(index, main, MAIN, offset, repo=repo)
    assert "os" in calls
    # Cleared, the context resolves everything again.
    calls.clear()
    repo.clear()
    select(index, main, MAIN, offset, repo=repo)
    assert {".base", ".geometry", "os"} <= set(calls)


def test_prewarm_does_the_first_requests_work_ahead(
    workspace: tuple[WorkspaceIndex, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, main = workspace
    repo = RepoContext(index)
    offset = MAIN.index("        total += 1")
    cold = select(index, main, MAIN, offset, repo=repo)
    repo.clear()
    assert repo.prewarm(str(main), MAIN, "python", 400) >= 2  # Circle, distance, Shape
    located: list[str] = []
    real = definitions.locate

    def counting(view, path, info, name, parent):  # type: ignore[no-untyped-def]
        located.append(name)
        return real(view, path, info, name, parent)

    monkeypatch.setattr(definitions, "locate", counting)
    # All of these must come from the caches.
    monkeypatch.setattr(file_candidates, "build_file_candidate", None)
    monkeypatch.setattr(resolution, "resolve_imports", None)
    monkeypatch.setattr(definitions, "resolve_imports", None)
    monkeypatch.setattr(similarity, "chunks_of", None)
    assert select(index, main, MAIN, offset, repo=repo) == cold
    assert located == []
    # Nothing to warm: no path, a file outside the workspace, no budget left.
    assert repo.prewarm(None, MAIN, "python", 400) == 0
    assert repo.prewarm("/elsewhere/x.py", MAIN, "python", None) == 0
    assert repo.prewarm(str(main), MAIN, "python", 0) == 0


CONVERTERS = '''class BaseConverter:
    """Converts things."""

    __slots__ = (
        "_a",
        "_b",
    )

    def __init__(
        self,
        dict_factory: type = dict,
        detailed: bool = True,
    ) -> None:
        self._a = dict_factory
        self._b = detailed

    def dumps(self, obj: object) -> str:
        return str(obj)


class Converter(BaseConverter):
    """A faster converter."""
'''


def converters_workspace(root: Path, current: str) -> tuple[WorkspaceIndex, Path]:
    write(root, "conv/__init__.py", '"""Converters: `Converter` and friends."""\n')
    write(root, "conv/converters.py", CONVERTERS)
    write(
        root,
        "conv/json.py",
        "from .converters import Converter\n\n\nclass JsonConverter(Converter):\n"
        "    def dumps(self, obj: object) -> str:\n        return '{}'\n",
    )
    main = write(root, "conv/msgpack.py", current)
    index = WorkspaceIndex([root])
    index.build()
    return index, main


def test_usage_examples_show_how_siblings_use_a_name_not_used_yet(tmp_path: Path) -> None:
    text = "from .converters import BaseConverter, Converter\n\n\n\n"
    index, main = converters_workspace(tmp_path, text)
    files = dict(select(index, main, text, len(text) - 1, 600))
    # json.py uses Converter, which this file imports but has not used yet.
    assert files["conv/json.py"] == "# ...\nclass JsonConverter(Converter): ..."
    # The __init__ docstring mentions the name; that is not a use.
    examples = UsageExamples(RankOptions()).examples(index, "conv/msgpack.py", ("Converter",), [])
    assert [(e.path, e.text) for e in examples] == [
        ("conv/json.py", "class JsonConverter(Converter): ...")
    ]
    # Once the file uses it above the cursor, examples of it are no longer needed.
    used = "from .converters import BaseConverter, Converter\n\n\nclass A(Converter): ...\n\n"
    write(tmp_path, "conv/msgpack.py", used)
    index.update_file(main)
    after = dict(select(index, main, used, len(used) - 1, 600))
    assert "class JsonConverter(Converter): ..." not in after.get("conv/json.py", "")


def test_names_on_continuation_lines_of_an_import_are_not_uses(tmp_path: Path) -> None:
    text = "from .converters import (\n    BaseConverter,\n    Converter,\n)\n\n\n\n"
    index, main = converters_workspace(tmp_path, text)
    files = dict(select(index, main, text, len(text) - 1, 600))
    assert "class JsonConverter(Converter)" in files.get("conv/json.py", "")


def test_classes_read_as_stubs(tmp_path: Path) -> None:
    text = "from .converters import BaseConverter\n\nx = BaseConverter()\n\n"
    index, main = converters_workspace(tmp_path, text)
    shown = dict(select(index, main, text, len(text) - 1, 300))["conv/converters.py"]
    assert "__slots__" not in shown and '"_a",' not in shown  # a cut statement is not code
    assert (
        "    def __init__(self, dict_factory: type = dict, detailed: bool = True) -> None: ..."
        in shown
    )
    assert "    def dumps(self, obj: object) -> str: ..." in shown
    compile(shown, "converters.pyi", "exec")  # the whole snippet parses


def test_a_block_header_example_shows_its_body_not_a_stub(tmp_path: Path) -> None:
    files = {
        "s/errors.py": "class EndOfStream(Exception):\n    pass\n",
        "s/reader.py": (
            "from .errors import EndOfStream\n\n\ndef read(f):\n    try:\n        return f()\n"
            "    except EndOfStream:\n        return b''\n"
        ),
    }
    examples = usage_examples(tmp_path, files, "s/text.py", ("EndOfStream",))
    assert [e.text for e in examples] == ["    except EndOfStream:\n        return b''"]


def test_a_package_init_of_re_exports_leads_to_the_definition(tmp_path: Path) -> None:
    write(tmp_path, "lib/__init__.py", "from ._impl import Widget as Widget\n")
    write(
        tmp_path, "lib/_impl.py", "class Widget:\n    def __init__(self, size: int) -> None: ...\n"
    )
    main = write(tmp_path, "app.py", "from lib import Widget\n\n\n")
    index = WorkspaceIndex([tmp_path])
    index.build()
    files = dict(select(index, main, main.read_text(), len("from lib import Widget\n\n")))
    assert "class Widget:" in files.get("lib/_impl.py", ""), files


def test_export_lines_are_not_usage_examples(tmp_path: Path) -> None:
    files = {
        "cmds/ci.js": "class CI {\n  run () {}\n}\n\nmodule.exports = CI\n",
        "cmds/other.js": (
            "const CI = require('./ci.js')\n// CI is the base\nexports.Base = CI\n"
            "export default CI;\nclass Other extends CI {\n}\n"
        ),
    }
    examples = usage_examples(tmp_path, files, "cmds/test.js", ("CI",))
    assert [(e.path, e.text) for e in examples] == [
        ("cmds/other.js", "class Other extends CI {\n}")
    ]


def test_a_variable_declaration_of_the_name_is_not_a_usage_example(tmp_path: Path) -> None:
    files = {
        "web/webidl.js": "const webidl = {}\nwebidl.check = function (v) {}\n",
        "web/body.js": "export const webidl = makeIdl()\nlet x = webidl.check(body)\n",
    }
    examples = usage_examples(tmp_path, files, "web/file.js", ("webidl",))
    assert [(e.path, e.text) for e in examples] == [("web/body.js", "let x = webidl.check(body)")]


def test_a_siblings_multi_line_import_is_not_a_usage_example(tmp_path: Path) -> None:
    # ``wrap`` is listed in bson.py's ``from . import (`` … ``)``: that is an import, and the
    # statement pulled in whole would be a block of imports, not a use.
    files = {
        "conv/__init__.py": "def wrap(f):\n    return f\n",
        "conv/bson.py": (
            "from . import (\n    is_enum,\n    wrap,\n)\n\n\n@wrap(Converter.__init__)\n"
            "def make_converter(*args):\n    return Converter(*args)\n"
        ),
    }
    examples = usage_examples(tmp_path, files, "conv/msgpack.py", ("wrap",))
    assert [(e.path, e.text) for e in examples] == [("conv/bson.py", "@wrap(Converter.__init__)")]


def test_definitions_apart_in_their_file_stay_apart(
    workspace: tuple[WorkspaceIndex, Path],
) -> None:
    index, main = workspace
    files = dict(select(index, main, MAIN, MAIN.index("    return total")))
    shown = files["pkg/geometry.py"]
    # Circle and distance are not adjacent in geometry.py: a blank line between them,
    # never ``def area(...): ...`` straight followed by ``def distance``.
    assert "    def area(self) -> float: ...\n\ndef distance(a, b):" in shown, shown
