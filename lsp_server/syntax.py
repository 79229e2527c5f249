"""Tree-sitter parsing: grammars, per-thread parsers and incrementally parsed documents.

Loads the grammars of ``tree-sitter-language-pack`` (named as in
:mod:`lsp_server.languages`, which maps documents to them), hands out cached parsers,
and keeps one syntax tree per open document up to date incrementally (``tree.edit`` +
reparse with the old tree) as ``didChange`` edits arrive. This is the ground floor
every syntax-aware stage stands on: the workspace index, the trigger, the context
builder and post-processing.

Offsets everywhere else in coder-lsp are indices into the Python ``str``; tree-sitter
works in UTF-8 bytes and (row, byte-column) points. The helpers here do that
conversion, with an ASCII fast path since most source files are pure ASCII.
"""

from __future__ import annotations

import functools
import logging
import threading
import typing

import tree_sitter_language_pack as tslp
from tree_sitter import Language, Node, Parser, Point, Tree

from lsp_server.languages import KNOWN_GRAMMARS

logger = logging.getLogger(__name__)

__all__ = [
    "ParsedDocument",
    "byte_offset",
    "byte_to_offset",
    "count_errors",
    "get_language",
    "get_parser",
    "node_at",
    "parse",
    "point_at",
]


@functools.cache
def get_language(language: str) -> Language | None:
    """The tree-sitter ``Language`` for a grammar name (cached), or None if unavailable."""
    if language not in KNOWN_GRAMMARS:
        return None
    try:
        return tslp.get_language(typing.cast("tslp.SupportedLanguage", language))
    except (LookupError, OSError, ValueError) as err:
        # A grammar missing from this platform's wheel is not an error for the user:
        # the syntax-aware stages fall back to indentation and bracket rules.
        logger.warning("tree-sitter grammar %r could not be loaded: %s", language, err)
        return None


# Parsers hold mutable state and are not safe to share between threads; the server may
# run completion stages on worker threads, so each thread keeps its own parsers.
_local = threading.local()


def get_parser(language: str) -> Parser | None:
    """A parser for ``language``, cached per thread; None when no grammar is known."""
    cache: dict[str, Parser | None] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = {}
        _local.parsers = cache
    if language in cache:
        return cache[language]
    lang = get_language(language)
    parser = Parser(lang) if lang is not None else None
    cache[language] = parser
    return parser


def parse(text: str, language: str | None) -> Tree | None:
    """Parse ``text`` with the grammar ``language``; None when no grammar is known."""
    if not language:
        return None
    parser = get_parser(language)
    if parser is None:
        return None
    return parser.parse(text.encode("utf-8", "surrogatepass"))


def byte_offset(text: str, offset: int) -> int:
    """UTF-8 byte offset of the ``str`` index ``offset`` in ``text`` (clamped)."""
    offset = max(0, min(offset, len(text)))
    if text.isascii():
        return offset
    return len(text[:offset].encode("utf-8", "surrogatepass"))


def byte_to_offset(text: str, byte: int, data: bytes | None = None) -> int:
    """``str`` index of the UTF-8 byte offset ``byte`` in ``text`` (clamped).

    ``data`` may pass ``text`` already encoded, to save encoding it again.
    """
    if text.isascii():
        return max(0, min(byte, len(text)))
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    byte = max(0, min(byte, len(data)))
    return len(data[:byte].decode("utf-8", "ignore"))


def point_at(text: str, offset: int) -> Point:
    """Tree-sitter point (row, UTF-8 byte column) of the ``str`` index ``offset``."""
    offset = max(0, min(offset, len(text)))
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    segment = text[line_start:offset]
    column = len(segment) if segment.isascii() else len(segment.encode("utf-8", "surrogatepass"))
    return Point(row, column)


def node_at(tree: Tree, byte: int) -> Node:
    """The smallest node that contains (or touches) UTF-8 byte offset ``byte``."""
    root = tree.root_node
    node = root.descendant_for_byte_range(byte, byte)
    return node if node is not None else root


def count_errors(node: Node) -> int:
    """Number of ERROR and MISSING nodes under ``node`` (walks only subtrees with errors)."""
    if not node.has_error:
        return 0
    total = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            total += 1
        stack.extend(child for child in current.children if child.has_error or child.is_missing)
    return total


def _end_point(start: Point, inserted: str) -> Point:
    """The point reached after inserting ``inserted`` at ``start``."""
    newlines = inserted.count("\n")
    if newlines == 0:
        return Point(start.row, start.column + len(inserted.encode("utf-8", "surrogatepass")))
    tail = inserted[inserted.rfind("\n") + 1 :]
    return Point(start.row + newlines, len(tail.encode("utf-8", "surrogatepass")))


class ParsedDocument:
    """The text and syntax tree of one open document, updated incrementally.

    ``tree`` is None when no grammar is known for ``language``; the text is still
    tracked so callers can treat every document alike.
    """

    __slots__ = ("_ascii", "_data", "language", "text", "tree")

    def __init__(self, text: str, language: str | None) -> None:
        """Parse ``text`` in full with the grammar ``language`` (if any)."""
        self.text = text
        self.language = language
        self._ascii = text.isascii()
        self._data = text.encode("utf-8", "surrogatepass")
        parser = get_parser(language) if language else None
        self.tree: Tree | None = parser.parse(self._data) if parser is not None else None

    def replace_all(self, text: str) -> None:
        """Replace the whole text (a full-sync change) and parse it from scratch."""
        self.text = text
        self._ascii = text.isascii()
        self._data = text.encode("utf-8", "surrogatepass")
        parser = get_parser(self.language) if self.language else None
        self.tree = parser.parse(self._data) if parser is not None else None

    def _byte(self, offset: int) -> int:
        if self._ascii:
            return offset
        return len(self.text[:offset].encode("utf-8", "surrogatepass"))

    def apply_edit(self, start_offset: int, end_offset: int, new_text: str) -> None:
        """Replace ``text[start_offset:end_offset]`` with ``new_text`` and reparse.

        The old tree is edited with byte offsets and points and passed to the parser,
        so tree-sitter reuses every unchanged subtree instead of parsing afresh.
        """
        text = self.text
        start_offset = max(0, min(start_offset, len(text)))
        end_offset = max(start_offset, min(end_offset, len(text)))
        start_byte = self._byte(start_offset)
        removed = text[start_offset:end_offset]
        old_end_byte = start_byte + (
            len(removed) if removed.isascii() else len(removed.encode("utf-8", "surrogatepass"))
        )
        new_bytes = new_text.encode("utf-8", "surrogatepass")
        new_end_byte = start_byte + len(new_bytes)

        start_point = None
        old_end_point = None
        if self.tree is not None:
            start_point = point_at(text, start_offset)
            old_end_point = _end_point(start_point, removed)

        self.text = text[:start_offset] + new_text + text[end_offset:]
        self._ascii = self._ascii and new_text.isascii()
        self._data = self._data[:start_byte] + new_bytes + self._data[old_end_byte:]

        if self.tree is None or start_point is None or old_end_point is None:
            return
        parser = get_parser(typing.cast(str, self.language))
        if parser is None:
            return
        # Edit a copy (cheap: subtrees are shared) so a tree already handed to a
        # completion running on another thread stays consistent with its own snapshot.
        edited = self.tree.copy()
        edited.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=_end_point(start_point, new_text),
        )
        self.tree = parser.parse(self._data, edited)

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of the ``str`` index ``offset`` (clamped)."""
        return self._byte(max(0, min(offset, len(self.text))))
