"""No import in the server runs upward (scripts/structure.py's floors), and the check
itself catches one: a fake package with an upward import, lazy or not, fails it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def structure() -> ModuleType:
    spec = importlib.util.spec_from_file_location("structure", ROOT / "scripts" / "structure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_no_import_runs_upward(structure: ModuleType) -> None:
    package = ROOT / "lsp_server"
    bad = [f"{e.source}:{e.line} -> {e.target}" for e in structure.upward_edges(package)]
    assert bad == []
    assert structure.unplaced(package) == []


def write(root: Path, rel: str, text: str = "") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_check_catches_upward_imports(structure: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "lsp_server"
    write(package, "__init__.py")
    write(package, "core.py")
    write(package, "server.py")
    write(package, "syntax.py", "from lsp_server import core\n")
    write(package, "completion/__init__.py")
    write(package, "completion/context.py", "from lsp_server.syntax import parse\n")
    write(package, "repo/__init__.py")
    write(
        package,
        "repo/rank.py",
        "from typing import TYPE_CHECKING\n"
        "from lsp_server.completion.context import cached_count\n"
        "from ..syntax import parse\n"
        "if TYPE_CHECKING:\n"
        "    from lsp_server.server import Server\n"
        "def f():\n"
        "    import lsp_server.completion.context\n",
    )
    found = {(e.source, e.target, e.line, e.lazy) for e in structure.upward_edges(package)}
    assert found == {
        ("repo.rank", "completion.context", 2, False),
        ("repo.rank", "server", 5, True),
        ("repo.rank", "completion.context", 7, True),
    }
    text, status = structure.report(package)
    assert status == 1 and "upward imports: 3" in text
    write(package, "repo/rank.py", "from ..syntax import parse\n")
    text, status = structure.report(package)
    assert status == 0 and "upward imports: none" in text
    write(package, "newthing.py")
    assert structure.unplaced(package) == ["newthing"]
    assert structure.report(package)[1] == 1
