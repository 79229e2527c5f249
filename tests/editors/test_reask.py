"""A completion a time limit cut short shows up without a keystroke, in every editor.

On a busy machine the first generation can hit the server's hard time limit after a token
or two, before it holds a whole line: the answer is empty. The server then finishes it in
the background into its cache and sends ``coder-lsp/completionReady``; each client, still
at that document version and cursor, asks again and shows the cached answer as ghost text.

``maxPredictMs: 0`` makes the machine "busy" deterministically: every generation under
the limit ends at its first token (the tiny model's ``return``, not a whole line), so
without the follow-up and the client's re-ask no ghost text could ever appear. Client
settings are the editors' defaults (debounce / idle delay included).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.editors.conftest import Workspace
from tests.editors.test_emacs import VERSIONS as EMACS_VERSIONS
from tests.editors.test_emacs import drive as drive_emacs
from tests.editors.test_nvim import VERSIONS as NVIM_VERSIONS
from tests.editors.test_nvim import drive as drive_nvim
from tests.editors.test_vscode import (  # noqa: F401 (fixtures)
    SERVER,
    CodeServer,
    _drive,
    _project,
    code_server,
    tiny_model,
    tools,
)
from tests.tinymodel import DEFAULT_COMPLETION

BUSY = {"maxPredictMs": 0}
"""Server settings of a machine so busy that the time limit ends every generation at once."""


def assert_finished_in_background(requests: list[dict[str, Any]]) -> None:
    """The server's figures show it: a request cut short and answered empty, the follow-up
    that finished it, and a later request answered from the cache."""
    seen = [(r["outcome"], r["follow_up"], r["stop_reason"], r["cache"]) for r in requests]
    cut = [i for i, r in enumerate(seen) if r[:3] == ("empty", False, "timeout")]
    assert cut, seen
    follow = [i for i, r in enumerate(seen) if r[:2] == ("ok", True)]
    assert follow and follow[-1] > cut[0], seen
    assert any(r == ("ok", False, "", "exact") for r in seen[follow[-1] + 1 :]), seen


@pytest.mark.parametrize("version", NVIM_VERSIONS)
def test_nvim_shows_a_completion_the_time_limit_cut_short(
    version: str, workspace: Workspace
) -> None:
    data = drive_nvim(version, "reask", workspace, E2E_SETTINGS=json.dumps(BUSY))
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["accepted_line"] == "    " + DEFAULT_COMPLETION
    assert_finished_in_background(data["requests"])
    print(f"nvim {version}: ghost text after {data['ghost_ms']:.0f} ms", file=sys.stderr)


@pytest.mark.parametrize("version", EMACS_VERSIONS)
def test_emacs_shows_a_completion_the_time_limit_cut_short(
    version: str, workspace: Workspace
) -> None:
    data = drive_emacs(version, "reask", workspace, E2E_SETTINGS=json.dumps(BUSY))
    assert data["ghost"] == DEFAULT_COMPLETION
    assert data["accepted_line"] == "    " + DEFAULT_COMPLETION
    requests = [
        {k: (False if v == "json-false" or v is False else v) for k, v in r.items()}
        for r in data["requests"]
    ]
    assert_finished_in_background(requests)
    print(f"emacs {version}: ghost text after {data['ghost_ms']:.0f} ms", file=sys.stderr)


def test_vscode_shows_a_completion_the_time_limit_cut_short(
    code_server: CodeServer,  # noqa: F811
    tiny_model,  # noqa: F811
) -> None:
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run scripts/setup.sh")
    ws = _project(
        code_server.root,
        "reask",
        {
            "coderLsp.serverPath": str(SERVER),
            "coderLsp.model": str(tiny_model),
            "coderLsp.maxPredictMs": 0,
            "coderLsp.logLevel": "debug",
        },
    )
    result = _drive(
        code_server,
        "reask",
        ws,
        file="ops.py",
        type="def add(a, b):",
        ghostTimeoutMs=30_000,
        diskFile=str(ws / "ops.py"),
    )
    assert DEFAULT_COMPLETION in result["ghost"], result["log"]
    assert "def add(a, b):\n    return a + b" in result["disk"], result["disk"]
    print(f"vscode: ghost text after {result['ghostMs']} ms", file=sys.stderr)
