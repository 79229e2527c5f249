"""The Neovim plugin (editors/nvim) in real headless Neovim 0.11 and 0.12.

Each test runs ``nvim --headless --clean -c 'luafile editors/nvim/test/e2e.lua'`` with one
scenario; the Lua driver types through Neovim's typeahead, polls for every effect with a
deadline, and writes what it saw as JSON, which these tests assert on. 0.11 exercises the
plugin's own extmark ghost text, 0.12 the native ``vim.lsp.inline_completion``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lsp_server.settings_schema import settings_schema
from tests.editors.conftest import ROOT, Workspace, huge_source, real_model_path, server_command
from tests.editors.drivers import NVIM_VERSIONS, Editor, check_midword_real
from tests.editors.drivers import drive as drive_editor
from tests.tinymodel import DEFAULT_COMPLETION

VERSIONS = NVIM_VERSIONS
DRIVER = Editor("nvim", VERSIONS[-1]).driver()
REAL_TIMEOUT_S = 360
"""A real-model scenario's whole time limit. On a quiet machine one takes 5-10 s and beside
16 busy loops about 50 s; the driver spends it where it is needed (a slow model load, a slow
first answer) and names the step that ran out of it, with the server's log."""
WARN = 3  # vim.log.levels.WARN
ERROR = 4


def nvim(version: str) -> Path:
    """The installed Neovim of ``version`` (fail in CI / skip locally when missing)."""
    return Editor("nvim", version).exe()


def drive(version: str, scenario: str, ws: Workspace, **kwargs: Any) -> dict[str, Any]:
    """Run one driver scenario in Neovim ``version`` (tests/editors/drivers.py's drive)."""
    return drive_editor(Editor("nvim", version), scenario, ws, **kwargs)


def errors(data: dict[str, Any]) -> list[str]:
    """Messages shown at WARN level or above."""
    return [m["msg"] for m in data["messages"] if m["level"] >= WARN]


@pytest.mark.parametrize("version", VERSIONS)
def test_type_see_ghost_text_accept(version: str, workspace: Workspace) -> None:
    """Insert mode on an empty body shows ``return a + b`` as ghost text; <Tab> inserts it."""
    data = drive(version, "basic", workspace)
    assert data["nvim"].startswith(version)
    assert data["native"] is (version != "0.11")  # 0.12 uses vim.lsp.inline_completion
    assert data["ghost"] == DEFAULT_COMPLETION
    # Drawn at the cursor (row 1, after the 4 spaces) as inline virtual text.
    assert data["ghost_pos"] == {"pos": "inline", "row": 1, "col": 4}
    assert data["accepted_line"] == "    " + DEFAULT_COMPLETION
    assert data["cursor_after_accept"] == [2, 4 + len(DEFAULT_COMPLETION)]
    assert data["ghost_after_accept"] is None
    assert not (data["after_typing"] or "").startswith(DEFAULT_COMPLETION)
    # Requests sent while the model was still loading produced no messages at all.
    assert data["messages"] == []
    assert data["statuses"][-1] == "ready" and "loading" in data["statuses"]
    assert data["statusline"] == "coder-lsp: ready"
    health = data["health"]
    assert f"Neovim {version}" in health
    assert "coder-lsp --stdio" in health or "lsp_server --stdio" in health
    assert "ready" in health and "tiny" in health


@pytest.mark.parametrize("version", VERSIONS)
def test_missing_server_binary(version: str, workspace: Workspace) -> None:
    """No server: one clear warning for two buffers, no client, <Tab> still indents."""
    missing = str(workspace.root / "no-such-coder-lsp")
    data = drive(version, "missing", workspace, cmd=[missing, "--stdio"])
    shown = [m["msg"] for m in data["messages"]]
    assert len(shown) == 1, shown
    assert "not found" in shown[0] and missing in shown[0]
    assert data["clients"] == 0
    assert data["status"] == "missing"
    # <Tab> fell back to its normal meaning (Python's ftplugin: spaces up to the next stop).
    assert data["tab_line"].strip() == "" and len(data["tab_line"]) > 4
    assert "not found" in data["health"]


