"""Follow-ups: an answer a time limit left empty is finished in the background.

A busy machine can hit ``maxPredictMs`` after a token or two, before the text holds a whole
line; that answer is empty. The engine answers it at once as before, then runs the same
request again with the time limits lifted, into the completion cache, and tells its ready
listeners, so that the client asks again and is answered from the cache.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

from lsp_server.backends.base import (
    CancelToken,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
)
from lsp_server.backends.stopping import StopPolicy
from lsp_server.backends.templates import get_template
from lsp_server.completion.pipeline import PipelineResult
from lsp_server.core import CompletionRequest, DocumentSnapshot
from lsp_server.engine import FOLLOW_UP_PREDICT_MS, Engine, follow_up_settings
from lsp_server.settings import Settings
from tests.waiting import until

TEXT = "def add(a, b):\n    \n"
REQUEST = CompletionRequest(DocumentSnapshot("file:///a.py", TEXT, "python", 1), 19)
TOKENS = ["return", " a", " +", " b"]


class TimedBackend:
    """Emits one token every ``delay`` seconds and stops as the real generators do (the
    shared :class:`StopPolicy`: time limits keep whole lines only); records each call's
    limits and how it ended."""

    def __init__(self, tokens: list[str], delay: float) -> None:
        self.tokens = tokens
        self.delay = delay
        self.info = ModelInfo("timed", 2048, get_template("deepseek"))
        self.calls: list[tuple[float | None, float | None]] = []
        self.ended: list[StopReason] = []
        self.running = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        self.calls.append((request.time_budget_ms, request.max_predict_ms))
        self.running.set()
        try:
            policy = StopPolicy(request)
            text, n, reason = "", 0, StopReason.EOS
            for tok in self.tokens[: request.max_tokens]:
                if cancel.cancelled:
                    reason = StopReason.CANCELLED
                    break
                time.sleep(self.delay)
                n += 1
                policy.generation_started()
                seen, text = len(text), text + tok
                verdict = policy.check(text, seen)
                if verdict is not None:
                    text, reason = verdict.text, verdict.reason
                    break
            self.ended.append(reason)
            return Generation(text, reason, generated_tokens=n)
        finally:
            self.running.clear()


def engine_with(backend: TimedBackend, **settings) -> tuple[Engine, list[CompletionRequest]]:
    """An engine whose first-token hard limit is 0 ms (a very busy machine): every
    generation that runs under it ends after one token, with nothing to show."""
    engine = Engine(loader=lambda s: backend)
    base = {"time_budget_ms": None, "max_predict_ms": 0.0} | settings
    engine.configure(dataclasses.replace(Settings(), **base))
    ready: list[CompletionRequest] = []
    engine.add_ready_listener(lambda request, result: ready.append(request))
    return engine, ready


def test_follow_up_settings_lift_the_limits():
    s = follow_up_settings(dataclasses.replace(Settings(), time_budget_ms=1500.0))
    assert s.time_budget_ms is None and s.max_predict_ms == FOLLOW_UP_PREDICT_MS
    larger = follow_up_settings(dataclasses.replace(Settings(), max_predict_ms=60_000.0))
    assert larger.max_predict_ms == 60_000.0
    unlimited = follow_up_settings(dataclasses.replace(Settings(), max_predict_ms=None))
    assert unlimited.max_predict_ms == FOLLOW_UP_PREDICT_MS  # bounded all the same


async def test_cut_short_empty_answer_is_finished_in_the_background():
    backend = TimedBackend(TOKENS, delay=0.01)
    engine, ready = engine_with(backend)
    first = await engine.complete(REQUEST)
    # Answered at once, empty: the limit ended the generation after its first token.
    assert first.completion is None and first.cut_short
    assert backend.ended[0] is StopReason.TIMEOUT
    await until(lambda: ready, "the follow-up's ready notice")
    assert ready == [REQUEST]
    # The follow-up ran with the limits lifted, to the model's own end.
    assert backend.calls[1] == (None, FOLLOW_UP_PREDICT_MS)
    assert backend.ended[1] is StopReason.EOS
    # The client's next (automatic) request at that spot comes from the cache.
    again = await engine.complete(REQUEST)
    assert again.completion is not None and again.completion.text == "return a + b"
    assert again.cache.value == "exact" and len(backend.calls) == 2
    stats = [(r.outcome, r.follow_up) for r in engine.stats]
    assert stats == [("empty", False), ("ok", True), ("ok", False)]


async def test_no_notice_when_the_follow_up_finds_nothing_either(monkeypatch):
    """A follow-up that ends without a completion — the model wrote nothing usable, or
    the follow-up's own limit cut it short too — tells nobody and has no follow-up."""
    import lsp_server.engine

    monkeypatch.setattr(lsp_server.engine, "FOLLOW_UP_PREDICT_MS", 100.0)
    for tokens in ([" ", " "], ["x"] * 10_000):  # blanks only; one line that never ends
        backend = TimedBackend(tokens, delay=0.005)
        engine, ready = engine_with(backend, max_tokens=10_000)
        first = await engine.complete(REQUEST)
        assert first.cut_short
        await until(lambda e=engine: len(e.stats) == 2, "the follow-up's figures")
        assert engine.stats[1].follow_up and engine.stats[1].outcome == "empty"
        assert backend.ended[1] is (StopReason.EOS if tokens[0] == " " else StopReason.TIMEOUT)
        await asyncio.sleep(0.2)  # a wrong second follow-up or notice would show by now
        assert ready == [] and len(backend.calls) == 2


