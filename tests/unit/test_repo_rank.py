"""Tests for snippet selection: what is chosen, in which order, within which budget."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lsp_server.repo.index import WorkspaceIndex
from lsp_server.repo.rank import repo_budget, select_repo_context


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
    index: WorkspaceIndex, main: Path, text: str, offset: int, budget: int = 400
) -> list[tuple[str, str]]:
    return select_repo_context(index, str(main), text, offset, "python", budget, count)


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


def test_budget_is_respected(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, main = workspace
    offset = MAIN.index("        total += 1")
    for budget in (0, 20, 60, 150, 400, 2000):
        files = select(index, main, MAIN, offset, budget)
        used = sum(count(c) + count(p) + 4 for p, c in files)
        assert used <= budget
    assert select(index, main, MAIN, offset, 0) == []
    assert select_repo_context(None, str(main), MAIN, offset, "python", 400, count) == []


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
    assert select(index, main, text, len(text)) == []


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
    main = write(
        tmp_path, "main.py", "def load_all(cfg):\n    path = cfg.path\n    with open(path) as fh:\n"
    )
    index = WorkspaceIndex([tmp_path])
    index.build()
    text = main.read_text()
    files = dict(select(index, main, text, len(text)))
    assert "parse_config" in files.get("other.py", "")


def test_untitled_buffer_and_unknown_language(workspace: tuple[WorkspaceIndex, Path]) -> None:
    index, _ = workspace
    assert select_repo_context(index, None, "x = 1\n", 3, None, 400, count) == []


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


def test_repo_budget_share() -> None:
    assert repo_budget(2000) == 800
    assert repo_budget(2000, 0.9) == 2000 - 256  # the local window keeps its minimum
    assert repo_budget(200) == 0
