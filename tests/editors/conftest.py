"""Fixtures for the real-editor tests (Neovim and Emacs).

The driving itself (finding the editors, running a scenario, reading its observations)
lives in tests/editors/drivers.py, shared with bench/ghost.py; its names stay importable
from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cpuload import busy_loop, wanted
from tests.editors.drivers import (
    ADD_SOURCE,
    CACHE,
    EDITOR_BIN,
    REAL_MODEL_FILE,
    REAL_MODEL_NAME,
    ROOT,
    Workspace,
    in_ci,
    make_workspace,
    real_model_path,
    require,
    run_driver,
    run_editor,
    server_command,
)
from tests.tinymodel import write_tiny_model

__all__ = [
    "ADD_SOURCE",
    "CACHE",
    "EDITOR_BIN",
    "REAL_MODEL_FILE",
    "REAL_MODEL_NAME",
    "ROOT",
    "Workspace",
    "huge_source",
    "in_ci",
    "real_model_path",
    "require",
    "run_driver",
    "run_editor",
    "server_command",
]


@pytest.fixture(autouse=True)
def cpu_load() -> Iterator[None]:
    """One busy CPU loop beside each test when CODER_LSP_TEST_CPU_LOAD=1 (tests/cpuload.py)."""
    if not wanted():
        yield
        return
    with busy_loop():
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic model, written once per session."""
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture
def workspace(tmp_path: Path, tiny_model: Path) -> Workspace:
    """A project with ``add.py`` (ADD_SOURCE), ``second.py`` and a ``.git`` marker."""
    return make_workspace(tmp_path, tiny_model)


def huge_source(functions: int = 4000) -> str:
    """A large Python file (about 1 MB) whose last function has an empty body line."""
    body = "".join(
        f"def helper_{i}(x, y):\n    total = x * {i} + y\n    return total - {i}\n\n\n"
        for i in range(functions)
    )
    return body + "def add(a, b):\n    \n"
