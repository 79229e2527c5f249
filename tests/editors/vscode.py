"""Drive the real VS Code workbench (code-server + headless Chromium) for the extension.

Shared by tests/editors/test_vscode.py and bench/ghost.py: find the e2e tools
(``scripts/install-vscode-e2e.sh --check``), package and install the extension into a
private code-server and run it (:func:`running_code_server`), make a small project
(:func:`project`) and run one Playwright scenario of tests/editors/vscode_e2e.mjs in it
(:func:`drive`). Screenshots are kept in ``$CODER_LSP_E2E_ARTIFACTS`` (default
``~/.cache/coder-lsp-dev/artifacts/vscode-e2e``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXT_DIR = REPO / "editors" / "vscode"
INSTALL_SCRIPT = REPO / "scripts" / "install-vscode-e2e.sh"
DRIVER = Path(__file__).with_name("vscode_e2e.mjs")
FAKE_SERVER = EXT_DIR / "test-fixtures" / "fake_server.py"
SERVER = REPO / ".venv" / "bin" / "coder-lsp"
CACHE = Path(os.environ.get("CODER_LSP_DEV_CACHE", Path.home() / ".cache" / "coder-lsp-dev"))
ARTIFACTS = Path(os.environ.get("CODER_LSP_E2E_ARTIFACTS", CACHE / "artifacts" / "vscode-e2e"))
REAL_MODEL = "qwen2.5-coder-0.5b"

USER_SETTINGS: dict[str, Any] = {
    # Without these the chat panel opens and takes the keyboard focus.
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "extensions.ignoreRecommendations": True,
    "editor.inlineSuggest.enabled": True,
    "files.autoSave": "off",
    "workbench.enableExperiments": False,
}


def unavailable(reason: str) -> None:
    """Fail in CI (the editor must be there), skip with the reason locally."""
    if os.environ.get("CI"):
        pytest.fail(f"VS Code e2e cannot run in CI: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Tools:
    """Paths reported by ``scripts/install-vscode-e2e.sh --check``."""

    node: str
    node_bin: str
    code_server: str
    playwright_dir: str
    chromium: str


def find_tools() -> Tools:
    """The installed e2e tools (fails in CI / skips locally when missing)."""
    proc = subprocess.run(
        [str(INSTALL_SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        unavailable(
            f"VS Code e2e tools are not installed ({proc.stderr.strip()}); "
            "run scripts/install-vscode-e2e.sh"
        )
    env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return Tools(
        node=env["NODE"],
        node_bin=env["NODE_BIN"],
        code_server=env["CODE_SERVER"],
        playwright_dir=env["PLAYWRIGHT_DIR"],
        chromium=env["CHROMIUM"],
    )


def node_env(tools: Tools) -> dict[str, str]:
    """This process's environment with the tools' Node first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{tools.node_bin}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class CodeServer:
    """A running code-server with the freshly packaged extension installed."""

    url: str
    tools: Tools
    root: Path
    log: Path


@contextlib.contextmanager
def running_code_server(tools: Tools, root: Path) -> Iterator[CodeServer]:
    """Package the extension, install it into a private code-server in ``root``, and run
    that server (on a free loopback port) for the duration of the block."""
    root.mkdir(parents=True, exist_ok=True)
    vsix = root / "coder-lsp.vsix"
    env = node_env(tools)
    vsce = EXT_DIR / "node_modules" / "@vscode" / "vsce" / "vsce"
    subprocess.run(
        [tools.node, str(vsce), "package", "--allow-missing-repository", "-o", str(vsix)],
        cwd=EXT_DIR,
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
    )
    user_data, extensions = root / "user-data", root / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2))
    env["XDG_CONFIG_HOME"] = str(root / "config")
    env["XDG_DATA_HOME"] = str(root / "data")
    common = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    subprocess.run(
        [tools.node, tools.code_server, *common, "--install-extension", str(vsix)],
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    port = free_port()
    log = root / "code-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                tools.node,
                tools.code_server,
                *common,
                "--bind-addr",
                f"127.0.0.1:{port}",
                "--auth",
                "none",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"code-server did not start; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield CodeServer(url=url, tools=tools, root=root, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def project(root: Path, name: str, settings: dict[str, Any]) -> Path:
    """A small multi-file Python project with workspace settings for the extension."""
    ws = root / name
    (ws / ".vscode").mkdir(parents=True)
    (ws / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2))
    (ws / "main.py").write_text(
        '"""Entry point."""\n\nfrom ops import add\n\n\nif __name__ == "__main__":\n'
        "    print(add(1, 2))\n"
    )
    (ws / "ops.py").write_text('"""Small arithmetic helpers."""\n\n\n')
    (ws / "README.md").write_text("# demo\n\nA tiny project for the VS Code test.\n")
    return ws


def drive(cs: CodeServer, scenario: str, folder: Path, timeout: int = 240, **extra: Any) -> dict:
    """Run one Playwright scenario in ``folder``; return its JSON result.

    Raises AssertionError (with the driver's log, screenshots and code-server's log) when
    the scenario failed.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    config = {
        "playwrightDir": cs.tools.playwright_dir,
        "chromium": cs.tools.chromium,
        "url": cs.url,
        "folder": str(folder),
        "scenario": scenario,
        "artifacts": str(ARTIFACTS),
        "timeoutMs": 90_000,
        **extra,
    }
    proc = subprocess.run(
        [cs.tools.node, str(DRIVER), json.dumps(config)],
        env=node_env(cs.tools),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"driver printed no result (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert result["ok"], (
        f"scenario {scenario} failed: {result.get('error')}\nlog: {result.get('log')}\n"
        f"screenshots: {result.get('screenshots')}\ncode-server log tail:\n"
        f"{cs.log.read_text(errors='replace')[-2000:]}"
    )
    return result


@contextlib.contextmanager
def user_settings(cs: CodeServer, extra: dict[str, Any]) -> Iterator[None]:
    """Add ``extra`` to code-server's User settings for the duration (new windows read it)."""
    path = cs.root / "user-data" / "User" / "settings.json"
    before = path.read_text()
    path.write_text(json.dumps({**json.loads(before), **extra}, indent=2))
    try:
        yield
    finally:
        path.write_text(before)
