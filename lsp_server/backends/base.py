"""The generation backend interface.

A backend turns a :class:`~lsp_server.core.Prompt` into text. The in-process llama.cpp
backend, a remote engine and the deterministic test model all implement
:class:`Backend`, so the pipeline never knows which one it talks to.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lsp_server.core import Prompt

if TYPE_CHECKING:
    from lsp_server.completion.fim import FimTemplate


DEFAULT_MAX_PREDICT_MS = 3000.0
"""Default hard limit on generation after the prompt is evaluated (see
:attr:`GenerationRequest.max_predict_ms`)."""


class CancelToken:
    """A thread-safe flag a generation checks before every token."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the generation to stop at its next token."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()


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
