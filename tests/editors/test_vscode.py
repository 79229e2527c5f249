"""End-to-end tests of the VS Code extension (editors/vscode) in the real VS Code workbench.

code-server (VS Code's workbench and extension host, from npm) runs the packaged .vsix;
headless Chromium, driven by Playwright (tests/editors/vscode_e2e.mjs), types in a small
Python project. The tools come from ``scripts/install-vscode-e2e.sh`` (cached outside the
repo); without them these tests fail under CI=true and skip locally. The harness (start
code-server, make a project, run a scenario) is tests/editors/vscode.py, shared with
bench/ghost.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.editors.vscode import (
    EXT_DIR,
    FAKE_SERVER,
    REAL_MODEL,
    REPO,
    SERVER,
    CodeServer,
    Tools,
    find_tools,
    running_code_server,
)
from tests.editors.vscode import drive as _drive
from tests.editors.vscode import free_port as _free_port
from tests.editors.vscode import project as _project
from tests.editors.vscode import user_settings as _user_settings
from tests.tinymodel import DEFAULT_COMPLETION, write_tiny_model


@pytest.fixture(scope="module")
def tools() -> Tools:
    """The installed e2e tools (fails in CI / skips locally when missing)."""
    return find_tools()


@pytest.fixture(scope="module")
def code_server(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeServer]:
    """Package the extension, install it into a private code-server, and run that server."""
    with running_code_server(tools, tmp_path_factory.mktemp("vscode")) as cs:
        yield cs


def _complete_in_editor(
    cs: CodeServer, name: str, model: str, timeout: int, toggle: bool = False
) -> dict:
    ws = _project(
        cs.root,
        name,
        {"coderLsp.serverPath": str(SERVER), "coderLsp.model": model, "coderLsp.logLevel": "debug"},
    )
    result = _drive(
        cs,
        "complete",
        ws,
        name=name,
        timeout=timeout,
        file="ops.py",
        type="def add(a, b):",
        diskFile=str(ws / "ops.py"),
        toggle=toggle,
    )
    result["workspace"] = str(ws)
    return result


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deterministic test model (completes ``return a + b``)."""
    path = tmp_path_factory.mktemp("model") / "tiny-deepseek-fim.gguf"
    write_tiny_model(path)
    return path


