"""Identifiers that say what a piece of code is about: the words similarity and need compare.

Keywords and the commonest type names of the supported languages are left out (every
file has them), and so are one-letter names.
"""

from __future__ import annotations

import re

IDENT2 = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]+")
"""Identifiers of two characters or more (one-letter names say nothing about a snippet)."""
ATTR = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?:\.|::|->)\s*([A-Za-z_][A-Za-z0-9_]*)")
"""``base.attr`` (also ``base::attr`` and ``base->attr``): a member used through its owner."""

STOPWORDS = frozenset(
    [
        "self",
        "this",
        "cls",
        "def",
        "class",
        "return",
        "if",
        "else",
        "elif",
        "for",
        "while",
        "in",
        "is",
        "not",
        "and",
        "or",
        "None",
        "True",
        "False",
        "import",
        "from",
        "as",
        "pass",
        "let",
        "const",
        "var",
        "function",
        "new",
        "null",
        "undefined",
        "true",
        "false",
        "int",
        "str",
        "void",
        "public",
        "private",
        "protected",
        "static",
        "final",
        "fn",
        "pub",
        "use",
        "mod",
        "struct",
        "impl",
        "match",
        "type",
        "func",
        "go",
        "package",
        "include",
        "define",
        "auto",
        "char",
        "float",
        "double",
        "bool",
        "long",
        "unsigned",
        "signed",
        "try",
        "except",
        "catch",
        "finally",
        "raise",
        "throw",
        "throws",
        "with",
        "yield",
        "await",
        "async",
        "lambda",
        "break",
        "continue",
    ]
)


def identifiers(text: str) -> set[str]:
    """The identifiers of ``text`` that are not stop-words (see :data:`STOPWORDS`)."""
    found = set(IDENT2.findall(text))
    found -= STOPWORDS
    return found
