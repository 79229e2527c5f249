"""Drive the real editors' end-to-end scenarios: one place for the tests and the benchmark.

The Neovim and Emacs tests (tests/editors/test_nvim.py, test_emacs.py) and bench/ghost.py
run the same headless editor drivers (editors/nvim/test/e2e.lua, editors/emacs/test/e2e.el)
the same way: a scenario name and ``E2E_*`` settings in the environment, JSON observations
back. :func:`drive` does that for either editor.

The editors are installed by ``scripts/install-nvim.sh`` / ``scripts/install-emacs.sh`` into
``~/.cache/coder-lsp-dev/bin`` (override with ``CODER_LSP_DEV_CACHE``). When an editor is
missing, :func:`require` fails under CI (``CI`` set) and skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CODER_LSP_DEV_CACHE", Path.home() / ".cache" / "coder-lsp-dev"))
EDITOR_BIN = CACHE / "bin"
ADD_SOURCE = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
"""Line 2 (an empty function body) is where the tiny model completes ``return a + b``."""
REAL_MODEL_NAME = "qwen2.5-coder-0.5b"
REAL_MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
NVIM_VERSIONS = ["0.11", "0.12"]
EMACS_VERSIONS = ["28", "30"]
EMACS_FLAGS = {"28": ["--no-init-file"], "30": ["-Q"]}
"""Emacs 28 is Debian's with elpa-eglot (loaded through Debian's site-start, hence no
``-Q``); Emacs 30 is bookworm-backports' with its built-in eglot (``-Q`` keeps 28's elpa
packages out)."""


class DriverError(AssertionError):
    """An editor driver crashed, timed out, or reported a failed scenario."""


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


@dataclass(frozen=True)
class Workspace:
    """A temporary project folder with a source file and the tiny model."""

    root: Path
    source: Path
    model: Path


def make_workspace(root: Path, model: Path) -> Workspace:
    """A small two-file Python package in ``root`` (``add.py`` is ADD_SOURCE, ``second.py``
    a copy) with a ``.git`` marker, for ``model``."""
    (root / ".git").mkdir(parents=True)
    source = root / "add.py"
    source.write_text(ADD_SOURCE)
    (root / "second.py").write_text(ADD_SOURCE)
    return Workspace(root, source, model)


def run_editor(
    argv: list[str], env: dict[str, str], result: Path, timeout: float, cwd: Path
) -> tuple[dict[str, Any], float]:
    """Run a headless editor driver; return its JSON observations and the wall time.

    A driver that crashes, times out or reports a failure raises :class:`DriverError` with
    its output attached.
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
        raise DriverError(
            f"{argv[0]} timed out after {timeout} s; result so far: {partial}\n{err}"
        ) from None
    elapsed = time.monotonic() - t0
    if not result.exists():
        raise DriverError(
            f"{argv[0]} wrote no result (rc={proc.returncode})\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    data = json.loads(result.read_text())
    if proc.returncode != 0 or not data.get("ok"):
        raise DriverError(
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


@dataclass(frozen=True)
class Editor:
    """One installed editor: ``nvim`` 0.11/0.12 or ``emacs`` 28/30."""

    kind: Literal["nvim", "emacs"]
    version: str

    @property
    def label(self) -> str:
        """How people name it: ``Neovim 0.12``, ``Emacs 30``."""
        return f"{'Neovim' if self.kind == 'nvim' else 'Emacs'} {self.version}"

    def exe(self) -> Path:
        """The installed executable (fail in CI / skip locally when missing)."""
        script = "scripts/install-nvim.sh" if self.kind == "nvim" else "scripts/install-emacs.sh"
        return require(EDITOR_BIN / f"{self.kind}-{self.version}", self.label, script)

    def plugin(self) -> Path:
        """The editor's client in this checkout."""
        return ROOT / "editors" / self.kind

    def driver(self) -> Path:
        """The editor's e2e driver script."""
        return self.plugin() / "test" / ("e2e.lua" if self.kind == "nvim" else "e2e.el")

    def argv(self) -> list[str]:
        """The headless command line that runs the driver."""
        if self.kind == "nvim":
            return [str(self.exe()), "--headless", "--clean", "-c", f"luafile {self.driver()}"]
        return [str(self.exe()), *EMACS_FLAGS[self.version], "--batch", "-l", str(self.driver())]

    def env(self, ws: Workspace, timeout_s: float) -> dict[str, str]:
        """The driver's own time limit for the whole scenario (below ours, so it reports
        the step that ran out of time before it is killed; each wait may use what the steps
        before it left) and a private state folder, so nothing is written to the real home.
        """
        if self.kind == "nvim":
            return {
                "E2E_TIMEOUT_MS": str(int(timeout_s * 1000 * 0.9)),
                "XDG_STATE_HOME": str(ws.root / "state"),  # the LSP log goes here, not to ~
            }
        (ws.root / "home").mkdir(exist_ok=True)
        return {
            "E2E_TIMEOUT_S": str(int(timeout_s * 0.9)),
            "HOME": str(ws.root / "home"),  # no user init, no eln-cache or history in the real ~
        }

    def server_log(self, ws: Workspace, lines: int = 40) -> str:
        """The server's last log lines as the editor recorded them (Neovim's lsp.log, which
        the driver sets to INFO): why no ghost text came is usually in them ("empty (...)").
        Empty for Emacs, whose eglot keeps them in a buffer only."""
        log = ws.root / "state" / "nvim" / "lsp.log"
        if self.kind != "nvim" or not log.exists():
            return ""
        text = log.read_text(errors="replace")
        ours = [line for line in text.splitlines() if "lsp_server" in line]
        return "\n".join(_short(line) for line in ours[-lines:])


def _short(line: str) -> str:
    """``[INFO][date] .../lsp/log.lua:150\t"lsp_server.x: message"``: the level, the time
    and the message (at most 600 characters)."""
    head = line[: line.find("]", line.find("]") + 1) + 1]
    message = line[line.find('"lsp_') :]
    return f"{head} {message}"[:600]


def check_midword_real(data: dict[str, Any], editor: str) -> None:
    """The ``midword_real`` scenario's result (Neovim and Emacs drivers): ``ret`` typed in
    a function body got ghost text; a word of it, then the rest, were accepted into the
    buffer; a line start got ghost text too. Prints the two times to stderr."""
    typed = "    ret"
    assert data["typed_line"] == typed
    ghost = data["ghost"]
    first = ghost.split("\n")[0]
    assert first.strip(), ghost
    assert (typed + first).startswith(data["after_word"]) and data["after_word"] != typed
    assert data["after_rest"] == typed + first, (data["after_rest"], ghost)
    assert data["ghost2"].strip()
    print(
        f"{editor}: time to ghost text mid-word {data['midword_ms']:.0f} ms, "
        f"line start {data['linestart_ms']:.0f} ms; ghost {ghost!r}, then {data['ghost2']!r}",
        file=sys.stderr,
    )


def drive(
    editor: Editor,
    scenario: str,
    ws: Workspace,
    *,
    cmd: list[str] | None = None,
    model: str | None = None,
    source: Path | None = None,
    timeout_s: float = 60,
    **extra: str,
) -> dict[str, Any]:
    """Run one driver scenario in ``editor`` and return its observations.

    ``extra`` adds environment settings for the driver (``E2E_PIDFILE=...``).
    """
    try:
        return run_driver(
            editor.argv(),
            scenario,
            ws,
            editor.plugin(),
            {**editor.env(ws, timeout_s), **extra},
            cmd=cmd,
            model=model,
            source=source,
            timeout_s=timeout_s,
        )
    except DriverError as err:
        log = editor.server_log(ws)
        if not log:
            raise
        raise DriverError(f"{err}\nthe server's log, last lines:\n{log}") from None
