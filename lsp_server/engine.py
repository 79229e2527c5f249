"""The engine: owns the loaded model and the one generation worker.

* The model is loaded once per model-affecting settings (name/path, n_ctx, threads, GPU
  layers, template), on the worker thread, so completions queue behind the load instead
  of failing.
* At most one generation runs at a time and at most one request waits. A new request
  replaces the waiting one and cancels the running one (the model can only serve one);
  both answer empty at once, and the running generation stops at its next token (or
  prompt chunk), so a request never waits behind a superseded one for longer than that.
* A request the client cancels (``$/cancelRequest``) answers at once but its job goes on,
  so its completion lands in the cache for the editor's next request at the same spot
  ("cancel to cache"); only a newer request, a closed document or a reload stop it.
* A generation a time limit cut short before it held a whole line (a busy machine)
  answers empty at once, and a **follow-up** job for the same request finishes it in the
  background, with the time limits lifted to :data:`FOLLOW_UP_PREDICT_MS` (the prompt is
  in the KV cache, so it costs little). Its completion lands in the cache and the ready
  listeners hear of it (the server tells the client, which asks again and is answered
  from the cache). A newer request, an edit, a close or a reload cancel it at once.
* Recent completions (typed-through / repeats) and prompt windows are kept per loaded
  model; every request's figures go to :attr:`Engine.stats`.
* A model that failed to load is remembered with its error; requests answer empty at once
  until the settings change.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from lsp_server.backends.base import Backend, CancelToken
from lsp_server.completion.cache import DEFAULT_MAX_ENTRIES, CacheHit, CompletionCache
from lsp_server.completion.pipeline import PipelineResult, WindowMemo, complete
from lsp_server.core import CompletionRequest, Shape
from lsp_server.errors import CoderLspError, ContextExceededError, EngineError, ModelLoadError
from lsp_server.repo.context import RepoContext
from lsp_server.settings import BackendSettings, Settings

logger = logging.getLogger(__name__)

STATS_KEPT = 2000
"""How many requests' figures :attr:`Engine.stats` keeps."""
BACKOFF_S = (1.0, 30.0)
"""First and longest wait before reconnecting to a remote engine that failed."""
FOLLOW_UP_PREDICT_MS = 15_000.0
"""The hard time limit of a follow-up generation (a larger ``max_predict_ms`` stands):
long enough for a busy machine to finish a completion, short enough that a model that
runs on and on cannot hold the worker for long."""


class ModelState(enum.Enum):
    """Where the engine's model stands."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LoadKey:
    """The settings that require a reload when they change."""

    model: str
    n_ctx: int
    n_threads: int | None
    n_gpu_layers: int
    template: str | None
    backend: BackendSettings

    @classmethod
    def of(cls, s: Settings) -> LoadKey:
        """The load key of a settings object."""
        return cls(s.model, s.n_ctx, s.n_threads, s.n_gpu_layers, s.template, s.backend)


def load_backend(settings: Settings) -> Backend:
    """The backend the settings choose: a remote engine (``backend.kind``), or
    ``settings.model`` (registry name or path) loaded in-process with llama.cpp."""
    if settings.backend.remote:
        from lsp_server.backends.factory import connect_remote

        return connect_remote(settings)
    from lsp_server.backends.llama_cpp import LlamaCppBackend
    from lsp_server.registry import resolve_model

    resolved = resolve_model(settings.model)
    template = settings.template or (resolved.spec.template if resolved.spec else None)
    return LlamaCppBackend.load(
        resolved.path,
        name=resolved.name,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_gpu_layers=settings.n_gpu_layers,
        template=template,
    )


def file_stamp(path: str | None) -> tuple[int, ...] | None:
    """(device, inode, size, mtime) of a model file: any copy, truncation or replacement
    changes it. None for no path (remote engines) or a file that is gone."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return (-1,)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


Listener = Callable[[ModelState, str], None]
ReadyListener = Callable[[CompletionRequest, PipelineResult], None]
"""Told (on the event loop) that a follow-up put a completion for a request in the cache."""


def follow_up_settings(settings: Settings) -> Settings:
    """The settings a follow-up generation runs with: no time budget, and a hard limit of
    :data:`FOLLOW_UP_PREDICT_MS` (or the user's, when larger)."""
    limit = max(FOLLOW_UP_PREDICT_MS, settings.max_predict_ms or 0.0)
    return replace(settings, time_budget_ms=None, max_predict_ms=limit)


