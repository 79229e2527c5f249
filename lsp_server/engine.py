"""The engine: owns the loaded model and the one generation worker.

* The model is loaded once per model-affecting settings (name/path, n_ctx, threads, GPU
  layers, template), on the worker thread, so completions queue behind the load instead
  of failing.
* At most one generation runs at a time. A new request cancels whatever request came
  before it (the model can only serve one), so a request never waits behind a superseded
  one for more than one token.
* A model that failed to load is remembered with its error; requests answer empty at once
  until the settings change.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lsp_server.backends.base import Backend, CancelToken
from lsp_server.completion.pipeline import PipelineResult, complete
from lsp_server.core import CompletionRequest, Shape
from lsp_server.errors import CoderLspError, ModelLoadError
from lsp_server.settings import Settings

logger = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, s: Settings) -> LoadKey:
        """The load key of a settings object."""
        return cls(s.model, s.n_ctx, s.n_threads, s.n_gpu_layers, s.template)


def load_backend(settings: Settings) -> Backend:
    """Resolve ``settings.model`` (registry name or path) and load it with llama.cpp."""
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


Listener = Callable[[ModelState, str], None]


class Engine:
    """Loads the model and runs completions on one worker thread."""

    def __init__(self, loader: Callable[[Settings], Backend] = load_backend) -> None:
        self._loader = loader
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coder-lsp-gen")
        self._lock = threading.Lock()
        self._backend: Backend | None = None
        self._key: LoadKey | None = None
        self._loaded_key: LoadKey | None = None
        self._failed_key: LoadKey | None = None
        self._error: CoderLspError | None = None
        self._state = ModelState.UNLOADED
        self._settings = Settings()
        self._current: CancelToken | None = None
        self._listeners: list[Listener] = []
        self.waiting = 0
        """Requests submitted and not yet started (for tests and benchmarks)."""

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

    def _set_state(self, state: ModelState, detail: str = "") -> None:
        self._state = state
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
            if self._current is not None:
                self._current.cancel()
            return True

    def _ensure_loaded(self) -> Backend | None:
        """Load the model for the current settings if needed (worker thread only)."""
        key = self._key or LoadKey.of(self._settings)
        if self._backend is not None and self._loaded_key == key:
            return self._backend
        if self._error is not None and self._failed_key == key:
            return None
        self._backend = None
        self._set_state(ModelState.LOADING, self._settings.model)
        try:
            backend = self._loader(self._settings)
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
        self._set_state(ModelState.READY, backend.info.name)
        return backend

    async def load(self) -> ModelState:
        """Load (or reload) the model in the background; returns the resulting state."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._ensure_loaded)
        return self._state

    # -- completion ----------------------------------------------------------------------
    def _run(
        self, request: CompletionRequest, cancel: CancelToken, tree: Any
    ) -> PipelineResult | None:
        with self._lock:
            self.waiting -= 1
        if cancel.cancelled:
            return None
        backend = self._ensure_loaded()
        if backend is None or cancel.cancelled:
            return None
        return complete(request, backend, self._settings, cancel, tree=tree)

    async def complete(
        self, request: CompletionRequest, tree: Any = None, cancel: CancelToken | None = None
    ) -> PipelineResult:
        """Complete on the worker; a newer call cancels this one at its next token."""
        if self._error is not None and self._key == self._failed_key:
            return PipelineResult(None, Shape.NONE, f"model unavailable: {self._error}")
        cancel = cancel or CancelToken()
        with self._lock:
            if self._current is not None:
                self._current.cancel()
            self._current = cancel
            self.waiting += 1
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, self._run, request, cancel, tree)
        try:
            result = await asyncio.shield(fut)
        except asyncio.CancelledError:
            cancel.cancel()  # $/cancelRequest: stop at the next token
            raise
        finally:
            with self._lock:
                if self._current is cancel:
                    self._current = None
        if result is None:
            reason = "cancelled" if cancel.cancelled else f"model unavailable: {self._error}"
            return PipelineResult(None, Shape.NONE, reason)
        return result

    def shutdown(self) -> None:
        """Cancel work and stop the worker."""
        if self._current is not None:
            self._current.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
