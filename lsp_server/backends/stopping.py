"""The stop policy every generator shares: when a streamed generation ends, what it keeps.

A generator (in-process llama.cpp, a remote engine's token stream) appends each decoded
piece to its text and asks :meth:`StopPolicy.check` whether to go on. The policy knows
the request's stop sequences, its ``should_stop`` callback and its two time limits:

* the **time budget** (``time_budget_ms``, counted from the start of the call): once it
  has passed and the text holds a complete line, stop;
* the **hard limit** (``max_predict_ms``, counted from the first generated token): stop
  whatever the text holds.

The **whole-lines rule**: a generation stopped by either time limit keeps only its whole
lines — the text up to its last newline — or nothing; a line cut mid-way by the clock is
never shown. A generation that ends by itself (end of generation, a stop sequence,
``should_stop``) or at ``max_tokens`` keeps its text as it is; post-processing decides
what of it to show.

Everything here is pure apart from reading the clock, which callers may replace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsp_server.backends.base import GenerationRequest, StopReason

Clock = Callable[[], float]
"""Seconds from an arbitrary origin (``time.perf_counter`` by default)."""


def whole_lines(text: str) -> str:
    """``text`` up to (not including) its last newline; "" when it holds no newline."""
    cut = text.rfind("\n")
    return text[:cut] if cut >= 0 else ""


def find_stop(text: str, stops: Sequence[str], start: int = 0) -> int | None:
    """Index of the earliest stop sequence found in ``text[start:]``, or None."""
    hits = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(hits) if hits else None


@dataclass(frozen=True, slots=True)
class Stopped:
    """The verdict that a generation ends: why, and the text it keeps."""

    reason: StopReason
    text: str


class StopPolicy:
    """Stop sequences, ``should_stop``, the time budget and the hard limit of one request.

    Use one per generation::

        policy = StopPolicy(request, started)
        ...                       # evaluate the prompt
        policy.generation_started()  # first token sampled: the hard limit starts
        text += piece
        verdict = policy.check(text, seen=len(text_before_piece))
        if verdict: text, reason = verdict.text, verdict.reason
    """

    __slots__ = (
        "_budget_s",
        "_clock",
        "_predict_from",
        "_predict_s",
        "_should_stop",
        "_started",
        "longest_stop",
        "stops",
    )

    def __init__(
        self, request: GenerationRequest, started: float | None = None, clock: Clock | None = None
    ) -> None:
        """Prepare the policy for ``request``; ``started`` is when the call began."""
        self._clock = clock or time.perf_counter
        self._started = self._clock() if started is None else started
        self.stops: tuple[str, ...] = tuple(s for s in (*request.stop, *request.prompt.stop) if s)
        """Every stop sequence: the request's and the prompt's (empty ones dropped)."""
        self.longest_stop = max((len(s) for s in self.stops), default=0)
        self._should_stop = request.should_stop
        self._budget_s = None if request.time_budget_ms is None else request.time_budget_ms / 1000
        self._predict_s = None if request.max_predict_ms is None else request.max_predict_ms / 1000
        self._predict_from: float | None = None

    def generation_started(self, at: float | None = None) -> None:
        """Mark the first generated token (the hard limit counts from here); idempotent."""
        if self._predict_from is None:
            self._predict_from = self._clock() if at is None else at

    def check(self, text: str, seen: int = 0) -> Stopped | None:
        """Whether generation ends now that the text is ``text``; None to go on.

        ``seen`` is the length of the text before the latest piece: stop sequences are
        looked for only where the new piece could have completed one.
        """
        if self.stops:
            cut = find_stop(text, self.stops, max(0, seen - self.longest_stop + 1))
            if cut is not None:
                return Stopped(StopReason.STOP, text[:cut])
        if self._should_stop is not None and self._should_stop(text):
            return Stopped(StopReason.STOP, text)
        return self.check_time(text)

    def check_time(self, text: str) -> Stopped | None:
        """Whether a time limit ends generation with ``text`` so far (whole lines kept).

        Generators whose tokens arrive over a network call this also when a read times
        out (see :meth:`seconds_left`), so a stalled stream ends on time.
        """
        now = self._clock()
        if self._budget_s is not None and "\n" in text and now - self._started >= self._budget_s:
            return Stopped(StopReason.TIMEOUT, whole_lines(text))
        if self.hard_limit_passed(now):
            return Stopped(StopReason.TIMEOUT, whole_lines(text))
        return None

    def hard_limit_passed(self, now: float | None = None) -> bool:
        """True once ``max_predict_ms`` has passed since the first generated token."""
        if self._predict_s is None or self._predict_from is None:
            return False
        return (self._clock() if now is None else now) - self._predict_from >= self._predict_s

    def seconds_left(self, text: str) -> float | None:
        """Seconds until a time limit could end generation with ``text``; None: no limit.

        The hard limit applies once the first token came (the prompt's evaluation is not
        limited here); the budget once ``text`` holds a complete line.
        """
        now = self._clock()
        left: list[float] = []
        if self._predict_s is not None and self._predict_from is not None:
            left.append(self._predict_from + self._predict_s - now)
        if self._budget_s is not None and "\n" in text:
            left.append(self._started + self._budget_s - now)
        return max(0.0, min(left)) if left else None