async def test_a_newer_request_cancels_the_follow_up():
    backend = TimedBackend(TOKENS, delay=0.3)
    engine, ready = engine_with(backend)
    assert (await engine.complete(REQUEST)).cut_short
    await until(lambda: len(backend.calls) == 2 and backend.running.is_set(), "the follow-up")
    other = CompletionRequest(DocumentSnapshot("file:///a.py", TEXT, "python", 1), 4)
    newer = await engine.complete(other)  # supersedes the follow-up, then runs itself
    assert newer.completion is None
    await until(lambda: len(engine.stats) >= 3, "the follow-up's figures")
    follow = next(r for r in engine.stats if r.follow_up)
    assert follow.outcome == "cancelled" and backend.ended[1] is StopReason.CANCELLED
    await asyncio.sleep(0.1)
    assert REQUEST not in ready


async def test_an_edit_cancels_the_follow_up():
    backend = TimedBackend(TOKENS, delay=0.3)
    engine, ready = engine_with(backend)
    assert (await engine.complete(REQUEST)).cut_short
    await until(lambda: len(backend.calls) == 2 and backend.running.is_set(), "the follow-up")
    engine.document_changed("file:///other.py")  # another document: goes on
    engine.document_changed(REQUEST.document.uri)
    await until(lambda: len(engine.stats) == 2, "the follow-up's figures")
    assert engine.stats[1].outcome == "cancelled"
    await until(lambda: len(backend.ended) == 2, "the generation to stop")
    assert backend.ended[1] is StopReason.CANCELLED and ready == []


async def test_closing_the_document_or_a_reload_cancels_the_follow_up():
    for stop in ("close", "reload"):
        backend = TimedBackend(TOKENS, delay=0.3)
        engine, ready = engine_with(backend)
        assert (await engine.complete(REQUEST)).cut_short
        await until(lambda b=backend: len(b.calls) == 2 and b.running.is_set(), "follow-up")
        if stop == "close":
            engine.cancel_document(REQUEST.document.uri)
        else:
            engine.configure(dataclasses.replace(engine.settings, n_ctx=engine.settings.n_ctx * 2))
        await until(lambda e=engine: len(e.stats) == 2, "the follow-up's figures")
        assert engine.stats[1].outcome == "cancelled", stop
        assert ready == [], stop


async def test_no_follow_up_when_another_request_waits_or_the_answer_was_not_cut():
    backend = TimedBackend(TOKENS, delay=0.01)
    engine, ready = engine_with(backend, max_predict_ms=None)  # no limit: never cut short
    result = await engine.complete(REQUEST)
    assert result.completion is not None and not result.cut_short
    await asyncio.sleep(0.1)
    assert len(backend.calls) == 1 and ready == []
    # Cut short but superseded by a newer request: that one runs, not a follow-up.
    engine, ready = engine_with(backend)
    stop = CancelToken()
    first = asyncio.ensure_future(engine.complete(REQUEST))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(engine.complete(REQUEST, cancel=stop))
    assert (await first).reason == "cancelled"
    await second
    await until(lambda: any(r.follow_up for r in engine.stats), "the second's follow-up")
    assert sum(r.follow_up for r in engine.stats) == 1  # only the newest request's


def test_a_cut_short_answer_is_not_cached():
    """The pipeline keeps an empty answer a time limit cut short out of the cache (a run
    with more time would find another); an empty answer the model gave is cached."""
    from lsp_server.completion.cache import CompletionCache
    from lsp_server.completion.pipeline import complete

    backend = TimedBackend(TOKENS, delay=0.001)
    cache = CompletionCache()
    limited = dataclasses.replace(Settings(), time_budget_ms=None, max_predict_ms=0.0)
    cut: PipelineResult = complete(REQUEST, backend, limited, cache=cache)
    assert cut.cut_short and len(cache) == 0
    assert "time limit" in cut.reason  # the log says why, not "nothing usable"
    nothing = TimedBackend([" "], delay=0.001)  # ends by itself with nothing usable
    empty = complete(
        REQUEST, nothing, dataclasses.replace(limited, max_predict_ms=None), cache=cache
    )
    assert empty.completion is None and not empty.cut_short and len(cache) == 1
    assert "time limit" not in empty.reason


def test_ready_params_name_the_spot_only_while_the_document_is_unchanged():
    """The server's notice carries the request's uri, version and LSP position (UTF-16 by
    default), and is not sent for a document edited or closed since."""
    from lsp_server.documents import DocumentStore
    from lsp_server.server import ready_params

    text = "s = '😀'\nx = "
    request = CompletionRequest(DocumentSnapshot("file:///e.py", text, "python", 3), len(text))
    docs = DocumentStore()
    doc = docs.open("file:///e.py", text, "python", 3)
    assert ready_params(request, doc, "utf-16") == {
        "textDocument": {"uri": "file:///e.py", "version": 3},
        "position": {"line": 1, "character": 4},
    }
    other = CompletionRequest(DocumentSnapshot("file:///e.py", text, "python", 3), 7)
    assert ready_params(other, doc, "utf-16")["position"] == {"line": 0, "character": 8}
    assert ready_params(other, doc, "utf-32")["position"] == {"line": 0, "character": 7}
    docs.change("file:///e.py", 4, [(None, text + "y")], "utf-16")
    assert ready_params(request, docs.get("file:///e.py"), "utf-16") is None
    assert ready_params(request, None, "utf-16") is None
