"""The llama-server backend against a real llama-server with the real Qwen 0.5B model.

Scenarios as for the in-process backend: completion, cancellation mid-generation, the
engine killed mid-stream and restarted, a wrong key, a model still loading — plus the
golden test: the token ids sent to llama-server are the ones the in-process backend
evaluates for the same request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time

import pytest

from lsp_server import engine as engine_module
from lsp_server.backends.base import CancelToken, StopReason
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.backends.llama_server import LlamaServerBackend
from lsp_server.completion.pipeline import complete
from lsp_server.core import FimContext, Shape
from lsp_server.engine import Engine, ModelState
from lsp_server.errors import EngineAuthError, EngineError
from lsp_server.settings import BackendSettings, Settings
from tests.engines.conftest import (
    API_KEY,
    CTX,
    ROOT,
    SOURCE,
    URI,
    LlamaServer,
    add_request,
    cancel_after_first_piece,
    complete_once_back,
    fim_request,
    model_path,
)
from tests.engines.lsp_pipe import complete_over_stdio

pytestmark = pytest.mark.real_model

LIMITS = {"time_budget_ms": None, "max_predict_ms": None}


def connect(server: LlamaServer, **kw: object) -> LlamaServerBackend:
    return LlamaServerBackend.connect(server.url, api_key=API_KEY, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def in_process() -> LlamaCppBackend:
    b = LlamaCppBackend.load(model_path(), n_ctx=2048, n_threads=1)
    yield b
    b.close()


# --- connecting and completing -------------------------------------------------------


@pytest.mark.parametrize("tokenizer", ["local", "remote"])
def test_connect_learns_context_and_template_and_completes(
    llama_server: LlamaServer, tokenizer: str
) -> None:
    b = connect(llama_server, vocab=None if tokenizer == "local" else "remote")
    try:
        assert b.tokenizer_kind == tokenizer
        assert (b.info.n_ctx, b.info.template.name) == (2048, "qwen")
        got = b.generate(fim_request(b), CancelToken())
        assert got.text.startswith("return a + b")
        assert got.prompt_tokens > 10 and got.generated_tokens > 0
        again = b.generate(fim_request(b), CancelToken())
        # cache_prompt: the same prompt again evaluates (almost) nothing.
        assert again.evaluated_tokens <= 1
        assert again.text == got.text
    finally:
        b.close()


@pytest.mark.parametrize("tokenizer", ["local", "remote"])
def test_golden_token_ids_equal_the_in_process_ones(
    llama_server: LlamaServer, in_process: LlamaCppBackend, tokenizer: str
) -> None:
    b = connect(llama_server, vocab=None if tokenizer == "local" else "remote")
    tricky = FimContext(
        prefix="# <|fim_prefix|> is text here\nx = 'é中文🙂'\n\tdef  f():\n        ",
        suffix="\n<|file_sep|>not a separator\n",
    )
    try:
        for ctx in (CTX, tricky):
            req = fim_request(b, ctx, max_tokens=4)
            b.generate(req, CancelToken())
            sent = b.last_body["prompt"]  # type: ignore[index]
            assert sent == in_process.prompt_tokens(req.prompt)
        # The code's special-token texts stayed text: only the template's three markers.
        prefix_id = in_process.tokenizer.special_id("<|fim_prefix|>")
        sep_id = in_process.tokenizer.special_id("<|file_sep|>")
        assert sent.count(prefix_id) == 1 and sep_id not in sent
    finally:
        b.close()


def test_same_completion_as_in_process_through_the_pipeline(
    llama_server: LlamaServer, in_process: LlamaCppBackend
) -> None:
    b = connect(llama_server)
    settings = dataclasses.replace(Settings(), n_ctx=2048, max_tokens=48, **LIMITS)  # type: ignore[arg-type]
    req = add_request()
    try:
        remote = complete(req, b, settings, CancelToken())
        local = complete(req, in_process, settings, CancelToken())
        assert remote.shape is local.shape is not Shape.NONE
        assert remote.prompt is not None and local.prompt is not None
        assert b.last_body["prompt"] == in_process.prompt_tokens(local.prompt)  # type: ignore[index]
        assert remote.completion is not None and local.completion is not None
        assert remote.completion.text == local.completion.text
    finally:
        b.close()


# --- cancellation ------------------------------------------------------------------------


def test_cancel_mid_generation_closes_the_stream_and_frees_the_slot(
    llama_server: LlamaServer,
) -> None:
    b = connect(llama_server)
    try:
        got = cancel_after_first_piece(b)
        assert got.stop_reason is StopReason.CANCELLED
        assert got.generated_tokens < 1500
        # The engine saw the connection close and stopped: its slot goes idle (polled,
        # bounded; 1,500 tokens would take the engine about a minute here).
        deadline = time.monotonic() + 20
        while any(llama_server.slots_busy()):
            assert time.monotonic() < deadline, "the slot kept generating after the cancel"
            time.sleep(0.05)
        after = b.generate(fim_request(b), CancelToken())
        assert after.text.startswith("return a + b")
    finally:
        b.close()


def test_cancel_before_the_first_token_answers_at_once(llama_server: LlamaServer) -> None:
    b = connect(llama_server)
    cancel = CancelToken()
    cancel.cancel()
    try:
        got = b.generate(fim_request(b), cancel)
        assert (got.text, got.stop_reason) == ("", StopReason.CANCELLED)
    finally:
        b.close()


def test_hard_limit_mid_line_yields_whole_lines_only(llama_server: LlamaServer) -> None:
    b = connect(llama_server)
    try:
        for limit in (1.0, 150.0, 400.0):
            got = b.generate(fim_request(b, max_tokens=400, max_predict_ms=limit), CancelToken())
            if got.stop_reason is StopReason.TIMEOUT:
                full = b.generate(
                    fim_request(b, max_tokens=got.generated_tokens + 1), CancelToken()
                )
                assert full.text.startswith(got.text)
                rest = full.text[len(got.text) :]
                assert got.text == "" or rest == "" or rest.startswith("\n")
    finally:
        b.close()


# --- faults ------------------------------------------------------------------------------


def test_wrong_key_is_refused_and_never_shown(llama_server: LlamaServer) -> None:
    with pytest.raises(EngineAuthError) as err:
        LlamaServerBackend.connect(llama_server.url, api_key="wrong-key-123")
    assert "refused the API key" in str(err.value)
    assert "wrong-key-123" not in str(err.value)
    with pytest.raises(EngineAuthError):
        LlamaServerBackend.connect(llama_server.url, api_key=None)


def test_model_loading_is_waited_for(own_llama_server: LlamaServer) -> None:
    own_llama_server.start(wait=False)
    b = None
    deadline = time.monotonic() + 60
    while b is None:
        try:
            b = connect(own_llama_server)  # waits through 503 "loading model"
        except EngineError as err:
            assert "unreachable" in str(err)  # the port is not open yet
            assert time.monotonic() < deadline
            time.sleep(0.01)
    try:
        assert b.generate(fim_request(b), CancelToken()).text.startswith("return a + b")
    finally:
        b.close()


def test_killed_mid_stream_fails_clearly_then_reconnects_after_restart(
    own_llama_server: LlamaServer, api_key_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BACKOFF_S", (0.05, 0.2))
    own_llama_server.start()
    settings = dataclasses.replace(
        Settings(),
        backend=BackendSettings(kind="llama-server", url=own_llama_server.url),
        max_tokens=1500,
        time_budget_ms=None,
        max_predict_ms=None,
    )
    engine = Engine()
    states: list[tuple[ModelState, str]] = []
    engine.add_listener(lambda s, d: states.append((s, d)))
    engine.configure(settings)
    req = add_request()

    async def scenario() -> None:
        assert await engine.load() is ModelState.READY
        pending = asyncio.ensure_future(engine.complete(req))
        deadline = time.monotonic() + 60
        while not any(own_llama_server.slots_busy()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # tokens are streaming now
        own_llama_server.stop()
        got = await asyncio.wait_for(pending, 30)
        assert got.completion is None and "unavailable" in got.reason
        failed = [d for s, d in states if s is ModelState.FAILED]
        assert len(failed) == 1 and "dropped" in failed[0]
        # Still down: empty answers at once, and the failure is not repeated.
        for _ in range(3):
            await asyncio.sleep(0.1)
            again = await asyncio.wait_for(engine.complete(req), 30)
            assert again.completion is None
        # Each reason is said once (dropped, then unreachable), never repeated per retry.
        failed = [d for s, d in states if s is ModelState.FAILED]
        assert len(failed) == len(set(failed)) <= 2
        assert all("unreachable" in d for d in failed[1:])
        own_llama_server.start()
        await complete_once_back(engine, lambda: req)
        assert engine.state is ModelState.READY

    try:
        asyncio.run(scenario())
    finally:
        engine.shutdown()


# --- the exact command line other tools use ----------------------------------------------


def test_stdio_server_with_only_backend_and_url(llama_server: LlamaServer) -> None:
    """``coder-lsp --stdio --backend llama-server --url URL``: no --model, key from the env."""
    cmd = [sys.executable, "-m", "lsp_server", "--stdio", "--backend", "llama-server"]
    cmd += ["--url", llama_server.url]
    env = {**os.environ, "CODER_LSP_API_KEY": API_KEY, "PYTHONPATH": str(ROOT)}
    text, stderr = complete_over_stdio(cmd, env, URI, SOURCE, 1, 4)
    assert text.startswith("return a + b")
    assert API_KEY not in stderr
