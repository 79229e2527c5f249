"""Scores for the quality benchmark: exact match, edit similarity, "still parses".

Pure functions, unit-tested in ``tests/unit/test_bench_quality.py``.
"""

from __future__ import annotations

import re

from lsp_server.syntax import count_errors, parse

__all__ = [
    "SPECIAL_TOKEN",
    "apply_completion",
    "bare_window",
    "edit_similarity",
    "exact_match",
    "first_line",
    "leaks_special_token",
    "parses_ok",
    "percentile",
]

SPECIAL_TOKEN = re.compile(
    r"<\|[A-Za-z_][\w.:\-▁]{0,62}\|>|<｜[^｜\s]{1,64}｜>|<(?:fim[_-]\w+|file_sep|repo_name|EOT|PRE|SUF|MID)>"
)
"""Text that looks like a control token of any known FIM family."""


def first_line(text: str) -> str:
    """The first line of ``text`` (what a single-line hole is scored on)."""
    return text.split("\n", 1)[0].rstrip("\r")


def exact_match(got: str, expected: str) -> bool:
    """True when ``got`` equals ``expected`` ignoring surrounding whitespace."""
    return got.strip() == expected.strip()


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(got: str, expected: str) -> float:
    """``1 - levenshtein / max(len)`` of the two texts (1.0 = identical, both empty = 1.0)."""
    longest = max(len(got), len(expected))
    if longest == 0:
        return 1.0
    return 1.0 - _levenshtein(got, expected) / longest


def leaks_special_token(text: str) -> bool:
    """True when ``text`` holds something that looks like a FIM control token."""
    return SPECIAL_TOKEN.search(text) is not None


def apply_completion(text: str, offset: int, insert: str, replace_chars: int = 0) -> str:
    """The document after inserting ``insert`` at ``offset`` over ``replace_chars`` chars."""
    return text[:offset] + insert + text[offset + replace_chars :]


def parses_ok(document: str, language: str, baseline_errors: int = 0) -> bool:
    """True when ``document`` has no more ERROR/MISSING nodes than ``baseline_errors``."""
    tree = parse(document, language)
    if tree is None:
        return True
    return count_errors(tree.root_node) <= baseline_errors


def bare_window(text: str, offset: int, prefix_chars: int, suffix_chars: int) -> tuple[str, str]:
    """The obvious FIM window: the last ``prefix_chars`` before the cursor from a line start,
    the first ``suffix_chars`` after it up to a line end."""
    start = max(0, offset - prefix_chars)
    if start > 0:
        nl = text.find("\n", start, offset)
        start = nl + 1 if nl >= 0 else start
    end = min(len(text), offset + suffix_chars)
    if end < len(text):
        nl = text.rfind("\n", offset, end)
        end = nl if nl >= 0 else end
    return text[start:offset], text[offset:end]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
