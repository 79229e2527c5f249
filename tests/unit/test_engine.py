"""The engine: one generation at a time, supersession, cancellation, load failures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time

import pytest

from lsp_server.backends.base import (
    CancelToken,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
)
from lsp_server.backends.templates import get_template
from lsp_server.core import CompletionRequest, DocumentSnapshot
from lsp_server.engine import Engine, ModelState
from lsp_server.errors import BackendError, ModelLoadError
from lsp_server.settings import Settings
from tests.waiting import HANG_GUARD_S, until

TEXT = "def add(a, b):\n    \n"
REQUEST = CompletionRequest(DocumentSnapshot("file:///a.py", TEXT, "python", 1), 19)


class SlowBackend:
    """Emits one token every ``delay`` seconds until told to stop; records what it did.

    With a ``gate``, each token waits for the gate to open instead: a generation then
    stays inside its token until the test opens it.
    """

    def __init__(
        self, tokens: list[str], delay: float = 0.01, gate: threading.Event | None = None
    ) -> None:
        self.tokens = tokens
        self.delay = delay
        self.gate = gate
        self.info = ModelInfo("slow", 2048, get_template("deepseek"))
        self.generated: list[int] = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            text, n = "", 0
            for n, tok in enumerate(self.tokens[: request.max_tokens]):
                if cancel.cancelled:
                    self.generated.append(n)
                    return Generation(text, StopReason.CANCELLED, generated_tokens=n)
                if self.gate is not None:
                    self.gate.wait(HANG_GUARD_S)
                else:
                    time.sleep(self.delay)
                text += tok
            self.generated.append(n + 1)
            return Generation(text, StopReason.EOS, generated_tokens=n + 1)
        finally:
            with self.lock:
                self.running -= 1


def engine_with(backend: SlowBackend, **settings) -> Engine:
    engine = Engine(loader=lambda s: backend)
    engine.configure(dataclasses.replace(Settings(), time_budget_ms=None, **settings))
    return engine


async def test_completes_with_the_backend():
    engine = engine_with(SlowBackend(["return", " a", " +", " b"]))
    result = await engine.complete(REQUEST)
    assert result.completion is not None and result.completion.text == "return a + b"
    assert engine.state is ModelState.READY


async def test_newer_request_cancels_older_within_a_token():
    backend = SlowBackend(["x"] * 10_000, delay=0.005)
    engine = engine_with(backend, max_tokens=10_000)
    first = asyncio.ensure_future(engine.complete(REQUEST))
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(engine.complete(REQUEST))
    await asyncio.sleep(0.05)
    assert engine.waiting <= 1
    r1 = await first
    assert r1.completion is None and r1.reason == "cancelled"
    await until(lambda: bool(backend.generated))
    assert backend.generated[0] < 10_000  # the cancel reached the generation: not all 10k
    stop_third = CancelToken()
    third = asyncio.ensure_future(engine.complete(REQUEST, cancel=stop_third))
    r2 = await second  # superseded by the third
    assert r2.completion is None and r2.reason == "cancelled"
    stop_third.cancel()
    assert (await third).completion is None
    assert backend.max_running == 1  # never two generations at once


async def test_client_cancellation_finishes_into_the_cache():
    """$/cancelRequest answers at once, but the generation goes on into the cache, so the
    editor's next request at the same spot is answered without the model."""
    backend = SlowBackend(["return", " a", " +", " b"], delay=0.05)
    engine = engine_with(backend)
    task = asyncio.ensure_future(engine.complete(REQUEST))
    await until(lambda: backend.running > 0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    await until(lambda: bool(backend.generated))
    assert backend.generated == [4]  # ran to its end, not stopped at the next token
    again = await engine.complete(REQUEST)
    assert again.completion is not None and again.completion.text == "return a + b"
    assert again.cache.value == "exact" and backend.generated == [4]


async def test_client_cancellation_while_loading_still_runs_after_the_load():
    """A request made (and given up by the client) while the model loads is answered into
    the cache once the model is ready."""
    release = threading.Event()
    backend = SlowBackend(["return", " a", " +", " b"])

    def loader(settings: Settings) -> SlowBackend:
        release.wait(5)
        return backend

    engine = Engine(loader=loader)
    engine.configure(dataclasses.replace(Settings(), time_budget_ms=None))
    load = asyncio.ensure_future(engine.load())
    task = asyncio.ensure_future(engine.complete(REQUEST))
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    release.set()
    assert await load is ModelState.READY
    await until(lambda: bool(backend.generated))
    assert backend.generated == [4]
    again = await engine.complete(REQUEST)
    assert again.cache.value == "exact" and again.completion is not None


async def test_newer_request_still_stops_a_client_cancelled_generation():
    backend = SlowBackend(["x"] * 10_000, delay=0.005)
    engine = engine_with(backend, max_tokens=10_000)
    task = asyncio.ensure_future(engine.complete(REQUEST))
    await until(lambda: backend.running > 0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    other = CompletionRequest(DocumentSnapshot("file:///a.py", TEXT + "x", "python", 2), 19)
    stop = CancelToken()
    newer = asyncio.ensure_future(engine.complete(other, cancel=stop))
    await until(lambda: bool(backend.generated))
    assert backend.generated[0] < 1000
    stop.cancel()
    await newer


async def test_invoked_request_asks_the_model_again():
    """An explicit request skips the cache (it may hold a cut-short or empty answer) and
    refreshes it."""
    backend = SlowBackend(["return", " a", " +", " b"])
    engine = engine_with(backend)
    await engine.complete(REQUEST)
    invoked = dataclasses.replace(REQUEST, invoked=True)
    again = await engine.complete(invoked)
    assert again.cache.value == "miss" and len(backend.generated) == 2
    automatic = await engine.complete(REQUEST)
    assert automatic.cache.value == "exact" and len(backend.generated) == 2


async def test_cancelled_before_start_never_runs():
    backend = SlowBackend(["x"] * 100, delay=0.01)
    engine = engine_with(backend)
    token = CancelToken()
    token.cancel()
    result = await engine.complete(REQUEST, cancel=token)
    assert result.completion is None and backend.generated == []


async def test_load_failure_answers_empty_until_settings_change():
    calls = []

    def loader(settings: Settings):
        calls.append(settings.model)
        if settings.model == "bad.gguf":
            raise ModelLoadError("bad.gguf is not a GGUF file")
        return SlowBackend(["return", " a"])

    engine = Engine(loader=loader)
    engine.configure(dataclasses.replace(Settings(), model="bad.gguf"))
    assert await engine.load() is ModelState.FAILED
    assert "not a GGUF" in str(engine.error)
    result = await engine.complete(REQUEST)
    assert result.completion is None and "unavailable" in result.reason
    assert calls == ["bad.gguf"]  # answered without trying to load again
    assert engine.configure(dataclasses.replace(Settings(), model="good.gguf"))
    result = await engine.complete(REQUEST)
    assert result.completion is not None and calls == ["bad.gguf", "good.gguf"]


async def test_same_settings_do_not_reload():
    calls = []
    engine = Engine(loader=lambda s: calls.append(1) or SlowBackend(["return"]))
    engine.configure(Settings())
    await engine.complete(REQUEST)
    assert not engine.configure(dataclasses.replace(Settings(), max_tokens=64))
    await engine.complete(REQUEST)
    assert calls == [1]


async def test_flood_never_queues_more_than_one_request():
    backend = SlowBackend(["x"] * 10_000, delay=0.005)
    engine = engine_with(backend, max_tokens=10_000)
    tasks = []
    for _ in range(50):
        tasks.append(asyncio.ensure_future(engine.complete(REQUEST)))
        await asyncio.sleep(0.001)
    older = await asyncio.gather(*tasks[:-1])
    # Superseded requests answer at once: while the newest one is still generating.
    assert not tasks[-1].done()
    assert all(r.completion is None and r.reason == "cancelled" for r in older)
    assert engine.max_waiting == 1
    assert backend.max_running == 1
    engine.cancel_document(REQUEST.document.uri)
    last = await asyncio.wait_for(tasks[-1], HANG_GUARD_S)
    assert last.completion is None
    # Most of the flood never reached the model.
    assert len(backend.generated) < 25


async def test_superseded_running_request_answers_before_its_generation_stops():
    gate = threading.Event()
    backend = SlowBackend(["x"] * 100, gate=gate)
    engine = engine_with(backend, max_tokens=100)
    first = asyncio.ensure_future(engine.complete(REQUEST))
    await until(lambda: backend.running == 1)
    second = asyncio.ensure_future(engine.complete(REQUEST))
    r1 = await first
    assert r1.reason == "cancelled"
    # The generation is still inside its first token (the gate is shut): the answer did
    # not wait for it to stop.
    assert backend.running == 1 and backend.generated == []
    engine.cancel_document(REQUEST.document.uri)
    gate.set()
    assert (await second).completion is None


async def test_closing_the_document_cancels_its_request():
    backend = SlowBackend(["x"] * 10_000, delay=0.005)
    engine = engine_with(backend, max_tokens=10_000)
    task = asyncio.ensure_future(engine.complete(REQUEST))
    await until(lambda: backend.running > 0)
    engine.cancel_document("file:///other.py")
    await asyncio.sleep(0.02)
    assert not task.done()
    engine.cancel_document(REQUEST.document.uri)
    result = await asyncio.wait_for(task, HANG_GUARD_S)
    assert result.completion is None and result.reason == "cancelled"
    await until(lambda: backend.running == 0)
    assert backend.generated[0] < 1000


async def test_repeats_come_from_the_cache_and_stats_are_kept():
    backend = SlowBackend(["return", " a", " +", " b"])
    engine = engine_with(backend)
    first = await engine.complete(REQUEST)
    again = await engine.complete(REQUEST)
    assert again.completion == first.completion and again.cache.value == "exact"
    assert len(backend.generated) == 1
    stats = [s.as_dict() for s in engine.stats]
    assert [s["cache"] for s in stats] == ["miss", "exact"]
    assert [s["outcome"] for s in stats] == ["ok", "ok"]
    assert all(s["total_ms"] >= s["own_ms"] >= 0 for s in stats)


async def test_backend_errors_reach_the_caller():
    class Broken(SlowBackend):
        def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
            raise BackendError("llama.cpp failed")

    engine = engine_with(Broken([]))
    for _ in range(2):  # the worker survives the error and answers the next request
        with pytest.raises(BackendError):
            await asyncio.wait_for(engine.complete(REQUEST), HANG_GUARD_S)
