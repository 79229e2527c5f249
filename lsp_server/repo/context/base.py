"""What every part of repository context shares: the index it reads, its knobs, a candidate.

A candidate :class:`Snippet` is a piece of another file that may go in front of the
current one; the parts of the package produce them (definitions, imported files, usage
examples, similar chunks), :mod:`.budget` chooses among them and :mod:`.ordering` puts the
chosen ones in order and renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lsp_server.repo.imports import PathView
from lsp_server.repo.tags import FileTags


class RepoView(PathView, Protocol):
    """What snippet selection reads from the index (``WorkspaceIndex`` implements it)."""

    def refresh(self) -> None:
        """Bring open documents' tags up to date before a selection."""
        ...

    def display_path(self, path: str) -> str | None:
        """Display path of an absolute path, or None when outside the workspace."""
        ...

    def entry_tags(self, display: str) -> FileTags | None:
        """Tags of an indexed file."""
        ...

    def lines(self, display: str) -> list[str] | None:
        """Text of an indexed file as lines (an open buffer wins)."""
        ...

    def open_documents(self) -> list[str]:
        """Display paths of the open documents."""
        ...

    def file_version(self, display: str) -> tuple[int, int, int] | None:
        """A key that changes whenever the file's text changes (disk or buffer)."""
        ...

    @property
    def paths_generation(self) -> int:
        """A counter that changes whenever a file is added or removed."""
        ...


@dataclass(frozen=True, slots=True)
class RankOptions:
    """Knobs of snippet selection (the defaults are what the benchmark measured)."""

    window_before: int = 40
    """Lines above the cursor whose identifiers count as "near the cursor"."""
    window_after: int = 10
    block: int = 8
    """The window is anchored to the cursor row rounded down to this many lines."""
    body_lines: int = 6
    """Body lines shown under a definition's signature and docstring."""
    class_lines: int = 24
    """Most lines of a class shown (fields and member signatures)."""
    small_file_share: float = 0.25
    """An imported file up to this share of the budget goes in whole."""
    chunk_lines: int = 16
    max_chunks: int = 4
    min_similarity: float = 0.12
    max_similarity_files: int = 12
    max_similarity_file_chars: int = 64_000
    """Larger files are not searched for similar chunks (scanning them costs too much)."""
    repeat_threshold: float = 0.5
    """Snippets whose non-blank lines are more than this share in the current file are dropped."""
    max_examples: int = 4
    """Most usage examples (lines of other files that use a name the current file imports
    but does not use yet)."""
    examples_per_name: int = 2
    example_lines: int = 6
    """Most lines of a usage example: the statement that uses the name, whole."""


DEFAULT_OPTIONS = RankOptions()


@dataclass(frozen=True, slots=True)
class Snippet:
    """A candidate piece of another file, with the priority it is chosen by."""

    path: str
    start: int
    end: int
    text: str
    group: int
    """0 definitions, 1 imported files and usage examples, 2 similar chunks."""
    score: float
    whole: bool = False
    pieces: tuple[tuple[int, int, str], ...] = ()
    """For an outline: one (first line, last line, text) per definition header."""
    compact: str = ""
    """A definition's signature alone: chosen first so that every needed definition gets
    in, then upgraded to ``text`` while the budget lasts."""
