"""The Emacs package (editors/emacs/coder-lsp.el) in real batch Emacs 28 and 30 with eglot.

Each test runs ``emacs --batch -l editors/emacs/test/e2e.el`` with one scenario; the Lisp
driver types through ``execute-kbd-macro`` (so keymaps and ``post-command-hook`` run as for a
user), polls every effect with a deadline and writes JSON observations asserted here.
Emacs 28.2 is Debian's with elpa-eglot 1.9 (loaded through Debian's site-start, hence no
``-Q``); Emacs 30 is bookworm-backports' with its built-in eglot (``-Q`` keeps 28's elpa
packages out).
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
from tests.editors.drivers import EMACS_FLAGS, EMACS_VERSIONS, Editor, check_midword_real
from tests.editors.drivers import drive as drive_editor
from tests.tinymodel import DEFAULT_COMPLETION

VERSIONS = EMACS_VERSIONS
DRIVER = Editor("emacs", VERSIONS[-1]).driver()
FLAGS = EMACS_FLAGS


def emacs(version: str) -> Path:
    """The installed Emacs of ``version`` (fail in CI / skip locally when missing)."""
    return Editor("emacs", version).exe()


def drive(version: str, scenario: str, ws: Workspace, **kwargs: Any) -> dict[str, Any]:
    """Run one driver scenario in Emacs ``version`` (tests/editors/drivers.py's drive)."""
    return drive_editor(Editor("emacs", version), scenario, ws, **kwargs)


def ours(data: dict[str, Any]) -> list[str]:
    """Messages coder-lsp.el showed (its own, not eglot's)."""
    return [m for m in data["messages"] if "coder-lsp" in m and "[eglot]" not in m]


@pytest.mark.parametrize("version", VERSIONS)
def test_type_see_overlay_accept(version: str, workspace: Workspace) -> None:
    """C-e on the empty body shows ``return a + b`` as an overlay; TAB inserts it."""
    data = drive(version, "basic", workspace)
    assert data["emacs"].startswith(version)
    assert data["mode_on"] is True
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["overlay_at_point"] is True
    assert data["tab_binding_with_ghost"] == "coder-lsp-accept"
    assert data["accepted_line"] == "    " + DEFAULT_COMPLETION
    assert data["point_after_accept"] == [2, 4 + len(DEFAULT_COMPLETION)]
    assert data["ghost_after_accept"] is None
    # Without ghost text TAB is the major mode's indentation again.
    assert data["tab_binding_without_ghost"] == "indent-for-tab-command"
    assert data["after_typing"] is None  # typing dismissed the overlay at once
    # completion-at-point still works, through eglot's textDocument/completion.
    assert data["capf"] == [DEFAULT_COMPLETION]
    assert data["mode_line"] == " coder:ready"
    assert data["stats"]["errors"] == 0
    assert ours(data) == []
    assert not [m for m in data["messages"] if m.startswith("WARNING")]


@pytest.mark.parametrize("version", VERSIONS)
def test_missing_server_binary(version: str, workspace: Workspace) -> None:
    """No server: one clear warning for two buffers, no eglot server, TAB still indents."""
    missing = str(workspace.root / "no-such-coder-lsp")
    data = drive(version, "missing", workspace, cmd=[missing, "--stdio"])
    warnings = [m for m in data["messages"] if m.startswith("WARNING")]
    assert len(warnings) == 1, data["messages"]
    assert "not found" in warnings[0] and missing in warnings[0]
    assert data["servers"] == 0
    assert data["status"] == "missing"
    assert data["tab_binding"] == "indent-for-tab-command"


@pytest.mark.parametrize("version", VERSIONS)
def test_server_crash_restarts_then_gives_up(version: str, workspace: Workspace) -> None:
    """A killed server is restarted once and works again; the next kill is final."""
    pidfile, envfile = workspace.root / "server.pid", workspace.root / "server.env"
    inner = " ".join(shlex.quote(a) for a in server_command())
    record = f"echo $$ > {shlex.quote(str(pidfile))}; env > {shlex.quote(str(envfile))}"
    cmd = ["sh", "-c", f"{record}; exec {inner}"]
    data = drive(
        version, "crash", workspace, cmd=cmd, E2E_PIDFILE=str(pidfile), E2E_MAX_RESTARTS="1"
    )
    # The server gets the user's environment, not the test Emacs build's private libraries.
    leaked = [v for v in envfile.read_text().splitlines() if v.startswith("LD_LIBRARY_PATH=")]
    assert (
        leaked == [f"LD_LIBRARY_PATH={os.environ['LD_LIBRARY_PATH']}"]
        if os.environ.get("LD_LIBRARY_PATH")
        else leaked == []
    ), leaked
    assert data["first_pid"] != data["second_pid"]
    assert data["restarted"] is True
    assert data["ghost_after_restart"] == DEFAULT_COMPLETION
    assert data["server_after_giving_up"] is None
    mine = ours(data)
    assert any("restarting (1/1)" in m for m in mine), mine
    assert any("not restarting" in m for m in mine), mine
    assert len([m for m in mine if "server died" in m]) == 2, mine


@pytest.mark.parametrize("version", VERSIONS)
def test_reply_after_point_moved_is_discarded(version: str, workspace: Workspace) -> None:
    """A reply for a position point has left is never drawn."""
    data = drive(version, "stale", workspace)
    assert data["shown_delta"] == 0
    assert data["ghost_after_stale"] is None


@pytest.mark.parametrize("version", VERSIONS)
def test_huge_file(version: str, workspace: Workspace) -> None:
    """A ~1 MB, 20,000-line file still gets its completion."""
    big = workspace.root / "big.py"
    big.write_text(huge_source())
    data = drive(version, "huge", workspace, source=big)
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["accepted_line"] == "    " + DEFAULT_COMPLETION
    assert data["ghost_ms"] < 20000


def test_real_model_sensible_completion(workspace: Workspace) -> None:
    """Qwen2.5-Coder-0.5B through coder-lsp.el (Emacs 30): the body of ``add`` returns."""
    model = real_model_path()
    data = drive("30", "basic_real", workspace, model=str(model), timeout_s=180)
    ghost = data["ghost"]
    assert "return" in ghost and "a" in ghost and "b" in ghost and "+" in ghost, ghost
    assert data["accepted_line"].strip().startswith("return"), data["accepted_line"]


@pytest.mark.parametrize("version", VERSIONS)
def test_partial_accept_and_explicit_request(version: str, workspace: Workspace) -> None:
    """M-<right> accepts the next word, C-M-<right> the next line; C-c \\ asks now, and the
    server answers it from the model, not from its cache."""
    data = drive(version, "partial", workspace)
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["after_word"] == "    return"
    assert data["ghost_after_word"] == " a + b"  # the rest, from the server's cache
    assert data["after_line"] == "    " + DEFAULT_COMPLETION
    assert data["cache_before_key"] == "exact"
    assert data["cache_after_key"] == "miss"
    assert data["ghost_after_key"] == DEFAULT_COMPLETION
    assert ours(data) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_real_model_ghost_text_mid_word(version: str, workspace: Workspace) -> None:
    """Qwen2.5-Coder-0.5B: ``ret`` typed at 150 ms a key in a function body, then a pause,
    shows ghost text; M-<right> accepts a word of it, TAB the rest; then at a line start."""
    model = real_model_path()
    data = drive(version, "midword_real", workspace, model=str(model), timeout_s=240)
    check_midword_real(data, f"emacs {version}")


@pytest.mark.parametrize("version", VERSIONS)
def test_settings_plist_is_sent_untouched(version: str, tmp_path: Path) -> None:
    """Every server setting in ``coder-lsp-settings`` reaches initializationOptions as given
    (encoded by jsonrpc as eglot sends it; false is ``:json-false``, null is nil): the
    package keeps no list of settings of its own."""
    settings = {k: p["default"] for k, p in settings_schema()["properties"].items()}
    settings |= {
        "repoContext": False,
        "repoShare": 0.25,
        "languages": ["python"],
        "backend": {"kind": "llama-server", "url": "http://127.0.0.1:8080", "slot": 1},
    }
    given, out = tmp_path / "settings.json", tmp_path / "out.json"
    given.write_text(json.dumps(settings))
    lisp = f"""(progn
      (add-to-list 'load-path {json.dumps(str(ROOT / "editors" / "emacs"))})
      (require 'coder-lsp)
      (require 'jsonrpc)
      (setq coder-lsp-settings
            (json-parse-string
             (with-temp-buffer (insert-file-contents {json.dumps(str(given))}) (buffer-string))
             :object-type 'plist :array-type 'array :null-object nil :false-object :json-false))
      (with-temp-file {json.dumps(str(out))}
        (insert (jsonrpc--json-encode (coder-lsp--initialization-options)))))"""
    (tmp_path / "home").mkdir()
    subprocess.run(
        [str(emacs(version)), *FLAGS[version], "--batch", "--eval", lisp],
        check=True,
        timeout=60,
        capture_output=True,
        env={**os.environ, "HOME": str(tmp_path / "home")},
    )
    assert json.loads(out.read_text()) == settings