@pytest.mark.parametrize("version", VERSIONS)
def test_server_crash_restarts_then_gives_up(version: str, workspace: Workspace) -> None:
    """A killed server is restarted once and works again; the next kill is final."""
    pidfile = workspace.root / "server.pid"
    inner = " ".join(shlex.quote(a) for a in server_command())
    cmd = ["sh", "-c", f"echo $$ > {shlex.quote(str(pidfile))}; exec {inner}"]
    data = drive(
        version, "crash", workspace, cmd=cmd, E2E_PIDFILE=str(pidfile), E2E_MAX_RESTARTS="1"
    )
    assert data["first_pid"] != data["second_pid"]
    assert data["restarted"] is True
    assert data["ghost_after_restart"] == DEFAULT_COMPLETION
    assert data["clients_after_giving_up"] == 0
    ours = [m for m in errors(data) if m.startswith("coder-lsp:")]
    assert any("restarting (1/1)" in m for m in ours), ours
    assert any("not restarting" in m for m in ours), ours
    assert len(ours) == 2, ours  # one message per crash, nothing more


def test_reply_after_cursor_moved_is_discarded(workspace: Workspace) -> None:
    """0.11 renderer: a reply for a position the cursor has left is never drawn."""
    data = drive("0.11", "stale", workspace)
    assert data["shown_delta"] == 0
    assert data["ghost_after_stale"] is None


@pytest.mark.parametrize("version", VERSIONS)
def test_huge_file(version: str, workspace: Workspace) -> None:
    """A ~1 MB, 20,000-line file still gets its completion, well within the deadline."""
    big = workspace.root / "big.py"
    big.write_text(huge_source())
    data = drive(version, "huge", workspace, source=big)
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["accepted_line"] == "    " + DEFAULT_COMPLETION
    assert data["ghost_ms"] < 20000


@pytest.mark.parametrize("version", ["0.12"])
def test_real_model_sensible_completion(version: str, workspace: Workspace) -> None:
    """Qwen2.5-Coder-0.5B through the plugin: the body of ``add`` returns the sum."""
    model = real_model_path()
    data = drive(version, "basic_real", workspace, model=str(model), timeout_s=REAL_TIMEOUT_S)
    ghost = data["ghost"]
    assert "return" in ghost and "a" in ghost and "b" in ghost and "+" in ghost, ghost
    assert data["accepted_line"].strip().startswith("return"), data["accepted_line"]


@pytest.mark.parametrize("version", VERSIONS)
def test_partial_accept_and_explicit_request(version: str, workspace: Workspace) -> None:
    """<M-Right> accepts the next word, <M-C-Right> the next line; <M-\\> asks now, and the
    server answers it from the model, not from its cache."""
    data = drive(version, "partial", workspace)
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["after_word"] == "    return"
    assert data["ghost_after_word"] == " a + b"  # the rest, from the server's cache
    assert data["after_line"] == "    " + DEFAULT_COMPLETION
    assert data["cache_before_key"] == "exact"
    assert data["cache_after_key"] == "miss"
    assert data["ghost_after_key"] == DEFAULT_COMPLETION
    assert data["messages"] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_real_model_ghost_text_mid_word(version: str, workspace: Workspace) -> None:
    """Qwen2.5-Coder-0.5B: ``ret`` typed at 150 ms a key in a function body, then a pause,
    shows ghost text; <M-Right> accepts a word of it, <Tab> the rest; then at a line start."""
    model = real_model_path()
    data = drive(version, "midword_real", workspace, model=str(model), timeout_s=REAL_TIMEOUT_S)
    check_midword_real(data, f"nvim {version}")


@pytest.mark.parametrize("version", VERSIONS)
def test_settings_table_is_sent_untouched(version: str, tmp_path: Path) -> None:
    """Every server setting in ``setup{settings = ...}`` reaches initializationOptions as
    given (through the plugin's setup and Neovim's own JSON encoder), nulls and nested
    objects included: the plugin keeps no list of settings of its own."""
    settings = {k: p["default"] for k, p in settings_schema()["properties"].items()}
    settings |= {
        "repoContext": False,
        "repoShare": 0.25,
        "languages": ["python"],
        "backend": {"kind": "llama-server", "url": "http://127.0.0.1:8080", "slot": 1},
    }
    given, out = tmp_path / "settings.json", tmp_path / "out.json"
    given.write_text(json.dumps(settings))
    lua = (
        f"vim.opt.rtp:prepend({json.dumps(str(ROOT / 'editors' / 'nvim'))}) "
        f"local s = vim.json.decode(io.open({json.dumps(str(given))}):read('*a')) "
        "local m = require('coder_lsp') m.setup({ settings = s }) "
        f"local f = io.open({json.dumps(str(out))}, 'w') "
        "f:write(vim.json.encode(m.init_options())) f:close()"
    )
    subprocess.run(
        [str(nvim(version)), "--headless", "--clean", "-c", f"lua {lua}", "-c", "qa!"],
        check=True,
        timeout=60,
        capture_output=True,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert json.loads(out.read_text()) == settings
