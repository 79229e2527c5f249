"""A bounded, thread-safe memo: the one cache type of repository context.

The generation worker selects snippets while the prewarm thread fills the same caches
for a newly opened document, and either may clear them. Every read, write and eviction
happens under the cache's lock, so a ``clear()`` from one thread never lands between
another thread's lookup and its read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class LockedLru(Generic[K, V]):
    """At most ``max_entries`` values by key, the least recently used evicted first."""

    def __init__(self, max_entries: int) -> None:
        """An empty cache that holds up to ``max_entries`` values (at least one)."""
        self._max = max(1, max_entries)
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value stored for ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key, _MISSING)
            if value is _MISSING:
                return None
            self._items.move_to_end(key)
            return value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``key``, evicting the least recently used beyond the bound."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The value for ``key``; computed (outside the lock) and stored when missing.

        ``compute`` runs without the lock held, so a slow one does not hold up other
        threads' lookups and may itself use other caches; two threads that miss the same
        key at once both compute it (the values are equal: the last one stays). The value
        returned is the one computed or found, never re-read after the lock is released.
        """
        with self._lock:
            value = self._items.get(key, _MISSING)
            if value is not _MISSING:
                self._items.move_to_end(key)
                return value  # type: ignore[return-value]
        value = compute()
        self.put(key, value)
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        """How many values are stored."""
        with self._lock:
            return len(self._items)
