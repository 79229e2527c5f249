"""Shared helpers for the real-editor tests (Neovim and Emacs).

The editors are installed by ``scripts/install-nvim.sh`` / ``scripts/install-emacs.sh`` into
``~/.cache/coder-lsp-dev/bin`` (override with ``CODER_LSP_DEV_CACHE``). When an editor is
missing the tests fail under CI (``CI`` set) and skip with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cpuload import busy_loop, wanted
from tests.tinymodel import write_tiny_model

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CODER_LSP_DEV_CACHE", Path.home() / ".cache" / "coder-lsp-dev"))
EDITOR_BIN = CACHE / "bin"
ADD_SOURCE = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
"""Line 2 (an empty function body) is where the tiny model completes ``return a + b``."""
REAL_MODEL_NAME = "qwen2.5-coder-0.5b"
REAL_MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def in_ci() -> bool:
    """Whether we run in CI, where a missing editor is a failure, not a skip."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require(path: Path | None, what: str, install: str) -> Path:
    """Return ``path`` if it exists; else fail in CI or skip locally, naming the fix."""
    if path is not None and path.exists():
        return path
    message = f"{what} not found ({path}); run {install}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def server_command() -> list[str]:
    """The coder-lsp server command of this checkout."""
    exe = Path(sys.executable).with_name("coder-lsp")
    if exe.exists():
        return [str(exe), "--stdio"]
    return [sys.executable, "-m", "lsp_server", "--stdio"]


def real_model_path() -> Path:
    """The cached real model, or fail (CI) / skip (locally) when it was never pulled."""
    base = os.environ.get("CODER_LSP_MODELS_DIR")
    if base:
        models = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        models = (Path(xdg) if xdg else Path.home() / ".cache") / "coder-lsp" / "models"
    return require(
        models / REAL_MODEL_FILE, "real model", f".venv/bin/coder-lsp models pull {REAL_MODEL_NAME}"
    )


@pytest.fixture(autouse=True)
def cpu_load() -> Iterator[None]:
    """One busy CPU loop beside each test when CODER_LSP_TEST_CPU_LOAD=1 (tests/cpuload.py)."""
    if not wanted():
        yield
        return
    with busy_loop():
        yield


@dataclass(frozen=True)
class Workspace:
    """A temporary project folder with a source file and the tiny model."""

    root: Path
    source: Path
    model: Path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic model, written once per session."""
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture
def workspace(tmp_path: Path, tiny_model: Path) -> Workspace:
    """A project with ``add.py`` (ADD_SOURCE) and a ``.git`` marker."""
    (tmp_path / ".git").mkdir()
    source = tmp_path / "add.py"
    source.write_text(ADD_SOURCE)
    (tmp_path / "second.py").write_text(ADD_SOURCE)
    return Workspace(tmp_path, source, tiny_model)


def huge_source(functions: int = 4000) -> str:
    """A large Python file (about 1 MB) whose last function has an empty body line."""
    body = "".join(
        f"def helper_{i}(x, y):\n    total = x * {i} + y\n    return total - {i}\n\n\n"
        for i in range(functions)
    )
    return body + "def add(a, b):\n    \n"


def run_editor(
    argv: list[str], env: dict[str, str], result: Path, timeout: float, cwd: Path
) -> tuple[dict[str, Any], float]:
    """Run a headless editor driver; return its JSON observations and the wall time.

    A driver that crashes or times out fails the test with its output attached.
    """
    t0 = time.monotonic()
    full_env = {**os.environ, **env}
    try:
        proc = subprocess.run(
            argv,
            env=full_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        partial = result.read_text() if result.exists() else "(no result file)"
        pytest.fail(f"{argv[0]} timed out after {timeout} s; result so far: {partial}\n{err}")
    elapsed = time.monotonic() - t0
    if not result.exists():
        pytest.fail(
            f"{argv[0]} wrote no result (rc={proc.returncode})\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    data = json.loads(result.read_text())
    if proc.returncode != 0 or not data.get("ok"):
        pytest.fail(
            f"{argv[0]} failed (rc={proc.returncode}): {data.get('error')}\n"
            f"observations: {json.dumps(data, indent=1)[:4000]}\n"
            f"stderr:\n{proc.stderr[-4000:]}"
        )
    return data, elapsed


def run_driver(
    argv: list[str],
    scenario: str,
    ws: Workspace,
    plugin: Path,
    env: dict[str, str],
    *,
    cmd: list[str] | None,
    model: str | None,
    source: Path | None,
    timeout_s: float,
) -> dict[str, Any]:
    """Run one e2e driver scenario: the ``E2E_*`` settings every driver reads, plus ``env``.

    Returns the driver's observations with ``wall_s`` added.
    """
    result = ws.root / f"result-{scenario}.json"
    full = {
        "E2E_SCENARIO": scenario,
        "E2E_FILE": str(source or ws.source),
        "E2E_RESULT": str(result),
        "E2E_CMD": json.dumps(cmd or server_command()),
        "E2E_MODEL": model or str(ws.model),
        "E2E_PLUGIN": str(plugin),
        **env,
    }
    data, elapsed = run_editor(argv, full, result, timeout_s, ws.root)
    data["wall_s"] = elapsed
    return data


def which_or_none(name: str) -> Path | None:
    """An executable on PATH, or None."""
    found = shutil.which(name)
    return Path(found) if found else None
