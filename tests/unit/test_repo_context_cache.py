"""Tests for the one cache type of repository context."""

from __future__ import annotations

from lsp_server.repo.context.cache import LockedLru


def test_bounded_least_recently_used_first() -> None:
    cache: LockedLru[str, int] = LockedLru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now the most recently used
    cache.put("c", 3)  # evicts "b", the least recently used
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_get_or_compute_computes_once_and_keeps_none() -> None:
    cache: LockedLru[str, int | None] = LockedLru(4)
    calls: list[str] = []

    def compute() -> int | None:
        calls.append("x")
        return None

    assert cache.get_or_compute("x", compute) is None
    assert cache.get_or_compute("x", compute) is None
    assert calls == ["x"]  # a None result is remembered too


def test_clear_inside_compute_still_returns_the_value() -> None:
    cache: LockedLru[str, int] = LockedLru(4)

    def compute() -> int:
        cache.clear()  # e.g. the prewarm thread clearing meanwhile (no lock held here)
        return 7

    assert cache.get_or_compute("k", compute) == 7
    assert cache.get("k") == 7
    cache.clear()
    assert len(cache) == 0 and cache.get("k") is None