class Engine:
    """Loads the model and runs completions on one worker thread."""

    def __init__(self, loader: Callable[[Settings], Backend] = load_backend) -> None:
        self._loader = loader
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coder-lsp-gen")
        self._lock = threading.Lock()
        self._backend: Backend | None = None
        self._key: LoadKey | None = None
        self._loaded_key: LoadKey | None = None
        self._loaded_stamp: tuple[int, ...] | None = None
        self._failed_key: LoadKey | None = None
        self._error: CoderLspError | None = None
        self._retry_at = 0.0
        self._backoff_s = 0.0
        self._state = ModelState.UNLOADED
        self._detail = ""
        self._settings = Settings()
        self._pending: _Job | None = None
        self._running: _Job | None = None
        self._drain_scheduled = False
        self._closed = False
        self._listeners: list[Listener] = []
        self._ready_listeners: list[ReadyListener] = []
        self.waiting = 0
        """Requests submitted and not yet started: 0 or 1 (for tests and benchmarks)."""
        self.max_waiting = 0
        self.repo: RepoContext | None = None
        """Chooses repository context for requests (handed over by the server once it
        indexes the workspace; used only while the ``repoContext`` setting is on)."""
        self.busy: threading.Event | None = None
        """Set while a completion runs (the workspace indexer pauses meanwhile)."""
        """The most requests that ever waited at once (the queue depth; never above 1)."""
        self.cache = CompletionCache(DEFAULT_MAX_ENTRIES)
        """Recent completions (typed-through and repeats), for the loaded model."""
        self.windows = WindowMemo()
        """Recent prompt windows, for the loaded model."""
        self.stats: deque[RequestStats] = deque(maxlen=STATS_KEPT)
        """Figures of the most recent requests, oldest first."""

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> ModelState:
        """The model's current state."""
        return self._state

    @property
    def error(self) -> CoderLspError | None:
        """Why the last load failed, if it did."""
        return self._error

    @property
    def backend(self) -> Backend | None:
        """The loaded backend, if any."""
        return self._backend

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        return self._settings

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(state, detail)`` on every state change (from any thread)."""
        self._listeners.append(listener)

    def add_ready_listener(self, listener: ReadyListener) -> None:
        """Call ``listener(request, result)`` when a follow-up job put a completion for
        ``request`` in the cache (on the event loop the request came from)."""
        self._ready_listeners.append(listener)

    def _set_state(self, state: ModelState, detail: str = "") -> None:
        if state is ModelState.FAILED and self._state is state and detail == self._detail:
            return  # the same failure again (a reconnect that failed): said once
        self._state = state
        self._detail = detail
        for listener in self._listeners:
            try:
                listener(state, detail)
            except Exception:  # a listener must never break the engine
                logger.exception("state listener failed")

    # -- configuration and loading -------------------------------------------------------
    def configure(self, settings: Settings) -> bool:
        """Adopt new settings; returns True when the model must be (re)loaded."""
        with self._lock:
            self._settings = settings
            key = LoadKey.of(settings)
            if key == self._key:
                return False
            self._key = key
            self._error = None
            if self._running is not None:
                self._running.cancel.cancel()
        self._cancel_follow_ups(lambda job: True)  # its prompt is not in the new model's cache
        return True

    def _ensure_loaded(self) -> Backend | None:
        """Load the model for the current settings if needed (worker thread only)."""
        key = self._key or LoadKey.of(self._settings)
        if self._backend is not None and self._loaded_key == key:
            if file_stamp(self._backend.info.path) == self._loaded_stamp:
                return self._backend
            # Replaced or rewritten on disk since it was loaded (a copy over it, a
            # re-download): a mapped file rewritten in place must not be read again.
            logger.warning("the model file changed on disk; loading it again")
        if self._error is not None and self._failed_key == key and not self._may_retry():
            return None
        self._backend = None
        if self._state is not ModelState.FAILED or not self._settings.backend.remote:
            self._set_state(ModelState.LOADING, self._settings.model)
        try:
            backend = self._loader(self._settings)
        except EngineError as err:
            self._engine_failed(err, key)
            return None
        except CoderLspError as err:
            self._error, self._failed_key = err, key
            logger.error("model load failed: %s", err)
            self._set_state(ModelState.FAILED, str(err))
            return None
        except (OSError, ValueError, RuntimeError) as err:  # llama.cpp refuses with these
            self._error, self._failed_key = ModelLoadError(f"could not load model: {err}"), key
            logger.error("model load failed: %s", err)
            self._set_state(ModelState.FAILED, str(self._error))
            return None
        self._backend, self._loaded_key = backend, key
        self._error, self._failed_key, self._backoff_s = None, None, 0.0
        self._loaded_stamp = file_stamp(backend.info.path)
        self.cache = CompletionCache(self._settings.cache_size)
        self.windows.clear()
        # A backend's note (e.g. "remote tokenizer: the local vocabulary disagrees")
        # travels with the ready status, so the user sees it, not only the log.
        note = getattr(backend, "note", "")
        self._set_state(
            ModelState.READY, f"{backend.info.name} ({note})" if note else backend.info.name
        )
        return backend

    def _may_retry(self) -> bool:
        """Whether a failed remote engine's backoff has passed (local failures wait for
        new settings)."""
        return isinstance(self._error, EngineError) and time.monotonic() >= self._retry_at

    def _engine_failed(self, err: EngineError, key: LoadKey) -> None:
        """A remote engine failed: answer empty until the backoff passes, then reconnect."""
        first, longest = BACKOFF_S
        self._backoff_s = min(longest, self._backoff_s * 2 if self._backoff_s else first)
        self._retry_at = time.monotonic() + self._backoff_s
        backend, self._backend, self._loaded_key = self._backend, None, None
        if backend is not None and hasattr(backend, "close"):
            backend.close()
        self._error, self._failed_key = err, key
        logger.warning("engine failed: %s (reconnecting in %.1f s)", err, self._backoff_s)
        self._set_state(ModelState.FAILED, str(err))

    async def load(self) -> ModelState:
        """Load (or reload) the model in the background; returns the resulting state."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._ensure_loaded)
        return self._state

    # -- completion ----------------------------------------------------------------------
    def _run(self, job: _Job) -> PipelineResult | None:
        """Run one job's pipeline (worker thread); None when it never got to run."""
        if job.cancel.cancelled:
            return None
        backend = self._ensure_loaded()
        if backend is None or job.cancel.cancelled:
            return None
        repo = self.repo if self._settings.repo_context else None
        repo_context = (
            repo.for_document(
                job.request.document, job.request.offset, backend.count_tokens, tree=job.tree
            )
            if repo is not None
            else None
        )

        busy = self.busy
        if busy is not None:
            busy.set()  # background indexing pauses while the model works
        settings = follow_up_settings(self._settings) if job.follow_up else self._settings
        try:
            for attempt in (0, 1):
                try:
                    return complete(
                        job.request,
                        backend,
                        settings,
                        job.cancel,
                        tree=job.tree,
                        cache=self.cache,
                        windows=self.windows,
                        repo_context=repo_context,
                    )
                except ContextExceededError as err:
                    # The engine's context is smaller than it said: the backend now holds
                    # the engine's size; build the prompt again for it, once.
                    if attempt or job.cancel.cancelled:
                        self._engine_failed(err, self._loaded_key or LoadKey.of(self._settings))
                        return None
                    logger.info("re-budgeting the prompt: %s", err)
                except EngineError as err:
                    self._engine_failed(err, self._loaded_key or LoadKey.of(self._settings))
                    return None
            return None
        finally:
            if busy is not None:
                busy.clear()

    def _drain(self) -> None:
        """Take the one waiting job, if it is still there, and run it (worker thread)."""
        with self._lock:
            job = self._pending
            self._pending = None
            self._drain_scheduled = False
            self.waiting = 0
            if job is None:
                return
            self._running = job
        job.started = time.perf_counter()
        try:
            result = self._run(job)
        except Exception as err:  # handed to the awaiting request, which re-raises it
            with self._lock:
                if self._running is job:
                    self._running = None
            job.resolve_error(err)
            return
        with self._lock:
            if self._running is job:
                self._running = None
        job.resolve(result)

    async def complete(
        self, request: CompletionRequest, tree: Any = None, cancel: CancelToken | None = None
    ) -> PipelineResult:
        """Complete on the worker; a newer call supersedes this one.

        At most one job waits and one runs. A newer call replaces the waiting job and
        cancels the running one (it stops at its next token or prompt chunk); either
        answers empty ("cancelled") at once, without waiting for the worker.

        An answer a time limit left empty (:attr:`PipelineResult.cut_short`) is returned
        at once as well; when nothing else waits, a follow-up job then finishes the same
        request in the background into the cache and tells the ready listeners (see
        :meth:`add_ready_listener`) when it found a completion.
        """
        started = time.perf_counter()
        if self._error is not None and self._key == self._failed_key and not self._may_retry():
            return PipelineResult(None, Shape.NONE, f"model unavailable: {self._error}")
        loop = asyncio.get_running_loop()
        job = _Job(request, tree, cancel or CancelToken(), loop, loop.create_future(), started)
        self._submit(job)
        try:
            result = await asyncio.shield(job.future)
        except asyncio.CancelledError:
            # $/cancelRequest: the client stopped waiting, not necessarily wanting. Editors
            # cancel a request they will ask again for the same spot (VS Code gives inline
            # providers 750 ms before it opens its suggest widget), so the job goes on
            # into the completion cache, where that next request finds it at once. A newer
            # request still supersedes it within a token, as above.
            job.future.add_done_callback(_consume)
            self._record(job, None)
            raise
        if result is None:
            reason = "cancelled" if job.cancel.cancelled else f"model unavailable: {self._error}"
            result = PipelineResult(None, Shape.NONE, reason)
        self._record(job, result)
        return result

    def _submit(self, job: _Job, *, only_if_idle: bool = False) -> bool:
        """Make ``job`` the waiting one, superseding the waiting and running jobs.

        With ``only_if_idle`` nothing is superseded: the job is queued only when no other
        waits or runs (a follow-up never displaces a request). Returns whether it was
        queued. Its outcome is looked at by :meth:`_answered` once it is known.
        """
        superseded: list[_Job] = []
        with self._lock:
            if only_if_idle and (self._pending is not None or self._running is not None):
                return False
            if self._pending is not None:
                superseded.append(self._pending)
            if self._running is not None:
                superseded.append(self._running)
            self._pending = job
            self.waiting = 1
            self.max_waiting = max(self.max_waiting, self.waiting)
            schedule = not self._drain_scheduled
            self._drain_scheduled = True
        job.future.add_done_callback(lambda _: self._answered(job))
        for old in superseded:
            old.cancel.cancel()
            old.resolve(None)
        if schedule:
            self._executor.submit(self._drain)
        return True

    def _answered(self, job: _Job) -> None:
        """A job's outcome is known (event loop): follow up on a generation a time limit
        cut short, or tell the ready listeners what a follow-up found."""
        future = job.future
        if future.cancelled():
            return
        err = future.exception()  # retrieved here, so an unawaited job never warns
        result = None if err is not None else future.result()
        if job.follow_up:
            # Nobody awaits a follow-up: its figures and its failure are recorded here.
            if err is not None:
                logger.info("a background completion failed: %s", err)
            self._record(job, result)
            if result is not None and result.completion is not None and not job.cancel.cancelled:
                for listener in self._ready_listeners:
                    try:
                        listener(job.request, result)
                    except Exception:  # a listener must never break the engine
                        logger.exception("completion-ready listener failed")
            return
        if result is None or job.cancel.cancelled or not result.cut_short or self._closed:
            return
        follow = _Job(
            job.request,
            job.tree,
            CancelToken(),
            job.loop,
            job.loop.create_future(),
            time.perf_counter(),
            follow_up=True,
        )
        if self._submit(follow, only_if_idle=True):
            logger.info(
                "a time limit cut the completion short; finishing it in the background (%s:%d)",
                job.request.document.uri.rsplit("/", 1)[-1],
                job.request.offset,
            )

    def _cancel_follow_ups(self, which: Callable[[_Job], bool]) -> None:
        """Cancel the waiting and running follow-up jobs that ``which`` picks."""
        with self._lock:
            jobs = [j for j in (self._pending, self._running) if j is not None and j.follow_up]
        for job in jobs:
            if which(job):
                job.cancel.cancel()
                job.resolve(None)

    def document_changed(self, uri: str) -> None:
        """``uri`` was edited: a follow-up for an older version of it is of no use now."""
        self._cancel_follow_ups(lambda job: job.request.document.uri == uri)

    def retry(self) -> None:
        """Forget a failed load, so the next load tries again (e.g. after a download)."""
        with self._lock:
            self._error = None
            self._failed_key = None

    def cancel_document(self, uri: str) -> None:
        """Cancel the waiting and running jobs for ``uri`` (the document was closed)."""
        with self._lock:
            jobs = [j for j in (self._pending, self._running) if j is not None]
        for job in jobs:
            if job.request.document.uri == uri:
                job.cancel.cancel()
                job.resolve(None)

    def _record(self, job: _Job, result: PipelineResult | None) -> None:
        """Append the figures of one answered request to :attr:`stats`."""
        now = time.perf_counter()
        gen = result.generation if result is not None else None
        if result is None or result.reason == "cancelled":
            outcome = "cancelled"
        elif result.completion is not None:
            outcome = "ok"
        else:
            outcome = "empty"
        llama_ms = gen.llama_ms if gen is not None else 0.0
        total_ms = (now - job.submitted) * 1000
        wait_ms = ((job.started or now) - job.submitted) * 1000
        self.stats.append(
            RequestStats(
                uri=job.request.document.uri,
                version=job.request.document.version,
                offset=job.request.offset,
                outcome=outcome,
                cache=result.cache.value if result is not None else CacheHit.MISS.value,
                shape=result.shape.value if result is not None else Shape.NONE.value,
                prompt_tokens=gen.prompt_tokens if gen is not None else 0,
                evaluated_tokens=gen.evaluated_tokens if gen is not None else 0,
                generated_tokens=gen.generated_tokens if gen is not None else 0,
                total_ms=total_ms,
                wait_ms=wait_ms,
                llama_ms=llama_ms,
                own_ms=max(0.0, total_ms - wait_ms - llama_ms),
                stop_reason=gen.stop_reason.value if gen is not None else "",
                follow_up=job.follow_up,
            )
        )

    def shutdown(self) -> None:
        """Cancel work and stop the worker."""
        with self._lock:
            self._closed = True
            jobs = [j for j in (self._pending, self._running) if j is not None]
            self._pending = None
        for job in jobs:
            job.cancel.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _consume(future: asyncio.Future[PipelineResult | None]) -> None:
    """Retrieve the outcome of a job nobody awaits any more (no 'never retrieved' warning)."""
    if not future.cancelled() and future.exception() is not None:
        logger.info("a cancelled request's completion failed: %s", future.exception())


