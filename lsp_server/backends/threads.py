"""How many CPU threads llama.cpp uses for each request, chosen so a busy machine stays fast.

llama.cpp (built with OpenMP by llama-cpp-python) makes its threads wait for each other at
a barrier after every operation of every layer. With one thread per core, anything else
that wants a core (the editor, a build, a browser, another model) deschedules one of them
and the others stall at the next barrier: a completion gets 3 to 15 times slower, where one
thread fewer would have lost little. How much is lost depends on what else runs, so the
default policy measures instead of guessing: :class:`AdaptiveThreads` times every request
at the thread count it used, now and then tries a neighbouring count, and settles on the
fastest — all cores on an idle machine, fewer on a busy one. A thread count set by the user
(:class:`FixedThreads`) is used as it is.

Waiting threads sleep instead of spinning (:func:`quiet_openmp`, done when
``lsp_server.backends`` is imported, before llama.cpp loads): a spinning thread holds its
core while the thread it waits for is off the CPU, so with anything else busy every
barrier stalls. Measured on 2 cores (bench/busy.py): the demo took 15-17 s with spinning
threads next to other work and 1.4-2.4 s with sleeping ones.

The policies are pure: the backend asks :meth:`ThreadPolicy.next_threads` before a request
and reports the timings with :meth:`ThreadPolicy.record` after it.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Protocol

MAX_DEFAULT_THREADS = 8
"""More threads than this rarely help a small completion model."""


OPENMP_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def quiet_openmp(environ: MutableMapping[str, str] | None = None) -> bool:
    """Make llama.cpp's idle OpenMP threads sleep rather than spin; True if it was set.

    libgomp reads its settings once, when llama-cpp-python loads the library, so this must
    run before ``llama_cpp`` is imported. The user's own ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` is left as it is.
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in OPENMP_SETTINGS):
        return False
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class RequestTiming:
    """What one request cost at one thread count."""

    threads: int
    evaluated_tokens: int
    """Prompt tokens evaluated (not taken from the KV cache)."""
    prompt_s: float
    """Time until the first generated token (prompt evaluation and the first decode)."""
    generated_tokens: int
    generate_s: float
    """Time from the first generated token to the last."""


class ThreadPolicy(Protocol):
    """Chooses llama.cpp's thread count before each request."""

    @property
    def max_threads(self) -> int:
        """The most threads this policy will ever ask for (the context is created with it)."""
        ...

    def next_threads(self) -> int:
        """Threads for the next request."""
        ...

    def record(self, timing: RequestTiming) -> None:
        """Learn from a finished request."""
        ...


class FixedThreads:
    """Always the same thread count (the user's ``nThreads``)."""

    def __init__(self, threads: int) -> None:
        """Use ``threads`` (at least 1) for every request."""
        self._threads = max(1, threads)

    @property
    def max_threads(self) -> int:
        """The fixed count."""
        return self._threads

    def next_threads(self) -> int:
        """The fixed count."""
        return self._threads

    def record(self, timing: RequestTiming) -> None:
        """Nothing to learn."""


MIN_DECODE_TOKENS = 3
"""A request with fewer generated tokens says too little about the decode rate."""
MIN_PROMPT_TOKENS = 16
"""A request with fewer evaluated tokens says too little about the prompt rate."""


@dataclass(slots=True)
class _Estimate:
    """Seconds per token at one thread count, smoothed over recent requests."""

    decode_s: float | None = None
    prompt_s: float | None = None
    seen_at: int = -1
    """The request number of the latest sample."""
    probed_at: int = -1
    """The request number of the latest probe (which may have measured nothing)."""


def _smooth(old: float | None, new: float, weight: float) -> float:
    return new if old is None else old + weight * (new - old)


