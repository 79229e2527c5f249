"""The server's own store of open documents.

Keeps each open document's text, version and language, applies incremental LSP changes
with exact LSP line rules (see :mod:`lsp_server.positions`), and keeps a tree-sitter parse
of it up to date by editing the old tree rather than re-parsing from scratch.
The pipeline only ever sees :class:`~lsp_server.core.DocumentSnapshot` copies.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload
from urllib.parse import unquote, urlparse

from lsp_server.core import DocumentSnapshot
from lsp_server.languages import language_for
from lsp_server.positions import UTF16, line_starts, offset_at
from lsp_server.syntax import ParsedDocument

logger = logging.getLogger(__name__)

MAX_PARSE_CHARS = 300_000
"""Documents larger than this keep no syntax tree: completions use the text-only rules.

tree-sitter holds the GIL while it parses, so a parse anywhere stalls the event loop; an
incremental reparse of a 1 MB file costs tens of milliseconds per keystroke (and an edit
that opens a string or a bracket costs a full parse, 0.4 s and more), against a few at
this size (see ``bench/bigfile.py``)."""


def uri_to_path(uri: str) -> str | None:
    """Filesystem path of a ``file:`` URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path)
    if "\x00" in path or not path.startswith("/"):
        return None  # no file can have this name: the document is kept, never looked up
    return path


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (which JSON can carry but UTF-8 cannot) made
    U+FFFD: one code point and one UTF-16 unit each, so every position stays the same."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


@dataclass(slots=True)
class Document:
    """One open document (mutable; owned by the store)."""

    uri: str
    text: str
    language_id: str
    version: int | None
    path: str | None
    language: str | None
    parsed: ParsedDocument | None = None
    _starts: LineIndex | None = field(default=None, repr=False)

    def starts(self) -> LineIndex:
        """Line start offsets, computed once and then updated edit by edit."""
        if self._starts is None:
            self._starts = LineIndex(line_starts(self.text))
        return self._starts

    def snapshot(self) -> DocumentSnapshot:
        """An immutable copy for the pipeline."""
        return DocumentSnapshot(self.uri, self.text, self.language_id, self.version, self.path)


class LineIndex(Sequence[int]):
    """Line start offsets of a document, kept up to date edit by edit.

    Typing on one line shifts every later line start; rather than rewriting a list of
    hundreds of thousands of offsets per keystroke, the shift is kept pending as
    ``(pivot, delta)`` — starts from line ``pivot`` on are ``delta`` further — and only
    written out when an edit touches another line or adds or removes a line break.
    """

    __slots__ = ("_delta", "_pivot", "_starts")

    def __init__(self, starts: list[int]) -> None:
        self._starts = starts
        self._pivot = len(starts)
        self._delta = 0

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> list[int]: ...
    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, slice):
            return self.materialize()[index]
        if index < 0:
            index += len(self._starts)
        value = self._starts[index]
        return value + self._delta if index >= self._pivot else value

    def materialize(self) -> list[int]:
        """The plain list, with any pending shift written out."""
        if self._delta:
            pivot, delta, starts = self._pivot, self._delta, self._starts
            self._starts = starts[:pivot] + [s + delta for s in starts[pivot:]]
        self._pivot, self._delta = len(self._starts), 0
        return self._starts

    def replaced(self, old_text: str, start: int, end: int, new_text: str) -> LineIndex | None:
        """The index after ``old_text[start:end]`` became ``new_text`` (self, updated), or
        None (recompute lazily) when a carriage return is near the edit, where CRLF pairs
        may join or split."""
        if "\r" in new_text or "\r" in old_text[max(0, start - 1) : end + 1]:
            return None
        delta = len(new_text) - (end - start)
        line = bisect.bisect_right(self, start)  # lines [0, line) start at or before start
        if "\n" not in new_text and "\n" not in old_text[start:end]:
            if self._delta and self._pivot != line:
                self.materialize()
            if delta:
                self._pivot, self._delta = line, self._delta + delta
            return self
        starts = self.materialize()
        last = bisect.bisect_right(starts, end)  # starts[last:] come after the removed text
        added = [start + m.end() for m in _NEWLINE.finditer(new_text)]
        tail = starts[last:]
        self._starts = starts[:line] + added + ([s + delta for s in tail] if delta else tail)
        self._pivot = len(self._starts)
        return self


_NEWLINE = re.compile("\n")


class DocumentStore:
    """Open documents by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def get(self, uri: str) -> Document | None:
        """The open document at ``uri``, or None if it is not open."""
        return self._docs.get(uri)

    def open(self, uri: str, text: str, language_id: str, version: int | None) -> Document:
        """Track a newly opened document and parse it."""
        path = uri_to_path(uri)
        language = language_for(language_id, path)
        doc = Document(uri, clean_text(text), language_id, version, path, language)
        self._docs[uri] = doc
        self._reparse(doc)
        return doc

    def all(self) -> list[Document]:
        """Every open document."""
        return list(self._docs.values())

    def close(self, uri: str) -> None:
        """Forget a closed document."""
        self._docs.pop(uri, None)

    def change(
        self,
        uri: str,
        version: int | None,
        changes: list[tuple[tuple[int, int, int, int] | None, str]],
        encoding: str = UTF16,
    ) -> Document | None:
        """Apply LSP changes: ``((start_line, start_char, end_line, end_char) | None, text)``.

        A None range replaces the whole text. Returns the document, or None when it isn't open.
        """
        doc = self._docs.get(uri)
        if doc is None:
            logger.warning("didChange for a document that is not open: %s", uri)
            return None
        for rng, raw_text in changes:
            new_text = clean_text(raw_text)
            if rng is None:
                doc.text = new_text
                doc._starts = None
                self._reparse(doc)
                continue
            starts = doc.starts()
            start = offset_at(doc.text, rng[0], rng[1], encoding, starts)
            end = offset_at(doc.text, rng[2], rng[3], encoding, starts)
            if end < start:
                start, end = end, start
            old_text = doc.text
            doc.text = old_text[:start] + new_text + old_text[end:]
            doc._starts = starts.replaced(old_text, start, end, new_text)
            if doc.parsed is not None:
                doc.parsed.apply_edit(start, end, new_text)
                if len(doc.text) > MAX_PARSE_CHARS:
                    doc.parsed = None
        if doc.parsed is None and doc.language is not None and len(doc.text) <= MAX_PARSE_CHARS:
            # It was too large to parse and has shrunk back: parse it again.
            self._reparse(doc)
        doc.version = version
        return doc

    def _reparse(self, doc: Document) -> None:
        if doc.language is None or len(doc.text) > MAX_PARSE_CHARS:
            doc.parsed = None
            return
        doc.parsed = ParsedDocument(doc.text, doc.language)
