"""The OpenAI-compatible backend against a real OpenAI-compatible server:
``python -m llama_cpp.server`` (llama-cpp-python's, the ``[server]`` extra) with the real
Qwen 0.5B model and an API key.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from lsp_server.backends.base import CancelToken, StopReason
from lsp_server.backends.openai import OpenAICompletionsBackend
from lsp_server.backends.remote import DEFUSE
from lsp_server.core import FimContext
from lsp_server.errors import ContextExceededError, EngineAuthError
from tests.engines.conftest import (
    API_KEY,
    cancel_after_first_piece,
    fim_request,
    free_port,
    model_path,
)

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def openai_url() -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path())]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "2048"]
    cmd += ["--api_key", API_KEY]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "llama_cpp.server exited"
            try:
                OpenAICompletionsBackend.connect(url, vocab=model_path(), api_key=API_KEY).close()
                break
            except Exception:
                assert time.monotonic() < deadline, "llama_cpp.server never answered"
                time.sleep(0.2)
        yield url
    finally:
        proc.kill()
        proc.wait(30)


def connect(url: str) -> OpenAICompletionsBackend:
    return OpenAICompletionsBackend.connect(url, vocab=model_path(), api_key=API_KEY, n_ctx=2048)


def test_completion_through_v1_completions(openai_url: str) -> None:
    b = connect(openai_url)
    try:
        got = b.generate(fim_request(b), CancelToken())
        assert got.text.startswith("return a + b")
        assert got.stop_reason in (StopReason.EOS, StopReason.STOP, StopReason.LENGTH)
        body = b.last_body or {}
        assert "suffix" not in body
        assert body["prompt"].startswith("<|fim_prefix|>def add")
    finally:
        b.close()


def test_special_token_text_in_code_is_defused(openai_url: str) -> None:
    b = connect(openai_url)
    ctx = FimContext(prefix="# <|fim_middle|> in a comment\ndef f():\n    ", suffix="\n")
    try:
        b.generate(fim_request(b, ctx, max_tokens=2), CancelToken())
        prompt = (b.last_body or {})["prompt"]
        assert prompt.count("<|fim_middle|>") == 1  # only the template's own marker
        assert f"<{DEFUSE}|fim_middle|>" in prompt
    finally:
        b.close()


def test_cancel_mid_generation(openai_url: str) -> None:
    b = connect(openai_url)
    try:
        assert cancel_after_first_piece(b).stop_reason is StopReason.CANCELLED
    finally:
        b.close()


def test_wrong_key_is_refused(openai_url: str) -> None:
    with pytest.raises(EngineAuthError) as err:
        OpenAICompletionsBackend.connect(openai_url, vocab=model_path(), api_key="bad-key-77")
    assert "bad-key-77" not in str(err.value)


def test_an_engine_smaller_than_the_setting_is_learned_from_its_400(openai_url: str) -> None:
    """llama_cpp.server does not say its context in /v1/models: with nCtx 8192 set, a
    prompt bigger than its 2048 is refused, and the backend then assumes 2048."""
    b = OpenAICompletionsBackend.connect(
        openai_url, vocab=model_path(), api_key=API_KEY, n_ctx=8192
    )
    big = FimContext(prefix="x = 1\n" * 1200 + "def add(a, b):\n    ", suffix="\n")
    try:
        assert b.info.n_ctx == 8192
        with pytest.raises(ContextExceededError):
            b.generate(fim_request(b, big), CancelToken())
        assert b.info.n_ctx == 2048
        assert b.generate(fim_request(b), CancelToken()).text.startswith("return a + b")
    finally:
        b.close()