class AdaptiveThreads:
    """Moves between 1 and ``max_threads`` threads towards the fastest, measured per request.

    Candidates are 1, 2, 4 … and ``max_threads``. It starts at ``start`` (all of them by
    default: on an idle machine that is fastest). Each request's seconds per generated
    token (and per evaluated prompt token) update the estimate of the count it ran with.
    A neighbouring count (one candidate down or up) that was never measured, or not for
    ``reprobe_every`` requests, gets the next request — one probe — so a machine that got
    busy learns that fewer threads help and one that went idle goes back to its cores.
    Otherwise the request runs at the count with the lowest estimate, and the current
    count is left only for one at least ``margin`` faster (noise must not make it flap).
    """

    def __init__(
        self,
        max_threads: int,
        *,
        start: int | None = None,
        reprobe_every: int = 24,
        margin: float = 0.1,
        weight: float = 0.5,
    ) -> None:
        """Adapt between 1 and ``max_threads``; see the class docstring for the knobs."""
        self._max = max(1, max_threads)
        counts = {self._max}
        n = 1
        while n < self._max:
            counts.add(n)
            n *= 2
        self.candidates: tuple[int, ...] = tuple(sorted(counts))
        first = self._max if start is None else min(max(1, start), self._max)
        self.current = min(self.candidates, key=lambda c: abs(c - first))
        self._reprobe_every = max(1, reprobe_every)
        self._margin = margin
        self._weight = weight
        self._estimates = {c: _Estimate() for c in self.candidates}
        self._requests = 0

    @property
    def max_threads(self) -> int:
        """The largest candidate."""
        return self._max

    def next_threads(self) -> int:
        """The count for the next request: a due probe, else the best known."""
        self._requests += 1
        probe = self._due_probe()
        if probe is not None:
            return probe
        best = self._best()
        if best != self.current:
            here, there = self._score(self.current, best), self._score(best, self.current)
            if here is None or there is None or there < here * (1 - self._margin):
                self.current = best
        return self.current

    def record(self, timing: RequestTiming) -> None:
        """Fold one request's rates into the estimate of the count it ran with."""
        est = self._estimates.get(timing.threads)
        if est is None:
            return
        # A sample after a long gap replaces the old value: the load may have changed.
        stale = est.seen_at < 0 or self._requests - est.seen_at >= self._reprobe_every
        weight = 1.0 if stale else self._weight
        measured = False
        if timing.generated_tokens >= MIN_DECODE_TOKENS and timing.generate_s > 0:
            # generate_s starts at the first token: it covers the other tokens' decodes.
            rate = timing.generate_s / (timing.generated_tokens - 1)
            est.decode_s = _smooth(None if stale else est.decode_s, rate, weight)
            measured = True
        if timing.evaluated_tokens >= MIN_PROMPT_TOKENS and timing.prompt_s > 0:
            rate = timing.prompt_s / timing.evaluated_tokens
            est.prompt_s = _smooth(None if stale else est.prompt_s, rate, weight)
            measured = True
        if measured:
            est.seen_at = self._requests

    def _due_probe(self) -> int | None:
        """A neighbour of the current count that is unmeasured or stale, if any."""
        if self._estimates[self.current].seen_at < 0:
            return None  # the first request runs at the start count: it is the first seen
        i = self.candidates.index(self.current)
        neighbours = [self.candidates[j] for j in (i - 1, i + 1) if 0 <= j < len(self.candidates)]
        for n in neighbours:
            est = self._estimates[n]
            last = max(est.seen_at, est.probed_at)
            if last < 0 or self._requests - last > self._reprobe_every:
                est.probed_at = self._requests  # one probe, even if it measures nothing
                return n
        return None

    def _score(self, n: int, other: int) -> float | None:
        """Seconds per token at ``n``, by the rate that both ``n`` and ``other`` have."""
        a, b = self._estimates[n], self._estimates[other]
        if a.decode_s is not None and b.decode_s is not None:
            return a.decode_s
        if a.prompt_s is not None and b.prompt_s is not None:
            return a.prompt_s
        return None

    def _best(self) -> int:
        """The measured count with the lowest score against the current one."""
        best = self.current
        for n in self.candidates:
            here, there = self._score(best, n), self._score(n, best)
            if here is not None and there is not None and there < here:
                best = n
        return best


def policy_for(n_threads: int | None) -> ThreadPolicy:
    """The user's fixed count when set, else the adaptive default over this machine's CPUs."""
    if n_threads is not None and n_threads > 0:
        return FixedThreads(n_threads)
    return AdaptiveThreads(min(available_cpus(), MAX_DEFAULT_THREADS))
