"""The Ollama backend against the Ollama stand-in (tests/engines/standin_engines.py).

Ollama cannot run on these machines; the stand-in speaks its wire format as ollama's own
``api/types.go`` and ``docs/api.md`` define it and generates with the real Qwen 0.5B.
Scenarios as for the other engines: completion, defused special-token text, cancellation
mid-stream, the engine killed mid-stream and restarted, the model loading on first use,
and the exact stdio command line. A wrong key is not a scenario here: Ollama has no API
keys (a key is only sent for a proxy in front of it).
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
from lsp_server.backends.ollama import OllamaBackend, context_length, parse_generate_line
from lsp_server.core import CompletionRequest, DocumentSnapshot, FimContext
from lsp_server.engine import Engine, ModelState
from lsp_server.errors import EngineError
from lsp_server.settings import BackendSettings, Settings
from tests.engines.conftest import (
    COUNTING,
    ROOT,
    SOURCE,
    URI,
    Standin,
    add_request,
    cancel_after_first_piece,
    complete_once_back,
    fim_request,
    model_path,
)
from tests.engines.lsp_pipe import complete_over_stdio
from tests.engines.standin_engines import OLLAMA_NAME

pytestmark = pytest.mark.real_model


def connect(server: Standin, **kw: object) -> OllamaBackend:
    return OllamaBackend.connect(server.url, vocab=model_path(), n_ctx=2048, **kw)  # type: ignore[arg-type]


def generations(server: Standin) -> list[dict[str, object]]:
    return [e for e in server.log() if e.get("path") == "/api/generate" and "body" in e]


def test_connect_learns_the_context_loads_the_model_and_completes(ollama: Standin) -> None:
    b = connect(ollama)
    try:
        assert (b.model, b.info.template.name) == (OLLAMA_NAME, "qwen")
        # Qwen2.5-Coder is trained for 32k; the setting (2048) is the smaller.
        assert b.info.n_ctx == 2048
        load = generations(ollama)[-1]["body"]
        assert load == {"model": OLLAMA_NAME, "keep_alive": "30m", "stream": False,
                        "options": {"num_ctx": 2048}}  # fmt: skip
        got = b.generate(fim_request(b), CancelToken())
        assert got.text.startswith("return a + b")
        assert got.stop_reason in (StopReason.EOS, StopReason.LENGTH)
        body = b.last_body or {}
        assert body["raw"] is True and body["stream"] is True and body["keep_alive"] == "30m"
        options = body["options"]
        assert (options["num_ctx"], options["temperature"]) == (2048, 0.0)
        assert "<|file_sep|>" in options["stop"]
        assert "suffix" not in body
        # Ollama's own figures: the same prompt again is served from its prefix cache.
        again = b.generate(fim_request(b), CancelToken())
        assert again.text.startswith("return a + b")
        assert again.evaluated_tokens <= 1 < got.evaluated_tokens
        assert got.generated_tokens > 0
        assert generations(ollama)[-1]["truncated"] is False
    finally:
        b.close()


def test_ollama_completion_equals_in_process(ollama: Standin) -> None:
    b = connect(ollama)
    local = LlamaCppBackend.load(model_path(), n_ctx=2048, n_threads=1)
    try:
        req = fim_request(b, max_tokens=16)
        assert b.generate(req, CancelToken()).text == local.generate(req, CancelToken()).text
        # The engine evaluated the very token ids the in-process backend does.
        assert generations(ollama)[-1]["prompt_ids"] == local.prompt_tokens(req.prompt)
    finally:
        local.close()
        b.close()


def test_special_token_text_in_code_never_becomes_the_token(ollama: Standin) -> None:
    b = connect(ollama)
    ctx = FimContext(prefix="# <|fim_middle|> and <|file_sep|> here\ndef f():\n    ", suffix="\n")
    try:
        b.generate(fim_request(b, ctx, max_tokens=2), CancelToken())
        ids = generations(ollama)[-1]["prompt_ids"]
        middle = b.tokenizer.special_id("<|fim_middle|>")
        sep = b.tokenizer.special_id("<|file_sep|>")
        assert ids.count(middle) == 1 and sep not in ids  # type: ignore[union-attr]
    finally:
        b.close()


def test_cancel_mid_stream_closes_it_and_the_engine_stops(ollama: Standin) -> None:
    b = connect(ollama)
    try:
        assert cancel_after_first_piece(b, COUNTING).stop_reason is StopReason.CANCELLED
        # The stand-in saw the connection go and stopped generating (polled, bounded).
        deadline = time.monotonic() + 30
        while not generations(ollama)[-1].get("cancelled"):
            assert time.monotonic() < deadline, "the engine kept generating after the cancel"
            time.sleep(0.05)
        assert int(generations(ollama)[-1]["generated"]) < 1500  # type: ignore[arg-type]
        assert b.generate(fim_request(b), CancelToken()).text.startswith("return a + b")
    finally:
        b.close()


def test_unknown_model_is_a_clear_error(ollama: Standin) -> None:
    with pytest.raises(EngineError, match=r"no model 'starcoder2:3b'.*ollama pull"):
        connect(ollama, model="starcoder2:3b")


def test_killed_mid_stream_fails_once_then_reconnects_after_restart(
    own_ollama: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BACKOFF_S", (0.05, 0.2))
    own_ollama.start()
    settings = dataclasses.replace(
        Settings(),
        model=str(model_path()),
        n_ctx=2048,
        backend=BackendSettings(kind="ollama", url=own_ollama.url),
        max_tokens=1500,
        time_budget_ms=None,
        max_predict_ms=None,
    )
    engine = Engine()
    states: list[tuple[ModelState, str]] = []
    engine.add_listener(lambda s, d: states.append((s, d)))
    engine.configure(settings)
    source = "# count to a thousand, one number a line\n"
    doc = DocumentSnapshot("file:///t/count.py", source, "python", 1, "/t/count.py")
    req = CompletionRequest(doc, len(source), invoked=True)

    async def scenario() -> None:
        assert await engine.load() is ModelState.READY
        pending = asyncio.ensure_future(engine.complete(req))
        deadline = time.monotonic() + 60
        while not any(e.get("prompt_ids") for e in generations(own_ollama)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # tokens are streaming now
        own_ollama.stop()
        got = await asyncio.wait_for(pending, 30)
        assert got.completion is None and "unavailable" in got.reason
        failed = [d for s, d in states if s is ModelState.FAILED]
        assert len(failed) == 1 and "dropped" in failed[0]
        for _ in range(3):
            await asyncio.sleep(0.1)
            assert (await asyncio.wait_for(engine.complete(req), 30)).completion is None
        failed = [d for s, d in states if s is ModelState.FAILED]
        assert len(failed) == len(set(failed)) <= 2
        own_ollama.start()
        short = add_request()
        await complete_once_back(engine, lambda: short)
        assert engine.state is ModelState.READY

    try:
        asyncio.run(scenario())
    finally:
        engine.shutdown()


def test_stdio_server_with_backend_ollama(ollama: Standin) -> None:
    """``coder-lsp --stdio --backend ollama --url URL --model GGUF`` (the vocabulary)."""
    cmd = [sys.executable, "-m", "lsp_server", "--stdio", "--backend", "ollama"]
    cmd += ["--url", ollama.url, "--model", str(model_path()), "--n-ctx", "2048"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    text, _stderr = complete_over_stdio(cmd, env, URI, SOURCE, 1, 4)
    assert text.startswith("return a + b")


# --- pure parts of the wire format ------------------------------------------------------


def test_parse_generate_lines() -> None:
    piece = parse_generate_line(b'{"model":"m","created_at":"t","response":"ret","done":false}')
    assert piece is not None and (piece.text, piece.done) == ("ret", False)
    done = parse_generate_line(
        b'{"model":"m","response":"","done":true,"done_reason":"length","prompt_eval_count":7,'
        b'"prompt_eval_duration":2500000,"eval_count":3,"eval_duration":1000000}'
    )
    assert done is not None and done.done and done.reason is StopReason.LENGTH
    assert done.figures == {"prompt_n": 7, "predicted_n": 3, "prompt_ms": 2.5, "predicted_ms": 1.0}
    with pytest.raises(EngineError, match="boom"):
        parse_generate_line(b'{"error":"boom"}')


def test_context_length_from_model_info() -> None:
    assert context_length({"general.architecture": "qwen2", "qwen2.context_length": 32768}) == 32768
    assert context_length({"general.architecture": "x", "llama.context_length": 4096}) == 4096
    assert context_length({"general.architecture": "llama"}) is None
