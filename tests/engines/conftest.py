"""Real inference engines for the remote-backend tests, started on loopback ports.

llama-server comes from ``scripts/install-llama-server.sh`` (Debian sid's build, unpacked
under ~/.cache/coder-lsp-dev); the model is the real Qwen2.5-Coder-0.5B that
``scripts/test`` pulls. Both are required: the tests fail, never skip, when they are
missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lsp_server.backends.base import CancelToken, Generation, GenerationRequest
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.core import CompletionRequest, DocumentSnapshot, FimContext
from lsp_server.registry import load_registry, local_path

DEV_CACHE = Path(os.environ.get("CODER_LSP_DEV_CACHE", Path.home() / ".cache/coder-lsp-dev"))
LLAMA_SERVER = DEV_CACHE / "bin" / "llama-server"
MODEL = "qwen2.5-coder-0.5b"
API_KEY = "test-key-5f1c"
"""The key the test engines require (a test value, not a secret)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_path() -> Path:
    path = local_path(load_registry().get(MODEL))
    assert path.is_file(), f"{path} missing: run scripts/test (it pulls {MODEL})"
    return path


ROOT = Path(__file__).resolve().parents[2]
URI = "file:///tmp/coder-lsp-engines/add.py"
SOURCE = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
"""The file every engine test completes in (the cursor at line 1, character 4)."""
CTX = FimContext(prefix="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n")
"""SOURCE's window at that cursor; any engine completes it with ``return a + b``."""
COUNTING = FimContext(prefix="# count to a thousand\n", suffix="")
"""A window whose completion goes on for long: for cancelling mid-stream."""


def add_request() -> CompletionRequest:
    """An invoked completion request at SOURCE's cursor (for engine-level tests)."""
    doc = DocumentSnapshot("file:///t/add.py", SOURCE, "python", 1, "/t/add.py")
    return CompletionRequest(doc, SOURCE.index("\n\n"), invoked=True)


def fim_request(backend: Any, ctx: FimContext = CTX, **kw: Any) -> GenerationRequest:
    """A request for ``ctx`` in ``backend``'s template: 24 tokens, no time limits."""
    prompt = render_fim_prompt(backend.info.template, ctx)
    kw = {"max_tokens": 24, "time_budget_ms": None, "max_predict_ms": None, **kw}
    return GenerationRequest(prompt, **kw)


def cancel_after_first_piece(backend: Any, ctx: FimContext = CTX) -> Generation:
    """Generate up to 1,500 tokens in a thread, cancel once the first piece arrived, and
    return the generation (asserting that it ended soon after the cancel)."""
    cancel = CancelToken()
    first = threading.Event()
    result: list[Generation] = []

    def should_stop(text: str) -> bool:
        first.set()
        return False

    req = fim_request(backend, ctx, max_tokens=1500, should_stop=should_stop)
    worker = threading.Thread(target=lambda: result.append(backend.generate(req, cancel)))
    try:
        worker.start()
        assert first.wait(60), "no piece arrived"
        cancel.cancel()
        worker.join(30)
        assert not worker.is_alive(), "the generation went on after the cancel"
    finally:
        cancel.cancel()
        worker.join(30)
    return result[0]


async def complete_once_back(engine: Any, request: Callable[[], Any], within: float = 60) -> Any:
    """The first result with a completion, asking every 0.1 s while an engine comes back
    (restarted, recovered); fails with the last reason after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        await asyncio.sleep(0.1)
        got = await asyncio.wait_for(engine.complete(request()), 60)
        if got.completion is not None:
            return got
        assert time.monotonic() < deadline, got.reason


def health(url: str) -> int | None:
    """The /health status code, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return None


class LlamaServer:
    """One llama-server process on a loopback port (start, kill, restart)."""

    def __init__(self, *, slots: int = 1, ctx: int = 2048, api_key: str | None = API_KEY):
        assert LLAMA_SERVER.exists(), f"{LLAMA_SERVER} missing: run scripts/install-llama-server.sh"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.slots, self.ctx, self.api_key = slots, ctx, api_key
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen_loading = False
        """Whether /health answered 503 (model loading) while starting."""

    def start(self, *, wait: bool = True) -> LlamaServer:
        cmd = [str(LLAMA_SERVER), "-m", str(model_path()), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "-t", "1", "-np", str(self.slots), "-c"]
        cmd += [str(self.ctx * self.slots)]
        if self.api_key:
            cmd += ["--api-key", self.api_key]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "llama-server exited"
            code = health(self.url)
            if code == 503:
                self.seen_loading = True
            if code == 200:
                return
            time.sleep(0.02)
        raise AssertionError(f"llama-server at {self.url} never became ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def slots_busy(self) -> list[bool]:
        """Whether each slot is processing (from /slots)."""
        req = urllib.request.Request(
            self.url + "/slots", headers={"Authorization": f"Bearer {self.api_key}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return [bool(s.get("is_processing")) for s in json.load(r)]


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """A llama-server with the real Qwen 0.5B model, -t 1 -np 1 -c 2048, with an API key."""
    server = LlamaServer().start()
    yield server
    server.stop()


@pytest.fixture
def own_llama_server() -> Iterator[LlamaServer]:
    """A llama-server of the test's own (to kill and restart); not started yet."""
    server = LlamaServer()
    yield server
    server.stop()


@pytest.fixture
def api_key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CODER_LSP_API_KEY", API_KEY)
    return API_KEY


class Standin:
    """One stand-in engine process (tests/engines/standin_engines.py) on a loopback port."""

    def __init__(self, kind: str, *extra: str, ctx: int = 2048) -> None:
        self.kind, self.extra, self.ctx = kind, list(extra), ctx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, preload: bool = False) -> Standin:
        root = Path(__file__).resolve().parents[2]
        cmd = [sys.executable, "-m", "tests.engines.standin_engines", self.kind]
        cmd += ["--port", str(self.port), "--model", str(model_path()), "--ctx", str(self.ctx)]
        cmd += [*self.extra, *(["--preload"] if preload else [])]
        env = {**os.environ, "PYTHONPATH": str(root)}
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        probe = "/api/version" if self.kind == "ollama" else "/health"
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"the {self.kind} stand-in exited"
            try:
                with urllib.request.urlopen(self.url + probe, timeout=2):
                    return self
            except OSError:
                assert time.monotonic() < deadline, f"the {self.kind} stand-in never answered"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> list[dict[str, object]]:
        with urllib.request.urlopen(self.url + "/standin/log", timeout=5) as r:
            return list(json.load(r))

    def fault(self, **fault: object) -> None:
        req = urllib.request.Request(
            self.url + "/standin/fault", data=json.dumps(fault).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5):
            pass


@pytest.fixture(scope="module")
def ollama() -> Iterator[Standin]:
    """The Ollama stand-in with the real Qwen 0.5B (loaded on first use, like Ollama)."""
    server = Standin("ollama").start()
    yield server
    server.stop()


@pytest.fixture
def own_ollama() -> Iterator[Standin]:
    """An Ollama stand-in of the test's own (to kill and restart); not started yet."""
    server = Standin("ollama")
    yield server
    server.stop()