@dataclass(slots=True)
class _Job:
    """One completion request on its way through the engine."""

    request: CompletionRequest
    tree: Any
    cancel: CancelToken
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[PipelineResult | None]
    submitted: float
    started: float | None = None
    follow_up: bool = False
    """A background job finishing a request a time limit cut short (nobody awaits it)."""

    def resolve(self, result: PipelineResult | None) -> None:
        """Answer the awaiting request (from any thread); later answers are ignored."""
        self._call(lambda: self.future.done() or self.future.set_result(result))

    def resolve_error(self, err: BaseException) -> None:
        """Fail the awaiting request with ``err`` (from any thread)."""
        self._call(lambda: self.future.done() or self.future.set_exception(err))

    def _call(self, fn: Callable[[], object]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            fn()
            return
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.debug("completion answered after its event loop closed")


@dataclass(frozen=True, slots=True)
class RequestStats:
    """Figures of one completion request, for benchmarks and the stats command."""

    uri: str
    version: int | None
    offset: int
    outcome: str
    """ok, empty, or cancelled (superseded, $/cancelRequest, or the document closed)."""
    cache: str
    """miss, exact or typed (see :class:`~lsp_server.completion.cache.CacheHit`)."""
    shape: str
    prompt_tokens: int
    evaluated_tokens: int
    """Prompt tokens evaluated (not found in the KV cache)."""
    generated_tokens: int
    total_ms: float
    """From the engine receiving the request to its answer."""
    wait_ms: float
    """Waiting for the worker (behind a superseded generation's last token)."""
    llama_ms: float
    """Inside llama.cpp: evaluation and sampling."""
    own_ms: float
    """The server's own time: total minus waiting minus llama.cpp."""
    stop_reason: str
    follow_up: bool = False
    """A background run that finished a request a time limit cut short (see
    :meth:`Engine.complete`); its outcome never reached a client as an answer."""

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__}
