"""The backend seam's pure parts: backend settings, CLI flags, defusing, HTTP errors."""

from __future__ import annotations

from lsp_server.backends.base import IN_PROCESS, CancelToken, capabilities_of
from lsp_server.backends.http import http_error, is_loopback
from lsp_server.backends.remote import DEFUSE, defuse
from lsp_server.cli import _settings_from_args, build_parser
from lsp_server.errors import ContextExceededError, EngineAuthError, EngineLoadingError
from lsp_server.settings import BackendSettings, parse_settings


def test_backend_settings_parse_and_default_to_local() -> None:
    assert parse_settings({}).settings.backend == BackendSettings()
    got = parse_settings(
        {"backend": {"kind": "llama-server", "url": "http://h:8080/", "apiKeyEnv": "MY_KEY"}}
    )
    assert got.errors == ()
    assert got.settings.backend == BackendSettings("llama-server", "http://h:8080", "", "MY_KEY")


def test_bad_backend_settings_keep_the_default() -> None:
    for bad in ({"kind": "tgi"}, {"kind": "openai"}, {"url": "ftp://x"}, {"apiKeyEnv": "A B"}):
        got = parse_settings({"backend": bad})
        assert got.settings.backend == BackendSettings() and len(got.errors) == 1


def test_cli_backend_flags_without_model() -> None:
    args = build_parser().parse_args(
        ["--stdio", "--backend", "llama-server", "--url", "http://127.0.0.1:8080"]
    )
    backend = _settings_from_args(args).backend
    assert (backend.kind, backend.url, backend.api_key_env) == (
        "llama-server",
        "http://127.0.0.1:8080",
        "CODER_LSP_API_KEY",
    )


def test_special_texts_in_code_are_defused() -> None:
    text = "x = '<|fim_prefix|>' + '<｜fim▁hole｜>'"
    out = defuse(text)
    assert "<|fim_prefix|>" not in out and "<｜fim▁hole｜>" not in out
    assert out.replace(DEFUSE, "") == text
    assert defuse("plain code") == "plain code"


def test_http_errors_map_to_clear_engine_errors() -> None:
    assert isinstance(
        http_error(401, b'{"error":{"message":"Invalid API Key"}}', "/x", "u"), EngineAuthError
    )
    assert isinstance(
        http_error(503, b'{"error":{"message":"Loading model"}}', "/x", "u"), EngineLoadingError
    )
    err = http_error(
        400,
        b'{"error":{"type":"exceed_context_size_error","message":"too long","n_ctx":1024}}',
        "/completion",
        "u",
    )
    assert isinstance(err, ContextExceededError) and err.n_ctx == 1024
    assert "HTTP 500" in str(http_error(500, b"boom", "/completion", "u"))


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("gpu-box") and not is_loopback("10.0.0.2")


def test_cancel_callbacks_run_once_and_can_be_forgotten() -> None:
    calls: list[str] = []
    token = CancelToken()
    forget = token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    forget()
    token.cancel()
    token.cancel()
    token.on_cancel(lambda: calls.append("late"))  # already cancelled: runs at once
    assert calls == ["b", "late"]


def test_capabilities_default_to_in_process() -> None:
    assert capabilities_of(object()) is IN_PROCESS


def test_slot_setting_and_flag() -> None:
    got = parse_settings({"backend": {"kind": "llama-server", "url": "http://h:1", "slot": 2}})
    assert got.errors == () and got.settings.backend.slot == 2
    for bad in (-1, "1", True):
        got = parse_settings(
            {"backend": {"kind": "llama-server", "url": "http://h:1", "slot": bad}}
        )
        assert got.settings.backend.slot is None and len(got.errors) == 1
    args = build_parser().parse_args(["--stdio", "--url", "http://127.0.0.1:8080", "--slot", "3"])
    assert _settings_from_args(args).backend.slot == 3


def test_ollama_needs_a_local_vocabulary() -> None:
    import pytest

    from lsp_server.backends.factory import connect_remote
    from lsp_server.errors import CoderLspError

    settings = parse_settings(
        {"backend": {"kind": "ollama", "url": "http://127.0.0.1:1", "tokenizer": "remote"}}
    ).settings
    with pytest.raises(CoderLspError, match="needs a local vocabulary"):
        connect_remote(settings)


def test_context_size_read_from_engine_messages() -> None:
    from lsp_server.backends.http import context_size_in

    vllm = (
        "This model's maximum context length is 2048 tokens. However, you requested 2100 "
        "tokens (2000 in the messages, 100 in the completion)."
    )
    tgi = "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 5000"
    assert context_size_in(vllm) == 2048 and context_size_in(tgi) == 4096
    assert context_size_in("the request exceeds the available context size (512 tokens)") == 512
    assert context_size_in("something else") is None
    err = http_error(422, ('{"error": "' + tgi.replace("`", "") + '"}').encode(), "/x", "u")
    assert isinstance(err, ContextExceededError) and err.n_ctx == 4096
