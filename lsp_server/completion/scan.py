"""A light lexical scan of code: brackets and line comments outside string literals.

Post-processing tracks open brackets and finds trailing comments, and the trigger asks
whether the cursor sits in a comment or a string. Both need the same lexical view of a
line without a grammar: quotes open and close string literals (a backslash escapes the
next character), and a line-comment marker outside a string hides the rest of its line.
:class:`CodeScan` is that view, in one place. It is deliberately simple (no block
comments, no raw strings): the syntax tree, when there is one, has the last word.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

QUOTES = "\"'`"
"""Characters that open (and close) a string literal."""
BRACKETS = "()[]{}"
OPENERS = {"(": ")", "[": "]", "{": "}"}
"""Opening bracket -> its closer."""
CLOSERS = {")": "(", "]": "[", "}": "{"}
"""Closing bracket -> its opener."""


@functools.cache
def _token_pattern(markers: tuple[str, ...], quotes: str) -> re.Pattern[str]:
    """The characters the scan acts on: escapes, quotes, brackets, newlines, markers."""
    parts = [r"\\", f"[{re.escape(quotes)}]", r"[()\[\]{}]", "\n", *(re.escape(m) for m in markers)]
    return re.compile("|".join(parts))


class CodeScan:
    """Iterate ``(offset, token)`` over the brackets and line-comment markers of ``text``
    that stand outside string literals.

    A string ends at its closing quote or at the end of its line (a backtick string runs
    on). After a comment marker the scan resumes at the end of its line. Only the
    characters that matter are visited (a regex finds them), which keeps this fast on the
    4,000-char windows post-processing scans for every completion.

    ``quotes`` are the characters that open strings (a language whose ``'`` starts a
    lifetime or a quoted form leaves it out). ``is_comment(text, offset)``, when given,
    can reject a marker at ``offset`` (it is then neither yielded nor hides anything).
    After iterating, :attr:`open_quote` is the quote of a string still open at the end.
    """

    def __init__(
        self,
        text: str,
        markers: tuple[str, ...],
        *,
        quotes: str = QUOTES,
        is_comment: Callable[[str, int], bool] | None = None,
    ) -> None:
        """Scan ``text`` with the language's line-comment ``markers``."""
        self._text = text
        self._markers = markers
        self._quotes = quotes
        self._is_comment = is_comment
        self.open_quote: str | None = None
        """The quote of a string literal still open where the scan stopped, else None."""

    def __iter__(self) -> Iterator[tuple[int, str]]:
        """Yield brackets and comment markers outside strings, in order."""
        text = self._text
        quote: str | None = None
        skip_to = 0
        for match in _token_pattern(self._markers, self._quotes).finditer(text):
            i = match.start()
            if i < skip_to:
                continue
            tok = match.group()
            if quote is not None:
                if tok == "\\":
                    skip_to = i + 2  # the escaped character is part of the string
                elif tok == quote or (tok == "\n" and quote != "`"):
                    quote = None
            elif tok in self._quotes:
                quote = tok
            elif tok in BRACKETS:
                yield i, tok
            elif tok not in ("\\", "\n"):
                if self._is_comment is not None and not self._is_comment(text, i):
                    continue
                yield i, tok
                # A line comment: resume at the end of its line.
                end = text.find("\n", i)
                if end < 0:
                    break
                skip_to = end
        self.open_quote = quote


def unclosed_openers(document: str, open_brackets: list[str]) -> tuple[str, ...]:
    """Openers ``document`` has more of than closers, less those in ``open_brackets``.

    A plain count over the whole text (C speed, strings and comments included): a
    bracket inside a string can make it one off, and the re-parse check then has the last
    word, since a closer the document does not need adds a syntax error.
    """
    extra: list[str] = []
    for opener, closer in OPENERS.items():
        missing = document.count(opener) - document.count(closer) - open_brackets.count(opener)
        extra.extend(opener for _ in range(max(0, missing)))
    return tuple(extra)
