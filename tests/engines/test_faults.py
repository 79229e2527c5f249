"""Fault paths of the remote backends, through real engine processes.

* an HTTP 5xx and a hung engine (a read timeout) — through the Ollama stand-in process,
  whose fault switch makes its next request fail or hang (no real engine fails on cue);
* the 400 ``exceed_context_size_error`` re-budget against the real llama-server,
  restarted with a smaller context while coder-lsp still holds the larger one;
* a local vocabulary that disagrees with the real llama-server's ``/tokenize``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

import pytest

from lsp_server import engine as engine_module
from lsp_server.backends import http as http_module
from lsp_server.backends.base import CancelToken
from lsp_server.backends.llama_server import LlamaServerBackend
from lsp_server.core import CompletionRequest, DocumentSnapshot, Shape
from lsp_server.engine import Engine, ModelState
from lsp_server.settings import BackendSettings, Settings
from tests.engines.conftest import (
    API_KEY,
    LlamaServer,
    Standin,
    add_request,
    complete_once_back,
    model_path,
)
from tests.tinymodel import write_tiny_model

pytestmark = pytest.mark.real_model


def engine_for(settings: Settings) -> tuple[Engine, list[tuple[ModelState, str]]]:
    engine = Engine()
    states: list[tuple[ModelState, str]] = []
    engine.add_listener(lambda s, d: states.append((s, d)))
    engine.configure(settings)
    return engine, states


def ollama_settings(url: str) -> Settings:
    return dataclasses.replace(
        Settings(),
        model=str(model_path()),
        n_ctx=2048,
        max_tokens=24,
        backend=BackendSettings(kind="ollama", url=url),
    )


def test_5xx_fails_once_clearly_then_recovers(
    own_ollama: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BACKOFF_S", (0.05, 0.2))
    own_ollama.start()
    engine, states = engine_for(ollama_settings(own_ollama.url))

    async def scenario() -> None:
        assert await engine.load() is ModelState.READY
        own_ollama.fault(status=500, count=1)
        got = await asyncio.wait_for(engine.complete(add_request()), 60)
        assert got.completion is None and "HTTP 500" in got.reason
        failed = [d for s, d in states if s is ModelState.FAILED]
        assert len(failed) == 1 and "answered HTTP 500" in failed[0]
        assert "Traceback" not in failed[0]
        got = await complete_once_back(engine, lambda: add_request())
        assert got.completion.text.startswith("return a + b")
        assert engine.state is ModelState.READY

    try:
        asyncio.run(scenario())
    finally:
        engine.shutdown()


def test_a_hung_engine_times_out_to_failed_and_leaves_nothing_hanging(
    own_ollama: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BACKOFF_S", (0.05, 0.2))
    monkeypatch.setattr(http_module, "IDLE_TIMEOUT_S", 3.0)
    own_ollama.start(preload=True)
    engine, states = engine_for(ollama_settings(own_ollama.url))

    async def scenario() -> None:
        assert await engine.load() is ModelState.READY
        own_ollama.fault(hang=True, count=1)
        started = time.monotonic()
        got = await asyncio.wait_for(engine.complete(add_request()), 60)
        assert got.completion is None
        assert time.monotonic() - started < 30  # the idle timeout, not the hang, ended it
        failed = [d for s, d in states if s is ModelState.FAILED]
        assert len(failed) == 1 and "in time" in failed[0]
        assert engine.waiting == 0
        # The engine saw coder-lsp close the hung request's connection.
        deadline = time.monotonic() + 10
        while not any(e.get("fault") and e.get("closed") for e in own_ollama.log()):
            assert time.monotonic() < deadline, "the hung request was left open"
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 60
        while (await asyncio.wait_for(engine.complete(add_request()), 60)).completion is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert engine.state is ModelState.READY

    try:
        asyncio.run(scenario())
    finally:
        engine.shutdown()


def test_llama_server_400_exceed_context_re_budgets_once(
    own_llama_server: LlamaServer, api_key_env: str
) -> None:
    """The engine restarts with a smaller context (-c 512) while coder-lsp still holds
    2048 from /props: the next prompt gets a 400 exceed_context_size_error with the new
    n_ctx, the prompt is built again for it, and the completion arrives — no failure."""
    source = Path("/usr/lib/python3.11/argparse.py").read_text()
    offset = source.index("    def _parse_known_args(")
    doc = DocumentSnapshot("file:///t/argparse.py", source, "python", 1, "/t/argparse.py")
    settings = dataclasses.replace(
        Settings(),
        n_ctx=4096,
        max_tokens=16,
        repo_context=False,
        backend=BackendSettings(kind="llama-server", url=own_llama_server.url),
    )
    own_llama_server.ctx = 2048
    own_llama_server.start()
    engine, states = engine_for(settings)

    async def scenario() -> None:
        assert await engine.load() is ModelState.READY
        assert engine.backend is not None and engine.backend.info.n_ctx == 2048
        own_llama_server.stop()
        own_llama_server.ctx = 512
        own_llama_server.start()
        got = await asyncio.wait_for(
            engine.complete(CompletionRequest(doc, offset, invoked=True)), 120
        )
        assert got.generation is not None and got.shape is not Shape.NONE, got.reason
        assert engine.backend is not None and engine.backend.info.n_ctx == 512
        assert got.generation.prompt_tokens < 512
        assert not [d for s, d in states if s is ModelState.FAILED]

    try:
        asyncio.run(scenario())
    finally:
        engine.shutdown()


def test_a_disagreeing_vocabulary_falls_back_to_the_engines_tokenizer(
    llama_server: LlamaServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = write_tiny_model(tmp_path / "other.gguf")  # DeepSeek-shaped, not Qwen's
    with caplog.at_level(logging.WARNING):
        b = LlamaServerBackend.connect(llama_server.url, api_key=API_KEY, vocab=wrong)
    try:
        assert b.tokenizer_kind == "remote" and "disagrees" in b.note
        assert b.info.template.name == "qwen"  # the engine's, not the wrong vocabulary's
        assert "differently from the engine" in caplog.text
        from lsp_server.completion.prompt import render_fim_prompt
        from lsp_server.core import FimContext

        ctx = FimContext(prefix="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n")
        from lsp_server.backends.base import GenerationRequest

        req = GenerationRequest(render_fim_prompt(b.info.template, ctx), max_tokens=16)
        assert b.generate(req, CancelToken()).text.startswith("return a + b")
    finally:
        b.close()


def test_the_status_says_when_the_tokenizer_is_remote(
    llama_server: LlamaServer, api_key_env: str, tmp_path: Path
) -> None:
    wrong = write_tiny_model(tmp_path / "other.gguf")
    settings = dataclasses.replace(
        Settings(),
        backend=BackendSettings(kind="llama-server", url=llama_server.url, tokenizer=str(wrong)),
    )
    engine, states = engine_for(settings)
    try:
        assert asyncio.run(engine.load()) is ModelState.READY
        ready = [d for s, d in states if s is ModelState.READY]
        assert ready and "disagrees with /tokenize" in ready[-1]
    finally:
        engine.shutdown()
