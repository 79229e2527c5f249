"""Tests for the shared stop policy (lsp_server/backends/stopping.py).

The pure tests drive the policy with a fake clock; the backend tests feed the in-process
llama.cpp backend tiny deterministic models that never stop by themselves and move the
policy's clock from inside ``should_stop``, so a time limit strikes at a chosen point in
the text — mid-line — without a timed assertion.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lsp_server.backends import stopping
from lsp_server.backends.base import CancelToken, GenerationRequest, StopReason
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.backends.stopping import Stopped, StopPolicy, whole_lines
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.core import FimContext, Prompt
from tests.tinymodel import FIM_END, write_tiny_model

CTX = FimContext(prefix="def f():\n    ", suffix="\n")
LINES = {FIM_END: "line", "line": "\n", "\n": "more", "more": "line"}
"""Writes "line\\nmoreline\\nmoreline…" forever: a newline every third token."""


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def request(**kw: object) -> GenerationRequest:
    return GenerationRequest(Prompt(("x",)), **kw)  # type: ignore[arg-type]


# --- whole_lines ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("", ""),
        ("partial", ""),
        ("done\n", "done"),
        ("one\ntwo", "one"),
        ("one\ntwo\nthr", "one\ntwo"),
        ("\nnext", ""),
        ("a\n\nb", "a\n"),
    ],
)
def test_whole_lines_keeps_text_up_to_the_last_newline(text: str, kept: str) -> None:
    assert whole_lines(text) == kept


# --- the policy, pure ----------------------------------------------------------------


def test_stop_sequences_cut_before_the_earliest_match() -> None:
    policy = StopPolicy(request(stop=("END", "\n\n")), clock=FakeClock())
    assert policy.check("abc", 0) is None
    assert policy.check("abc\n\nxEND", 3) == Stopped(StopReason.STOP, "abc")


def test_prompt_stop_sequences_count_too() -> None:
    req = GenerationRequest(Prompt(("x",), stop=("<EOT>",)), stop=("",))
    policy = StopPolicy(req, clock=FakeClock())
    assert policy.stops == ("<EOT>",)
    assert policy.check("ok<EOT>", 2) == Stopped(StopReason.STOP, "ok")


def test_a_stop_sequence_split_over_pieces_is_found() -> None:
    policy = StopPolicy(request(stop=("STOP",)), clock=FakeClock())
    assert policy.check("aST", 0) is None
    assert policy.check("aSTOP", 3) == Stopped(StopReason.STOP, "a")


def test_should_stop_keeps_the_text_as_it_is() -> None:
    policy = StopPolicy(request(should_stop=lambda t: t.endswith("cut")), clock=FakeClock())
    assert policy.check("a partial line, cut") == Stopped(StopReason.STOP, "a partial line, cut")


def test_time_budget_waits_for_a_complete_line_then_keeps_whole_lines() -> None:
    clock = FakeClock()
    policy = StopPolicy(request(time_budget_ms=100.0), clock=clock)
    policy.generation_started()
    clock.now += 1.0  # the budget is long spent
    assert policy.check("no newline yet") is None
    assert policy.check("first\nsecond, cut") == Stopped(StopReason.TIMEOUT, "first")


def test_time_budget_counts_from_the_start_of_the_call() -> None:
    clock = FakeClock()
    policy = StopPolicy(request(time_budget_ms=100.0), started=clock.now - 0.2, clock=clock)
    assert policy.check("a\nb") == Stopped(StopReason.TIMEOUT, "a")


def test_hard_limit_mid_line_keeps_whole_lines() -> None:
    clock = FakeClock()
    policy = StopPolicy(request(max_predict_ms=50.0), clock=clock)
    policy.generation_started()
    assert policy.check("one\ntw") is None
    clock.now += 0.05
    assert policy.check("one\ntwo\nthr") == Stopped(StopReason.TIMEOUT, "one\ntwo")


def test_hard_limit_without_a_complete_line_keeps_nothing() -> None:
    clock = FakeClock()
    policy = StopPolicy(request(max_predict_ms=50.0), clock=clock)
    policy.generation_started()
    clock.now += 1.0
    assert policy.check("a long first line that never ends") == Stopped(StopReason.TIMEOUT, "")


def test_hard_limit_counts_from_the_first_token_only() -> None:
    clock = FakeClock()
    policy = StopPolicy(request(max_predict_ms=50.0), clock=clock)
    clock.now += 10.0  # a long prompt evaluation does not count
    assert not policy.hard_limit_passed()
    policy.generation_started()
    policy.generation_started(at=-50.0)  # only the first call counts
    assert policy.check("x") is None
    clock.now += 0.05
    assert policy.hard_limit_passed()


def test_seconds_left_bounds_a_network_read() -> None:
    clock = FakeClock()
    policy = StopPolicy(request(time_budget_ms=300.0, max_predict_ms=1000.0), clock=clock)
    assert policy.seconds_left("") is None  # no token yet: the prompt is not limited
    policy.generation_started()
    clock.now += 0.1
    assert policy.seconds_left("no line") == pytest.approx(0.9)
    assert policy.seconds_left("a\nb") == pytest.approx(0.2)  # the budget applies now
    clock.now += 5.0
    assert policy.seconds_left("a\nb") == 0.0
    assert StopPolicy(request(), clock=clock).seconds_left("a\nb") is None


# --- the in-process backend ----------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace ``time.perf_counter`` for the test: the stop policy and the backend's
    ``started`` read the same fake clock, which moves only when the test moves it."""
    fake = FakeClock()
    monkeypatch.setattr(stopping.time, "perf_counter", fake)
    return fake


