"""Token counting with a memo: a tokenizer's answers kept per line across requests.

Several layers count tokens of the same text (the context window, the repository
context's budget, the pipeline's final check): they share this one bounded memo per
tokenizer, so editing a file re-counts only the lines that changed. It sits on the ground
floor so that the repository layer need not reach up into the completion layer for it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["cached_count", "token_cache"]

_CACHE_SIZE = 50_000
"""Most (line -> token count) entries kept per tokenizer."""

# Keyed weakly by the tokenizer's owner (the backend for a bound method) so a cache
# never keeps an unloaded model alive.
_caches: weakref.WeakKeyDictionary[object, dict[object, OrderedDict[str, int]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def _cache_for(count_tokens: Callable[[str], int]) -> OrderedDict[str, int] | None:
    """The memo of ``count_tokens`` (the caller holds ``_cache_lock``), None if it has none."""
    owner = getattr(count_tokens, "__self__", None)
    func = getattr(count_tokens, "__func__", count_tokens)
    anchor = owner if owner is not None else count_tokens
    try:
        per_owner = _caches.get(anchor)
        if per_owner is None:
            per_owner = {}
            _caches[anchor] = per_owner
    except TypeError:
        # Not weak-referenceable: count without a cross-request cache.
        return None
    cache = per_owner.get(func)
    if cache is None:
        cache = OrderedDict()
        per_owner[func] = cache
    return cache


def token_cache(count_tokens: Callable[[str], int]) -> OrderedDict[str, int] | None:
    """The memo of ``count_tokens``, to pass to :func:`cached_count` for many lines in a row."""
    with _cache_lock:
        return _cache_for(count_tokens)


def cached_count(
    count_tokens: Callable[[str], int],
    chunk: str,
    cache: OrderedDict[str, int] | bool | None = True,
) -> int:
    """``count_tokens(chunk)``, memoised per tokenizer in a bounded LRU.

    Bound methods of one backend share a cache from one request to the next, so
    editing a file re-counts only the lines that changed. ``cache`` may pass the
    tokenizer's cache already looked up (:func:`token_cache`), to save the lookup per line.
    """
    with _cache_lock:
        if cache is True:
            cache = _cache_for(count_tokens)
        if isinstance(cache, OrderedDict):
            hit = cache.get(chunk)
            if hit is not None:
                cache.move_to_end(chunk)
                return hit
    value = count_tokens(chunk)
    if isinstance(cache, OrderedDict):
        with _cache_lock:
            cache[chunk] = value
            while len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
    return value
