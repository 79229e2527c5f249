"""Tests for the llama.cpp backend on the tiny deterministic model (tests/tinymodel.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import gguf
import numpy as np
import pytest

from lsp_server.backends.base import CancelToken, Generation, GenerationRequest, StopReason
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.backends.templates import get_template
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.core import FimContext, Prompt, Special
from lsp_server.errors import BackendError, ModelLoadError
from lsp_server.gguf import _GGML_BLOCKS, read_gguf_header
from tests.tinymodel import (
    BOS,
    CONTEXT_LENGTH,
    DEFAULT_CHAIN,
    DEFAULT_COMPLETION,
    EOT,
    FIM_BEGIN,
    FIM_END,
    FIM_HOLE,
    MODEL_NAME,
    SPECIAL_TOKENS,
    write_tiny_model,
)

# Tests load with one thread: the tiny model gains nothing from more, and spinning worker
# threads stall when the machine is busy.
CTX = FimContext(prefix="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n")


@pytest.fixture(scope="module")
def backend(tiny_model_path: Path) -> Iterator[LlamaCppBackend]:
    """The default tiny model, loaded once for the module."""
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=512, n_threads=1)
    yield b
    b.close()


def load_chain(tmp_path: Path, transitions: Mapping[str, str], **kw: object) -> LlamaCppBackend:
    """Load a tiny model whose greedy output follows ``transitions``."""
    path = write_tiny_model(tmp_path / "chain.gguf", transitions)
    return LlamaCppBackend.load(path, n_ctx=512, n_threads=1, **kw)  # type: ignore[arg-type]


def fim_prompt(b: LlamaCppBackend, ctx: FimContext = CTX) -> Prompt:
    return render_fim_prompt(b.info.template, ctx)


def run(b: LlamaCppBackend, **kw: object) -> Generation:
    return b.generate(GenerationRequest(fim_prompt(b), **kw), CancelToken())  # type: ignore[arg-type]


# --- loading -------------------------------------------------------------------------


def test_load_detects_deepseek_and_clamps_context(tiny_model_path: Path) -> None:
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=100_000, n_threads=1)
    try:
        assert b.info.template is get_template("deepseek")
        assert b.info.n_ctx == CONTEXT_LENGTH
        assert b.info.name == MODEL_NAME
        assert b.info.path == str(tiny_model_path)
        assert b.metadata["tokenizer.ggml.pre"] == "deepseek-coder"
    finally:
        b.close()


def test_load_keeps_smaller_context_and_name(tiny_model_path: Path) -> None:
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=256, name="mine", n_threads=1)
    try:
        assert (b.info.n_ctx, b.info.name) == (256, "mine")
    finally:
        b.close()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        LlamaCppBackend.load(tmp_path / "nope.gguf")


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a file"):
        LlamaCppBackend.load(tmp_path, n_threads=1)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a GGUF"),
        (b"<html>404 Not Found</html>", "not a GGUF"),
        (b"ggjt\x03\x00\x00\x00" + b"\x00" * 64, "old GGML"),
        (b"GGUF\x01\x00\x00\x00" + b"\x00" * 16, "unsupported GGUF version"),
        (b"GGUF\x03\x00\x00\x00" + b"\xff" * 16, "damaged"),
    ],
)
def test_not_gguf(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=match):
        LlamaCppBackend.load(path, n_threads=1)


@pytest.mark.parametrize("keep", [0.5, 0.9999, 0.01])
def test_truncated_file(tiny_model_path: Path, tmp_path: Path, keep: float) -> None:
    data = tiny_model_path.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelLoadError, match="truncated"):
        LlamaCppBackend.load(path, n_threads=1)


def test_llama_cpp_refusal_is_a_model_load_error(tmp_path: Path) -> None:
    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "no-such-architecture")
    writer.add_tensor("w", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match=r"llama\.cpp could not load") as err:
        LlamaCppBackend.load(path, n_threads=1)
    # llama.cpp's own reason (from its log) is in the message.
    assert "no-such-architecture" in str(err.value)


def test_model_without_fim_tokens(tmp_path: Path) -> None:
    path = write_tiny_model(
        tmp_path / "chat.gguf", {}, special_tokens=(BOS, "<｜end▁of▁sentence｜>", EOT)
    )
    with pytest.raises(ModelLoadError, match="no fill-in-the-middle tokens"):
        LlamaCppBackend.load(path, n_threads=1)


def test_forced_template(tiny_model_path: Path) -> None:
    b = LlamaCppBackend.load(tiny_model_path, template="DeepSeek", n_threads=1)
    b.close()
    with pytest.raises(ModelLoadError, match="lacks"):
        LlamaCppBackend.load(tiny_model_path, template="qwen", n_threads=1)
    with pytest.raises(ModelLoadError, match="known templates"):
        LlamaCppBackend.load(tiny_model_path, template="nonsense", n_threads=1)


def test_qwen_shaped_model_is_detected_and_gets_no_bos(tmp_path: Path) -> None:
    specials = ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>")
    path = write_tiny_model(
        tmp_path / "qwen.gguf",
        {"<|fim_middle|>": "pass"},
        special_tokens=specials,
        end_token="<|endoftext|>",
        pre="qwen2",
    )
    b = LlamaCppBackend.load(path, n_ctx=256, n_threads=1)
    try:
        assert b.info.template.name == "qwen"
        prompt = fim_prompt(b)
        ids = b.prompt_tokens(prompt)
        assert ids[0] == 256 + specials.index("<|fim_prefix|>")  # no BOS first
        result = b.generate(GenerationRequest(prompt), CancelToken())
        assert (result.text, result.stop_reason) == ("pass", StopReason.EOS)
    finally:
        b.close()


def test_header_reader(tiny_model_path: Path) -> None:
    header = read_gguf_header(tiny_model_path)
    assert header.version == 3
    assert header.architecture == "llama"
    assert header.context_length == CONTEXT_LENGTH
    assert header.metadata["tokenizer.ggml.model"] == "gpt2"
    assert "tokenizer.ggml.tokens" not in header.metadata  # arrays are skipped
    assert header.tensor_count == 12
    assert header.data_offset % 32 == 0
    assert header.expected_size <= header.file_size < header.expected_size + 32


def test_block_sizes_match_gguf() -> None:
    for type_id, block in _GGML_BLOCKS.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)] == block


# --- generation ----------------------------------------------------------------------


def test_exact_greedy_output(backend: LlamaCppBackend) -> None:
    result = run(backend)
    assert result.text == DEFAULT_COMPLETION == "return a + b"
    assert result.stop_reason is StopReason.EOS
    # four text tokens, then <|EOT|>
    assert result.generated_tokens == len(DEFAULT_CHAIN) + 1
    assert result.prompt_tokens == len(backend.prompt_tokens(fim_prompt(backend)))


def test_sampling_at_temperature_follows_the_table_too(backend: LlamaCppBackend) -> None:
    assert run(backend, temperature=0.8).text == DEFAULT_COMPLETION


def test_prompt_tokens_bos_specials_and_plain_text(backend: LlamaCppBackend) -> None:
    special = {t: 256 + i for i, t in enumerate(SPECIAL_TOKENS)}
    prompt = Prompt(parts=(Special(FIM_BEGIN), "<|EOT|>", Special(FIM_HOLE)), add_bos=True)
    ids = backend.prompt_tokens(prompt)
    assert ids[0] == special[BOS]
    assert ids[1] == special[FIM_BEGIN]
    assert ids[-1] == special[FIM_HOLE]
    # The control-token text inside code is bytes, never the control token.
    assert special[EOT] not in ids
    assert len(ids) == 3 + len("<|EOT|>")


def test_unknown_special_token_is_a_backend_error(backend: LlamaCppBackend) -> None:
    prompt = Prompt(parts=(Special("<|fim_prefix|>"), "x"))
    with pytest.raises(BackendError, match="no special token"):
        backend.generate(GenerationRequest(prompt), CancelToken())


def test_count_tokens_and_tokenize(backend: LlamaCppBackend) -> None:
    assert backend.count_tokens("") == 0
    assert backend.tokenize("ab") == [ord("a"), ord("b")]
    assert backend.count_tokens(FIM_END) > 1  # plain text, not the control token
    assert backend.tokenize("x  ") == [ord("x"), 266]  # the "Ġ Ġ" merge joins two spaces


def test_max_tokens(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "x", "x": "x"})
    try:
        result = run(b, max_tokens=7)
        assert (result.text, result.stop_reason, result.generated_tokens) == (
            "x" * 7,
            StopReason.LENGTH,
            7,
        )
    finally:
        b.close()


def test_max_tokens_capped_by_context(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "loop.gguf", {FIM_END: "x", "x": "x"})
    b = LlamaCppBackend.load(path, n_ctx=64, n_threads=1)
    try:
        n_ctx = b.info.n_ctx  # llama.cpp rounds the context up (to 256)
        assert 64 <= n_ctx < 1000
        prompt = fim_prompt(b, FimContext(prefix="p" * 20, suffix=""))
        n_prompt = len(b.prompt_tokens(prompt))
        result = b.generate(GenerationRequest(prompt, max_tokens=1000), CancelToken())
        assert result.stop_reason is StopReason.LENGTH
        assert result.generated_tokens == n_ctx - n_prompt
        too_long = fim_prompt(b, FimContext(prefix="p" * n_ctx, suffix=""))
        with pytest.raises(BackendError, match="context"):
            b.generate(GenerationRequest(too_long), CancelToken())
    finally:
        b.close()


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ((" +",), "return a"),  # a whole token
        (("n a",), "retur"),  # across a token boundary
        ((" b", "a"), "return "),  # the earliest of several
        (("zzz",), DEFAULT_COMPLETION),
    ],
)
def test_stop_sequences(backend: LlamaCppBackend, stop: tuple[str, ...], expected: str) -> None:
    result = run(backend, stop=stop)
    assert result.text == expected
    want = StopReason.EOS if expected == DEFAULT_COMPLETION else StopReason.STOP
    assert result.stop_reason is want


def test_prompt_stop_texts_apply(backend: LlamaCppBackend) -> None:
    prompt = Prompt(parts=fim_prompt(backend).parts, stop=(" a",), add_bos=True)
    result = backend.generate(GenerationRequest(prompt), CancelToken())
    assert (result.text, result.stop_reason) == ("return", StopReason.STOP)


def test_should_stop(backend: LlamaCppBackend) -> None:
    seen: list[str] = []

    def should_stop(text: str) -> bool:
        seen.append(text)
        return text.endswith(" a")

    result = run(backend, should_stop=should_stop)
    assert (result.text, result.stop_reason) == ("return a", StopReason.STOP)
    assert seen == ["return", "return a"]


def test_special_token_mid_chain_ends_generation_unseen(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "return", "return": FIM_HOLE, FIM_HOLE: " x"})
    try:
        result = run(b)
        assert (result.text, result.stop_reason) == ("return", StopReason.STOP)
        assert result.generated_tokens == 2
    finally:
        b.close()


def test_no_special_text_in_any_output(tmp_path: Path) -> None:
    for special in SPECIAL_TOKENS:
        if special == FIM_END:  # the chain's start; it cannot also be its middle
            continue
        b = load_chain(tmp_path, {FIM_END: "a", "a": special, special: "b"})
        try:
            text = run(b, max_tokens=10).text
            assert text == "a"
            assert all(s not in text for s in SPECIAL_TOKENS)
        finally:
            b.close()


def test_cancel_from_should_stop_within_one_token(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "x", "x": "x"})
    cancel = CancelToken()

    def should_stop(text: str) -> bool:
        if len(text) == 3:
            cancel.cancel()
        return False

    try:
        prompt = fim_prompt(b)
        result = b.generate(
            GenerationRequest(prompt, max_tokens=100, should_stop=should_stop), cancel
        )
        assert result.stop_reason is StopReason.CANCELLED
        assert (result.generated_tokens, result.text) == (3, "xxx")
    finally:
        b.close()


def test_cancel_from_another_thread(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "x", "x": "x"})
    cancel = CancelToken()
    reached = threading.Event()
    done = threading.Event()

    def canceller() -> None:
        reached.wait(5)
        cancel.cancel()
        done.set()

    def should_stop(text: str) -> bool:
        if len(text) == 5:
            reached.set()
            done.wait(5)  # the other thread has cancelled before the next token
        return False

    thread = threading.Thread(target=canceller)
    thread.start()
    try:
        result = b.generate(
            GenerationRequest(fim_prompt(b), max_tokens=1000, should_stop=should_stop), cancel
        )
        assert result.stop_reason is StopReason.CANCELLED
        assert result.generated_tokens == 5
    finally:
        thread.join()
        b.close()


def test_cancelled_before_start_evaluates_nothing(backend: LlamaCppBackend) -> None:
    cancel = CancelToken()
    cancel.cancel()
    result = backend.generate(GenerationRequest(fim_prompt(backend)), cancel)
    assert (result.text, result.stop_reason) == ("", StopReason.CANCELLED)
    assert (result.generated_tokens, result.evaluated_tokens) == (0, 0)


def test_time_budget_stops_after_a_complete_line(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "line", "line": "\n", "\n": "more", "more": "line"})
    try:
        result = run(b, time_budget_ms=0.0, max_tokens=50)
        # The budget is spent at once, but it waits for the first complete line.
        assert (result.text, result.stop_reason) == ("line", StopReason.TIMEOUT)
        assert result.generated_tokens == 2
        unlimited = run(b, max_tokens=6)
        assert unlimited.text == "line\nmoreline\nmore"
    finally:
        b.close()


def test_utf8_split_across_tokens_is_never_split_in_text(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "<0xC3>", "<0xC3>": "<0xA9>", "<0xA9>": " ok"})
    seen: list[str] = []
    try:
        result = b.generate(
            GenerationRequest(fim_prompt(b), should_stop=lambda t: seen.append(t) is not None),
            CancelToken(),
        )
        assert result.text == "é ok"
        assert seen == ["", "é", "é ok"]
        assert all("\ufffd" not in t for t in seen)
    finally:
        b.close()


def test_dangling_utf8_at_the_end_is_dropped(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "ok", "ok": "<0xE2>", "<0xE2>": "<0x82>"})
    try:
        result = run(b)
        assert result.text == "ok"
        assert result.generated_tokens == 4
    finally:
        b.close()


def test_kv_cache_reuse(tiny_model_path: Path) -> None:
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=512, n_threads=1)
    try:
        prompt = fim_prompt(b)
        first = b.generate(GenerationRequest(prompt), CancelToken())
        assert first.evaluated_tokens == first.prompt_tokens > 20
        again = b.generate(GenerationRequest(prompt), CancelToken())
        assert again.text == first.text
        assert again.evaluated_tokens <= 1
        # Typing two characters at the end of the suffix re-evaluates only the changed tail.
        typed = fim_prompt(b, FimContext(prefix=CTX.prefix, suffix=CTX.suffix + "ab"))
        third = b.generate(GenerationRequest(typed), CancelToken())
        assert third.prompt_tokens == first.prompt_tokens + 2
        assert third.evaluated_tokens == 3  # "a", "b", <｜fim▁end｜>
    finally:
        b.close()


def test_timings_are_reported(backend: LlamaCppBackend) -> None:
    result = run(backend)
    assert result.prompt_ms > 0
    assert result.generate_ms > 0


def test_one_generation_at_a_time(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "x", "x": "x"})
    inside = threading.Event()
    release = threading.Event()
    results: dict[str, str] = {}

    def slow_stop(text: str) -> bool:
        inside.set()
        release.wait(5)
        return len(text) >= 3

    def first() -> None:
        results["first"] = b.generate(
            GenerationRequest(fim_prompt(b), should_stop=slow_stop), CancelToken()
        ).text

    def second() -> None:
        results["second"] = b.generate(
            GenerationRequest(fim_prompt(b), max_tokens=2), CancelToken()
        ).text

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(5)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.2)
    assert t2.is_alive()  # waits for the lock while the first generation runs
    release.set()
    t1.join(5)
    t2.join(5)
    b.close()
    assert results == {"first": "xxx", "second": "xx"}


def test_nothing_reaches_stdout_and_fds_stay_put(
    tiny_model_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    redirected: list[int] = []
    real_dup2 = os.dup2

    def spy(fd: int, fd2: int, inheritable: bool = True) -> int:
        redirected.append(fd2)
        return real_dup2(fd, fd2, inheritable)

    monkeypatch.setattr(os, "dup2", spy)
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=256, n_threads=1)
    try:
        assert run(b).text == DEFAULT_COMPLETION
    finally:
        b.close()
    assert redirected == []  # stdout (the LSP transport) is never pointed elsewhere
    assert capfd.readouterr().out == ""


def test_very_long_runs_are_tokenized_in_pieces_not_a_segfault(tiny_model_path):
    """llama.cpp's regex pre-tokenizer overflows the stack on ~30k-char runs (a segfault):
    the backend must hand it pieces. 200k characters without a break, then a huge line."""
    from lsp_server.backends.llama_tokenizer import MAX_TOKENIZE_PIECE, split_for_tokenizer

    backend = LlamaCppBackend.load(tiny_model_path, n_threads=1)
    assert backend.count_tokens("D" * 200_000) >= 200_000 // 2
    assert backend.count_tokens(("ab cd " * 20_000) + "\n") > 0
    text = ("x" * 5000 + " " + "y" * 100 + "\n") * 30
    pieces = split_for_tokenizer(text)
    assert "".join(pieces) == text
    assert all(len(p) <= MAX_TOKENIZE_PIECE for p in pieces)
    assert all(p.endswith("\n") or p.endswith("x") or p.endswith("y") for p in pieces[:-1])


class _CancelAfter(CancelToken):
    """A cancel token that reads as set from its ``n``-th look on."""

    __slots__ = ("looks", "n")

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.looks = 0

    @property
    def cancelled(self) -> bool:
        self.looks += 1
        return self.looks >= self.n


def test_prompt_evaluation_stops_at_a_chunk_and_keeps_what_it_evaluated(
    tiny_model_path: Path,
) -> None:
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=512, n_threads=1)
    try:
        b.eval_chunk_tokens = 16
        long_ctx = FimContext(prefix="x = 1\n" * 50, suffix="\n")
        prompt = fim_prompt(b, long_ctx)
        stopped = b.generate(GenerationRequest(prompt), _CancelAfter(4))
        assert stopped.stop_reason is StopReason.CANCELLED and stopped.text == ""
        assert stopped.evaluated_tokens == 3 * 16  # three chunks, then the cancel
        # The request that superseded it starts from those chunks.
        done = b.generate(GenerationRequest(prompt), CancelToken())
        assert done.text == DEFAULT_COMPLETION
        assert done.evaluated_tokens == done.prompt_tokens - 3 * 16
    finally:
        b.close()


def test_typing_after_the_middle_token_evaluates_only_the_typed_tokens(
    backend: LlamaCppBackend,
) -> None:
    template = backend.info.template
    first = backend.generate(
        GenerationRequest(render_fim_prompt(template, CTX, middle_head="    r")), CancelToken()
    )
    typed = backend.generate(
        GenerationRequest(render_fim_prompt(template, CTX, middle_head="    re")), CancelToken()
    )
    assert first.prompt_tokens > 20
    assert typed.prompt_tokens == first.prompt_tokens + 1
    assert typed.evaluated_tokens == 1  # only "e": everything before it was cached


def test_hard_predict_limit_stops_an_endless_generation(tmp_path: Path) -> None:
    b = load_chain(tmp_path, {FIM_END: "x", "x": "x"})
    try:
        result = run(b, max_tokens=100_000, max_predict_ms=30.0)
        assert result.stop_reason is StopReason.TIMEOUT
        assert 0 < result.generated_tokens < 100_000  # the limit ended it, not the tokens
    finally:
        b.close()


def test_llama_time_is_part_of_the_total(backend: LlamaCppBackend) -> None:
    result = run(backend)
    assert 0 < result.llama_ms <= result.prompt_ms + result.generate_ms


def test_long_prompt_parts_tokenize_the_same_from_the_cache(backend: LlamaCppBackend) -> None:
    text = "def f(x):\n    return x * 2\n" * 20
    prompt = Prompt((Special(FIM_BEGIN), text, Special(FIM_HOLE), Special(FIM_END)))
    first = backend.prompt_tokens(prompt)
    again = backend.prompt_tokens(prompt)
    assert first == again
    assert first[1:-2] == backend.tokenize(text)
