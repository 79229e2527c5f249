"""Frozen records shared by every stage of the completion pipeline.

Stages never see the pygls workspace: the protocol layer turns LSP objects into these
records, the pipeline passes them from stage to stage, and the protocol layer turns the
result back into LSP types. Offsets are indices into the Python ``str`` (code points);
converting LSP positions (UTF-16 / UTF-8 / UTF-32) happens only in the protocol layer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DocumentSnapshot:
    """An immutable view of one open document at one version."""

    uri: str
    text: str
    language_id: str = ""
    version: int | None = None
    path: str | None = None
    """Filesystem path when the URI is a ``file:`` URI, else None."""


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """What to complete: a document snapshot and a cursor offset into its text."""

    document: DocumentSnapshot
    offset: int
    invoked: bool = False
    """True when the user asked explicitly (trigger kind Invoked), False when automatic."""


class Shape(enum.Enum):
    """How much to complete at the cursor."""

    NONE = "none"
    LINE = "line"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class FimContext:
    """The local window around the cursor, as it goes into a FIM prompt."""

    prefix: str
    suffix: str
    shape: Shape = Shape.BLOCK
    language: str | None = None
    """tree-sitter language name, or None when no grammar is known."""
    path: str | None = None
    indent: str = ""
    """Indentation of the cursor line (leading whitespace)."""
    source: str | None = None
    """The whole document, when known. The prompt window may carry the header lines of
    the scopes it cut off, which are not where they stand in the file; checks that
    re-parse the completion in place read the real text around ``source_offset``."""
    source_offset: int = 0
    """The cursor's offset in ``source``."""


@dataclass(frozen=True, slots=True)
class Special:
    """A special (control) token in a prompt, named by its exact vocabulary text."""

    text: str


PromptPart = str | Special


@dataclass(frozen=True, slots=True)
class Prompt:
    """A model prompt: plain text parts (tokenized as text, never as special tokens)
    interleaved with special tokens, plus text sequences that end generation."""

    parts: tuple[PromptPart, ...]
    stop: tuple[str, ...] = ()
    add_bos: bool = False

    def render(self) -> str:
        """The prompt as one string (for logs and for remote engines)."""
        return "".join(p.text if isinstance(p, Special) else p for p in self.parts)


@dataclass(frozen=True, slots=True)
class Completion:
    """A completion ready for the editor.

    ``text`` is inserted at the cursor; it replaces the ``replace_chars`` characters that
    follow the cursor on the same line (e.g. a closing bracket the editor auto-inserted).
    """

    text: str
    replace_chars: int = 0