def test_extension_unit_tests(tools: Tools) -> None:
    """The extension's own unit tests (settings, status text, server path, crash policy) pass."""
    proc = subprocess.run(
        [tools.node, str(EXT_DIR / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "."],
        cwd=EXT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = sorted(str(p) for p in (EXT_DIR / "out" / "test").glob("*.test.js"))
    assert len(tests) >= 3, tests
    proc = subprocess.run(
        [tools.node, "--test", "--test-reporter=tap", *tests],
        cwd=EXT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = re.search(r"^# pass (\d+)$", proc.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 20, proc.stdout
    assert re.search(r"^# fail 0$", proc.stdout, re.MULTILINE), proc.stdout


def test_ghost_text_accepted_and_saved(code_server: CodeServer, tiny_model: Path) -> None:
    """Typing a function header shows the model's ghost text; Tab inserts it; save writes it.

    Then the toggle command turns completions off (no ghost text) and on again.
    """
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run scripts/setup.sh")
    result = _complete_in_editor(code_server, "complete", str(tiny_model), timeout=240, toggle=True)
    assert DEFAULT_COMPLETION in result["ghost"]
    assert "def add(a, b):\n    return a + b" in result["disk"]
    assert "coder-lsp: ready (tiny-deepseek-fim)" in result["statusBeforeTyping"]
    assert "coder-lsp: ready" in result["status"] or "coder-lsp: working" in result["status"]
    # Toggled off (a didChangeConfiguration to the server): no ghost text; on again: back.
    assert "coder-lsp: off" in result["statusOff"]
    assert result["ghostWhileOff"] == ""
    assert "coder-lsp: ready" in result["statusOn"]
    assert DEFAULT_COMPLETION in result["ghostAfterOn"]
    for shot in result["screenshots"]:
        assert Path(shot).stat().st_size > 10_000, shot
    print(f"screenshots: {result['screenshots']} ({result['seconds']:.1f} s)", file=sys.stderr)


def test_missing_server_says_how_to_install(code_server: CodeServer, tmp_path: Path) -> None:
    """A server path that does not exist gives one error naming the install command."""
    missing = tmp_path / "nowhere" / "coder-lsp"
    ws = _project(code_server.root, "missing", {"coderLsp.serverPath": str(missing)})
    result = _drive(code_server, "missing", ws)
    assert "coder-lsp: not installed" in result["status"]
    messages = [t for t in result["toasts"] if "not found" in t]
    assert len(messages) == 1, result["toasts"]
    assert str(missing) in messages[0]
    assert "scripts/setup.sh" in messages[0] and "coderLsp.serverPath" in messages[0]


@pytest.mark.parametrize("mode", ["crash", "crash-early"])
def test_crashing_server_is_restarted_then_reported(code_server: CodeServer, mode: str) -> None:
    """A server dying at start-up is restarted maxRestarts times, then reported once —
    whether it dies once initialized or while the client is still setting up."""
    ws_root = code_server.root / f"{mode}-files"
    ws_root.mkdir()
    counter = ws_root / "starts.txt"
    ws = _project(
        code_server.root,
        mode,
        {
            "coderLsp.serverPath": shutil.which("python3") or sys.executable,
            "coderLsp.serverArgs": [str(FAKE_SERVER), "--mode", mode, "--counter", str(counter)],
            "coderLsp.maxRestarts": 2,
        },
    )
    result = _drive(code_server, "crash", ws)
    assert "coder-lsp: stopped" in result["status"]
    starts = counter.read_text().splitlines()
    assert len(starts) == 3, starts  # the first start plus maxRestarts restarts
    crash_messages = [t for t in result["toasts"] if "crashed" in t]
    assert len(crash_messages) == 1, result["toasts"]
    assert "crashed 3 times" in crash_messages[0]


def test_model_loading_shows_progress_without_errors(code_server: CodeServer) -> None:
    """While the model loads the status bar shows progress; typing then raises no errors,
    and the request made while loading is answered once the model is ready."""
    files = code_server.root / "loading-files"
    files.mkdir()
    release, requests = files / "release", files / "requests.txt"
    ws = _project(
        code_server.root,
        "loading",
        {
            "coderLsp.serverPath": shutil.which("python3") or sys.executable,
            "coderLsp.serverArgs": [
                str(FAKE_SERVER),
                "--mode",
                "slow-load",
                "--release",
                str(release),
                "--requests",
                str(requests),
            ],
            "coderLsp.model": "fake-model",
        },
    )
    result = _drive(
        code_server, "loading", ws, file="ops.py", type="def add(a, b):", releaseFile=str(release)
    )
    assert "coder-lsp: loading fake-model 40%" in result["statusLoading"]
    assert "loading" in result["statusWhileTyping"]
    assert result["toastsWhileLoading"] == [], result["toastsWhileLoading"]
    assert "coder-lsp: ready (fake-model)" in result["status"]
    assert result["toasts"] == [], result["toasts"]
    assert DEFAULT_COMPLETION in result["ghostAfterLoad"], result["log"]
    sent = requests.read_text().splitlines()
    assert "textDocument/inlineCompletion" in sent, sent
    # VS Code cancels requests it still wants; the extension never passes that on.
    assert "$/cancelRequest" not in sent, sent


def test_typing_while_the_server_starts_still_shows_ghost_text(
    code_server: CodeServer, tiny_model: Path, tmp_path: Path
) -> None:
    """Keys typed while the status bar says "starting" (no server to ask yet) are asked for
    once the server runs: ghost text appears without another key."""
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run scripts/setup.sh")
    slow = tmp_path / "slow-coder-lsp"
    slow.write_text(f'#!/bin/sh\nsleep 8\nexec "{SERVER}" "$@"\n')
    slow.chmod(0o755)
    ws = _project(
        code_server.root,
        "starting",
        {"coderLsp.serverPath": str(slow), "coderLsp.model": str(tiny_model)},
    )
    result = _drive(code_server, "starting", ws, file="ops.py", type="def add(a, b):")
    assert "coder-lsp: starting" in result["statusWhileTyping"]
    assert "starting" in result["statusAfterTyping"], result["log"]
    assert DEFAULT_COMPLETION in result["ghost"], result["log"]


def test_alt_backslash_asks_the_model_again_past_the_cache(
    code_server: CodeServer, tiny_model: Path, tmp_path: Path
) -> None:
    """Alt+\\, pressed as a key in the browser: VS Code asks again (trigger kind Invoked)
    and the server answers from the model although its cache holds an answer for that spot
    (which an automatic request there got just before); the ghost text shows."""
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run scripts/setup.sh")
    log = tmp_path / "server.log"
    ws = _project(
        code_server.root,
        "explicit",
        {
            "coderLsp.serverPath": str(SERVER),
            "coderLsp.serverArgs": ["--stdio", "--log-file", str(log)],
            "coderLsp.model": str(tiny_model),
        },
    )
    result = _drive(
        code_server,
        "explicit",
        ws,
        file="ops.py",
        type="def add(a, b):",
        ghostTimeoutMs=30_000,
        serverLog=str(log),
    )
    assert DEFAULT_COMPLETION in result["ghost"], result["log"]
    assert result["cacheBeforeKey"] == "exact", result["log"]
    assert DEFAULT_COMPLETION in result["ghostBeforeKey"], result["log"]
    after = result["answersAfterKey"]
    spot = {k: result["spot"][k] for k in ("line", "character")}
    # The key's request, at the same spot, went to the model; nothing else asked meanwhile.
    assert [a["cache"] for a in after] == ["miss"], after
    assert {k: after[0][k] for k in ("line", "character")} == spot, (after, spot)
    assert DEFAULT_COMPLETION in result["ghostAfterKey"], result["log"]


def test_slow_answer_mid_word_shows_ghost_text_and_partial_accept(code_server: CodeServer) -> None:
    """A server that needs 3 s (more than the 750 ms VS Code's default quick suggestions
    give inline providers inside a word, before cancelling them): typing ``ret`` and stopping
    still shows its ghost text, and Ctrl+Right / Tab accept a word, then the rest."""
    files = code_server.root / "slow-files"
    files.mkdir()
    requests = files / "requests.txt"
    ws = _project(
        code_server.root,
        "slow",
        {
            "coderLsp.serverPath": shutil.which("python3") or sys.executable,
            "coderLsp.serverArgs": [
                str(FAKE_SERVER),
                "--mode",
                "slow-answer",
                "--delay",
                "3",
                "--answer",
                "urn a + b",
                "--requests",
                str(requests),
            ],
        },
    )
    result = _drive(
        code_server,
        "midword",
        ws,
        file="ops.py",
        header="def add(a, b):",
        prefix="ret",
        keyDelayMs=150,
        header2="def mul(a, b):",
        ghostTimeoutMs=30_000,
        diskFile=str(ws / "ops.py"),
    )
    assert result["ghost"] == "urn a + b", result["log"]
    assert result["midwordMs"] >= 2500, result["midwordMs"]  # it came from the slow answer
    assert _line_after(result["diskAfterWord"], "    ret") == "    return", result["diskAfterWord"]
    assert result["ghostAfterWord"] == " a + b", result["log"]
    assert _line_after(result["diskAfterRest"], "    ret") == "    return a + b"
    assert result["ghost2"] == "urn a + b", result["log"]
    sent = requests.read_text().splitlines()
    assert "$/cancelRequest" not in sent, sent


@pytest.mark.real_model
def test_real_model_ghost_text_mid_word_with_default_settings(code_server: CodeServer) -> None:
    """The issue's scenario with the real Qwen2.5-Coder-0.5B and VS Code's default settings
    (quick suggestions wait 750 ms for inline providers, then cancel them): type ``ret`` in
    a function body at 150 ms a key, stop, and ghost text appears; Ctrl+Right accepts its
    next word, Tab the rest. Then at the start of a new body line. The server is found
    through ``coderLsp.serverPath`` in the *User* settings (not the workspace's)."""
    from lsp_server.registry import is_downloaded, load_registry

    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run scripts/setup.sh")
    if not is_downloaded(load_registry().get(REAL_MODEL)):
        pytest.fail(f"{REAL_MODEL} is not downloaded: run `coder-lsp models pull {REAL_MODEL}`")
    ws = _project(code_server.root, "midword", {"coderLsp.model": REAL_MODEL})
    with _user_settings(code_server, {"coderLsp.serverPath": str(SERVER)}):
        result = _drive(
            code_server,
            "midword",
            ws,
            timeout=420,
            file="ops.py",
            header="def add(a, b):",
            prefix="ret",
            keyDelayMs=150,
            header2="def mul(a, b):",
            ghostTimeoutMs=120_000,
            diskFile=str(ws / "ops.py"),
        )
    assert "coder-lsp: ready (qwen2.5-coder-0.5b)" in result["statusBeforeTyping"]
    ghost = result["ghost"]
    assert ghost.strip(), result["log"]
    first = ghost.splitlines()[0]
    # Ctrl+Right inserted the start of the ghost text, one word (VS Code's rule: blanks
    # before a word are a step of their own), and nothing else, after "ret".
    typed = "    ret"
    word_line = _line_after(result["diskAfterWord"], typed)
    assert (typed + first).startswith(word_line), (word_line, ghost)
    step = word_line[len(typed) :]
    assert re.fullmatch(r"\s+|\s*\w+|\s*[^\w\s]+", step), (word_line, ghost)
    assert result["ghostAfterWord"].startswith(first[len(step) :].strip()), result["log"]
    # Tab accepted the rest: the line is what the ghost text showed.
    rest_line = _line_after(result["diskAfterRest"], typed)
    assert rest_line == typed + first, result["diskAfterRest"]
    final = result["diskFinal"]
    compile(final, "ops.py", "exec")  # the accepted completions leave valid Python
    assert result["ghost2"].strip(), result["log"]
    print(
        f"time to ghost text: mid-word {result['midwordMs']} ms, "
        f"line start {result['lineStartMs']} ms; ghost {ghost!r}, then {result['ghost2']!r}",
        file=sys.stderr,
    )


def _line_after(text: str, start: str) -> str:
    """The first line of ``text`` that starts with ``start`` (or "" when none does)."""
    return next((line for line in text.splitlines() if line.startswith(start)), "")


GEOMETRY = '''"""Shapes."""


def rectangle_area(width: float, height: float) -> float:
    """The area of a width x height rectangle."""
    return width * height
'''


@contextlib.contextmanager
def _recording_engine(model: Path) -> Iterator[str]:
    """An OpenAI-compatible engine on a loopback port that records every request
    (tests/engines/standin_engines.py: the vLLM stand-in as a generic engine, so prompts
    arrive as text), generating with ``model``; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "tests.engines.standin_engines", "vllm", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--model", str(model), "--hide-context", "--preload"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the engine stand-in exited"
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the engine stand-in never answered"
                time.sleep(0.1)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _engine_prompts(url: str) -> list[str]:
    """The prompt text of every completion request the stand-in engine received."""
    with urllib.request.urlopen(url + "/standin/log", timeout=5) as resp:
        log = json.load(resp)
    return [str(e["body"]["prompt"]) for e in log if isinstance(e.get("body"), dict)]


@pytest.mark.parametrize("repo_context", [True, False])
def test_repo_context_setting_reaches_the_server(
    code_server: CodeServer, tiny_model: Path, repo_context: bool
) -> None:
    """``coderLsp.repoContext`` (a privacy switch) and ``coderLsp.backend``, set in VS Code,
    reach the server: the engine, which records every prompt, sees the imported file's
    definition in front of the code only while repository context is on."""
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run scripts/setup.sh")
    name = f"repo-{str(repo_context).lower()}"
    ws = code_server.root / name
    (ws / ".vscode").mkdir(parents=True)
    (ws / ".git").mkdir()
    (ws / "geometry.py").write_text(GEOMETRY)
    (ws / "main.py").write_text("from geometry import rectangle_area\n\n\n")
    with _recording_engine(tiny_model) as engine:
        settings = {
            "coderLsp.serverPath": str(SERVER),
            "coderLsp.model": str(tiny_model),  # the vocabulary: the engine has no /tokenize
            "coderLsp.backend": {"kind": "openai", "url": engine},
            "coderLsp.repoContext": repo_context,
            "coderLsp.logLevel": "debug",
        }
        (ws / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2))
        _drive(
            code_server,
            "complete",
            ws,
            name=name,
            timeout=240,
            file="main.py",
            type="def total(shapes):",
            diskFile=str(ws / "main.py"),
        )
        prompts = _engine_prompts(engine)
    assert prompts, "no completion request reached the engine"
    assert all("from geometry import rectangle_area" in p for p in prompts), prompts[0]
    with_definition = ["return width * height" in p for p in prompts]
    if repo_context:
        # The first request may come before the index is ready; later ones have it.
        assert any(with_definition), prompts[-1]
    else:
        assert not any(with_definition), prompts
