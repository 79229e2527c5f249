"""The generation backend interface: one seam for every engine.

A backend turns a :class:`~lsp_server.core.Prompt` into text. It is made of two parts:

* a :class:`Tokenizer` — exact and local (the model's own vocabulary, or a remote
  engine's ``/tokenize`` behind a cache): counts tokens for the prompt budget and turns a
  prompt into the token ids the model evaluates;
* a :class:`Generator` — streams tokens for a prompt, cancellable between any two, and
  ends them through the shared stop policy (:mod:`lsp_server.backends.stopping`).

A backend also declares its :class:`Capabilities` (does it keep a prefix cache, does it
stream, does it take token ids), which decide e.g. whether the pipeline lays the prompt
out for the KV cache. The in-process llama.cpp backend, the remote engines and the test
models all implement :class:`Backend`, so the pipeline never knows which one it talks to.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lsp_server.core import Prompt

if TYPE_CHECKING:
    from lsp_server.backends.templates import FimTemplate


logger = logging.getLogger(__name__)


class CancelToken:
    """A thread-safe flag a generation checks before every token.

    A generator that blocks (reading a remote engine's stream) registers a callback with
    :meth:`on_cancel` that unblocks it — closes the connection — the moment the token is
    cancelled, from whichever thread cancels it.
    """

    __slots__ = ("_callbacks", "_event", "_lock")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        """Ask the generation to stop at its next token (and run the cancel callbacks)."""
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run_callback(callback)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` once when the token is cancelled (at once if it already is).

        Returns a function that unregisters the callback (call it when the blocking work
        is over, so a late cancel does not touch what the callback closes).
        """
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        _run_callback(callback)
        return lambda: None

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()


def _run_callback(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a cancel callback must never break the canceller
        logger.debug("cancel callback failed", exc_info=True)


class StopReason(enum.Enum):
    """Why a generation ended."""

    EOS = "eos"
    """The model produced an end-of-generation token."""
    STOP = "stop"
    """A stop sequence (or a caller's ``should_stop``) matched."""
    LENGTH = "length"
    """``max_tokens`` was reached."""
    CANCELLED = "cancelled"
    """The cancel token was set."""
    TIMEOUT = "timeout"
    """The time budget ran out."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation: the prompt and its limits."""

    prompt: Prompt
    max_tokens: int = 128
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    time_budget_ms: float | None = None
    """Stop after this long once the text holds at least one complete line."""
    max_predict_ms: float | None = None
    """Hard limit on generation once the prompt is evaluated (llama-server's
    ``t_max_predict_ms`` spirit): stop then whatever the text holds, keeping its whole
    lines only — or nothing when it has none (TIMEOUT). None: no limit."""
    should_stop: Callable[[str], bool] | None = None
    """Called with the text so far after each token; True ends generation (STOP)."""


@dataclass(frozen=True, slots=True)
class Generation:
    """The result of one generation, with the figures benchmarks need."""

    text: str
    stop_reason: StopReason
    prompt_tokens: int = 0
    """Tokens in the prompt."""
    evaluated_tokens: int = 0
    """Prompt tokens actually evaluated (the rest came from the KV cache)."""
    generated_tokens: int = 0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    llama_ms: float = 0.0
    """Time spent inside the model itself (evaluation and sampling); the rest of
    ``prompt_ms + generate_ms`` is the backend's own overhead (tokenizing, decoding)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the pipeline needs to know about the loaded model."""

    name: str
    n_ctx: int
    template: FimTemplate
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine can do; the pipeline adapts to it."""

    prefix_cache: bool = True
    """The engine keeps the KV cache of the previous prompt and evaluates only what
    follows the longest shared prefix: worth laying the prompt out so that typing only
    appends tokens (``kv_prompt``)."""
    streaming: bool = True
    """Tokens arrive one at a time: cancellation, stop sequences and time limits apply
    between any two."""
    token_prompts: bool = True
    """The engine takes the prompt as token ids, so text that spells a control token
    (``<|fim_prefix|>`` in the user's code) can never become one."""


IN_PROCESS = Capabilities()
"""The in-process llama.cpp backend can do everything."""


def capabilities_of(backend: object) -> Capabilities:
    """A backend's declared capabilities (those of the in-process backend when it
    declares none, as the deterministic test doubles do)."""
    caps = getattr(backend, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else IN_PROCESS


class Tokenizer(Protocol):
    """Exact tokenization in one model's vocabulary (no BOS, control texts not parsed)."""

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes as plain text."""
        ...

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids ``prompt`` evaluates to: BOS, special parts, text parts."""
        ...


class Generator(Protocol):
    """Streams tokens for a prompt; cancellable; ends through the shared stop policy."""

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Generate text for ``request``; checks ``cancel`` before every token."""
        ...


class Backend(Protocol):
    """Anything that can count tokens and generate a completion for a prompt."""

    @property
    def info(self) -> ModelInfo:
        """The loaded model's name, context size and FIM template."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model's vocabulary (as plain text)."""
        ...

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Generate text for ``request``; checks ``cancel`` before every token."""
        ...
