"""The OpenAI-compatible backend's vLLM specifics against the vLLM stand-in
(tests/engines/standin_engines.py, written from vllm's ``entrypoints/openai/protocol.py``).

vLLM cannot run on these machines (no GPU, no binaries). The stand-in generates with the
real Qwen 0.5B; what it checks is what coder-lsp sends and how it reads the answers:
token-id prompts (the very ids the in-process backend evaluates), ``max_model_len``,
the ``/tokenize`` probe, the key, cancellation, and learning the context from a 400 when
the engine does not say it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_server import engine as engine_module
from lsp_server.backends.base import CancelToken, StopReason
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.backends.openai import OpenAICompletionsBackend
from lsp_server.core import CompletionRequest, DocumentSnapshot, FimContext
from lsp_server.engine import Engine, ModelState
from lsp_server.errors import EngineAuthError
from lsp_server.settings import BackendSettings, Settings
from tests.engines.conftest import (
    API_KEY,
    COUNTING,
    CTX,
    Standin,
    cancel_after_first_piece,
    fim_request,
    model_path,
)
from tests.tinymodel import write_tiny_model

pytestmark = pytest.mark.real_model

NAME = "Qwen/Qwen2.5-Coder-0.5B"


@pytest.fixture(scope="module")
def vllm() -> Iterator[Standin]:
    server = Standin("vllm", "--api-key", API_KEY).start(preload=True)
    yield server
    server.stop()


def connect(server: Standin, **kw: object) -> OpenAICompletionsBackend:
    kw = {"vocab": model_path(), "api_key": API_KEY, "n_ctx": 4096, **kw}
    return OpenAICompletionsBackend.connect(server.url, **kw)  # type: ignore[arg-type]


def completions(server: Standin) -> list[dict[str, object]]:
    return [e for e in server.log() if e.get("path") == "/v1/completions" and "body" in e]


def test_token_id_prompts_and_max_model_len(vllm: Standin) -> None:
    b = connect(vllm)
    local = LlamaCppBackend.load(model_path(), n_ctx=2048, n_threads=1)
    tricky = FimContext(prefix="# <|fim_prefix|> is text\ndef add(a, b):\n    ", suffix="\n")
    try:
        assert b.info.n_ctx == 2048  # max_model_len, below the 4096 setting
        assert b.capabilities.token_prompts and b.note == ""
        for ctx in (CTX, tricky):
            req = fim_request(b, ctx)
            got = b.generate(req, CancelToken())
            body = b.last_body or {}
            assert body["prompt"] == local.prompt_tokens(req.prompt)
            assert completions(vllm)[-1]["prompt_ids"] == body["prompt"]
        assert "suffix" not in body
        assert local.tokenizer.special_id("<|file_sep|>") in body["stop_token_ids"]
        first = b.generate(fim_request(b), CancelToken())
        assert first.text.startswith("return a + b")
        assert first.stop_reason in (StopReason.EOS, StopReason.LENGTH)
        assert got.prompt_tokens > 0
    finally:
        local.close()
        b.close()


def test_wrong_key_is_refused(vllm: Standin) -> None:
    with pytest.raises(EngineAuthError) as err:
        connect(vllm, api_key="nope-123")
    assert "nope-123" not in str(err.value)


def test_cancel_mid_stream_stops_the_engine(vllm: Standin) -> None:
    b = connect(vllm)
    try:
        assert cancel_after_first_piece(b, COUNTING).stop_reason is StopReason.CANCELLED
        deadline = time.monotonic() + 30
        while not completions(vllm)[-1].get("cancelled"):
            assert time.monotonic() < deadline, "the engine kept generating after the cancel"
            time.sleep(0.05)
    finally:
        b.close()


def test_a_vocabulary_that_disagrees_falls_back_to_string_prompts(
    vllm: Standin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = write_tiny_model(tmp_path / "other.gguf")
    with caplog.at_level(logging.WARNING):
        b = connect(vllm, vocab=wrong)
    try:
        assert not b.capabilities.token_prompts and "disagrees" in b.note
        assert "differently from the engine's /tokenize" in caplog.text
        b.generate(fim_request(b, max_tokens=2), CancelToken())
        assert isinstance((b.last_body or {})["prompt"], str)
    finally:
        b.close()


def test_context_learned_from_a_400_when_the_engine_does_not_say_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An engine with 512 tokens that reports none; the settings say 4096: the first
    prompt is refused, the context shrinks to the engine's and the prompt is re-budgeted."""
    monkeypatch.setattr(engine_module, "BACKOFF_S", (0.05, 0.2))
    source = Path("/usr/lib/python3.11/argparse.py").read_text()
    offset = source.index("    def _parse_known_args(")
    server = Standin("vllm", "--hide-context", ctx=512).start(preload=True)
    settings = dataclasses.replace(
        Settings(),
        model=str(model_path()),
        n_ctx=4096,
        repo_context=False,
        max_tokens=16,
        backend=BackendSettings(kind="openai", url=server.url),
    )
    engine = Engine()
    engine.configure(settings)
    doc = DocumentSnapshot("file:///t/argparse.py", source, "python", 1, "/t/argparse.py")

    async def scenario() -> None:
        assert await engine.load() is ModelState.READY
        assert engine.backend is not None and engine.backend.info.n_ctx == 4096
        got = await asyncio.wait_for(
            engine.complete(CompletionRequest(doc, offset, invoked=True)), 120
        )
        assert got.generation is not None, got.reason
        assert engine.backend.info.n_ctx == 512
        assert engine.state is ModelState.READY

    try:
        asyncio.run(scenario())
        sent = completions(server)
        assert sent[0].get("refused") and not sent[-1].get("refused")
        assert len(sent[-1]["prompt_ids"]) + 16 <= 512  # type: ignore[arg-type]
    finally:
        engine.shutdown()
        server.stop()
