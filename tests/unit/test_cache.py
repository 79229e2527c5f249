"""The completion cache: exact repeats, typed-through hits, LRU bounds."""

from __future__ import annotations

from lsp_server.completion.cache import CacheHit, CacheKey, CompletionCache
from lsp_server.core import Completion, Shape


def key(typed: str, head: str = "def f():\n", suffix: str = "\n", model: str = "m") -> CacheKey:
    return CacheKey(model, Shape.LINE, head, suffix, typed)


def test_exact_repeat() -> None:
    cache = CompletionCache()
    cache.put(key("    re"), Completion("turn x"))
    found = cache.get(key("    re"))
    assert found is not None and found.hit is CacheHit.EXACT
    assert found.completion == Completion("turn x")


def test_typed_through_answers_the_rest_and_keeps_hitting() -> None:
    cache = CompletionCache()
    cache.put(key("    "), Completion("return x + 1", replace_chars=1))
    one = cache.get(key("    r"))
    assert one is not None and one.hit is CacheHit.TYPED
    assert one.completion == Completion("eturn x + 1", replace_chars=1)
    more = cache.get(key("    return x"))
    assert more is not None and more.completion is not None
    assert more.completion.text == " + 1"


def test_typed_text_that_differs_misses() -> None:
    cache = CompletionCache()
    cache.put(key("    "), Completion("return x"))
    assert cache.get(key("    x")) is None
    assert cache.get(key("    r", head="other\n")) is None  # the window changed
    assert cache.get(key("    r", suffix="\nmore\n")) is None
    assert cache.get(key("    r", model="other")) is None


def test_a_suggestion_typed_to_its_end_asks_the_model_again() -> None:
    cache = CompletionCache()
    cache.put(key(""), Completion("ab"))
    assert cache.get(key("ab")) is None


def test_typed_through_looks_back_at_most_max_typed_characters() -> None:
    cache = CompletionCache(max_typed=3)
    cache.put(key(""), Completion("abcdef"))
    assert cache.get(key("abcd")) is None
    assert cache.get(key("abc")) is not None
    # ... and what a hit answered is remembered, so typing on keeps hitting.
    found = cache.get(key("abcd"))
    assert found is not None and found.completion == Completion("ef")


def test_empty_results_are_remembered_as_such() -> None:
    cache = CompletionCache()
    cache.put(key("x"), None)
    found = cache.get(key("x"))
    assert found is not None and found.completion is None and found.hit is CacheHit.EXACT
    assert cache.get(key("xy")) is None  # nothing to type through


def test_lru_bound_drops_the_least_recently_used() -> None:
    cache = CompletionCache(max_entries=2)
    cache.put(key("a"), Completion("1"))
    cache.put(key("b"), Completion("2"))
    assert cache.get(key("a")) is not None  # a is now the most recent
    cache.put(key("c"), Completion("3"))
    assert len(cache) == 2
    assert cache.get(key("b")) is None
    assert cache.get(key("a")) is not None and cache.get(key("c")) is not None


def test_disabled_cache_keeps_nothing() -> None:
    cache = CompletionCache(max_entries=0)
    cache.put(key("a"), Completion("1"))
    assert len(cache) == 0 and cache.get(key("a")) is None