@pytest.fixture(scope="module")
def lines_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppBackend]:
    path = write_tiny_model(tmp_path_factory.mktemp("lines") / "lines.gguf", LINES)
    b = LlamaCppBackend.load(path, n_ctx=512, n_threads=1)
    yield b
    b.close()


@pytest.fixture(scope="module")
def endless_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppBackend]:
    path = write_tiny_model(tmp_path_factory.mktemp("endless") / "x.gguf", {FIM_END: "x", "x": "x"})
    b = LlamaCppBackend.load(path, n_ctx=512, n_threads=1)
    yield b
    b.close()


def tick_at(clock: FakeClock, text: str, seconds: float = 10.0):
    """A ``should_stop`` that never stops but moves the clock once the text is ``text``."""

    def should_stop(so_far: str) -> bool:
        if so_far == text:
            clock.now += seconds
        return False

    return should_stop


def generate(b: LlamaCppBackend, **kw: object):
    prompt = render_fim_prompt(b.info.template, CTX)
    return b.generate(GenerationRequest(prompt, **kw), CancelToken())  # type: ignore[arg-type]


@pytest.mark.parametrize("cut_at", ["line\nmore", "line\nmoreline\nmore", "line\nmoreline"])
def test_backend_hard_limit_mid_line_yields_whole_lines(
    lines_backend: LlamaCppBackend, clock: FakeClock, cut_at: str
) -> None:
    got = generate(
        lines_backend,
        max_tokens=1000,
        time_budget_ms=None,
        max_predict_ms=500.0,
        should_stop=tick_at(clock, cut_at),
    )
    assert got.stop_reason is StopReason.TIMEOUT
    assert got.text == whole_lines(cut_at)
    assert got.text in ("line", "line\nmoreline")  # never a cut line


def test_backend_time_budget_mid_line_yields_whole_lines(
    lines_backend: LlamaCppBackend, clock: FakeClock
) -> None:
    got = generate(
        lines_backend,
        max_tokens=1000,
        time_budget_ms=100.0,
        max_predict_ms=None,
        should_stop=tick_at(clock, "line\nmore"),
    )
    # The call started at the fake clock's time, so the jump spends the budget.
    assert (got.text, got.stop_reason) == ("line", StopReason.TIMEOUT)


def test_backend_hard_limit_before_any_newline_yields_nothing(
    endless_backend: LlamaCppBackend, clock: FakeClock
) -> None:
    got = generate(
        endless_backend,
        max_tokens=1000,
        max_predict_ms=500.0,
        should_stop=tick_at(clock, "xxxxx"),
    )
    assert (got.text, got.stop_reason) == ("", StopReason.TIMEOUT)
    assert got.generated_tokens == 5


def test_backend_max_tokens_keeps_a_cut_line(lines_backend: LlamaCppBackend) -> None:
    got = generate(lines_backend, max_tokens=4, time_budget_ms=None, max_predict_ms=None)
    # Not a time limit: the text stays as the model wrote it; post-processing decides.
    assert (got.text, got.stop_reason) == ("line\nmoreline", StopReason.LENGTH)


def test_backend_real_clock_hard_limit_never_shows_a_cut_line(
    lines_backend: LlamaCppBackend, endless_backend: LlamaCppBackend
) -> None:
    # The real clock: where the limit strikes depends on the machine, but whatever the
    # backend produced up to then, only its whole lines come out.
    for _ in range(3):
        got = generate(lines_backend, max_tokens=100_000, time_budget_ms=None, max_predict_ms=5.0)
        assert got.stop_reason is StopReason.TIMEOUT
        full = generate(
            lines_backend, max_tokens=got.generated_tokens, time_budget_ms=None, max_predict_ms=None
        )
        assert got.text == whole_lines(full.text)
    got = generate(endless_backend, max_tokens=100_000, time_budget_ms=0.0, max_predict_ms=5.0)
    assert (got.text, got.stop_reason) == ("", StopReason.TIMEOUT)
