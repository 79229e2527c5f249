"""Recent completions, so typing through a suggestion or undoing never waits for the model.

Two lookups answer without generating:

* **typed-through**: the user types characters that match the start of a suggestion the
  server just gave; the rest of that suggestion is still right, so it is answered at once
  (llama.vim and Tabby do the same);
* **repeat**: the same context again (undo, moving the cursor back and forth), answered
  from a bounded LRU.

Entries are keyed by the model, the completion shape and the three pieces of the prompt
the pipeline builds: ``head`` (what goes before the suffix: the window's lines above the
cursor), ``suffix`` and ``typed`` (the middle's start: the cursor line up to the cursor,
possibly with a few whole lines above it). Typing changes only ``typed``, so a
typed-through lookup is a handful of exact lookups with ``typed`` cut shorter — cheap
whatever the document's size (Python caches each string's hash; ``head`` and ``suffix``
are hashed once per request).

The cache is not thread-safe by itself: the engine's single worker is its only user.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

from lsp_server.core import Completion, Shape

DEFAULT_MAX_ENTRIES = 256
"""Completions kept (llama.vim keeps 250, Tabby 100)."""
DEFAULT_MAX_TYPED = 64
"""Longest run of typed characters a typed-through lookup looks back over."""


class CacheHit(enum.Enum):
    """How a completion was answered."""

    MISS = "miss"
    """Not from the cache: the model was run."""
    EXACT = "exact"
    """The same context was completed before."""
    TYPED = "typed"
    """The user typed the start of an earlier suggestion; this is the rest of it."""


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What a completion depends on (besides the model's weights)."""

    model: str
    shape: Shape
    head: str
    """Prompt text before the suffix (the lines above the middle)."""
    suffix: str
    typed: str
    """Text between ``head`` and the cursor."""

    def shortened(self, n: int) -> CacheKey:
        """This key with the last ``n`` typed characters removed."""
        return CacheKey(self.model, self.shape, self.head, self.suffix, self.typed[:-n])


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """A cache answer: the completion (None = "nothing worth showing") and how it was found."""

    completion: Completion | None
    hit: CacheHit


class CompletionCache:
    """An LRU of completions with typed-through lookups.

    Args:
        max_entries: Completions kept; the least recently used is dropped first. 0
            disables the cache.
        max_typed: How many typed characters a typed-through lookup may skip.
    """

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_typed: int = DEFAULT_MAX_TYPED
    ) -> None:
        self.max_entries = max(0, max_entries)
        self.max_typed = max(0, max_typed)
        self._entries: OrderedDict[CacheKey, Completion | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (the model changed)."""
        self._entries.clear()

    def put(self, key: CacheKey, completion: Completion | None) -> None:
        """Remember what ``key`` completed to (None: nothing worth showing)."""
        if self.max_entries == 0:
            return
        self._entries[key] = completion
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: CacheKey) -> CacheLookup | None:
        """The completion for ``key``, exact first, then typed-through; None on a miss.

        A typed-through answer is the rest of an earlier suggestion whose start equals the
        characters typed since; it is remembered under ``key`` too, so typing on through
        it keeps hitting. A suggestion typed to its very end answers nothing (None): the
        model is asked what comes next.
        """
        if self.max_entries == 0:
            return None
        if key in self._entries:
            self._entries.move_to_end(key)
            return CacheLookup(self._entries[key], CacheHit.EXACT)
        typed = key.typed
        for n in range(1, min(self.max_typed, len(typed)) + 1):
            earlier = self._entries.get(key.shortened(n))
            if earlier is None:
                continue
            ahead = typed[-n:]
            if len(earlier.text) > n and earlier.text.startswith(ahead):
                rest = Completion(earlier.text[n:], earlier.replace_chars)
                self._entries.move_to_end(key.shortened(n))
                self.put(key, rest)
                return CacheLookup(rest, CacheHit.TYPED)
        return None
