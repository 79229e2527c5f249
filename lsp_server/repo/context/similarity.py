"""Chunks of other files similar to the cursor window (Jaccard over identifiers).

Searched: imported files, open documents, then files of the current file's folder.
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass

from lsp_server.repo.context.base import RankOptions, RepoView, Snippet
from lsp_server.repo.context.cache import LockedLru
from lsp_server.repo.context.words import identifiers


@dataclass(frozen=True, slots=True)
class Chunks:
    """A file's identifiers by half-chunk: chunk ``k`` is halves ``k`` and ``k + 1``.

    Chunks overlap by half; keeping the halves (each line scanned once) and the chunks'
    sizes is much cheaper than a set per chunk, and enough for Jaccard similarity.
    """

    step: int
    """Lines per half."""
    halves: tuple[frozenset[str], ...]
    sizes: tuple[int, ...]
    """Distinct identifiers of each chunk."""


def chunks_of(lines: list[str], size: int) -> Chunks:
    """``lines`` cut into halves of ``size // 2`` lines (at least one)."""
    step = max(1, size // 2)
    halves = tuple(
        frozenset(identifiers("\n".join(lines[start : start + step])))
        for start in range(0, len(lines), step)
    )
    if len(halves) < 2:
        return Chunks(step, halves, tuple(len(h) for h in halves))
    sizes = tuple(len(h) + len(n) - len(h & n) for h, n in itertools.pairwise(halves))
    return Chunks(step, halves, sizes)


def similarity_files(
    index: RepoView, current: str, imported: list[str], opts: RankOptions
) -> list[tuple[str, list[str]]]:
    """The files searched for similar chunks, with their lines: imported files, open
    documents, then the current file's folder; files too large to scan left out."""
    files: list[str] = []
    for display in [
        *imported,
        *index.open_documents(),
        *sorted(index.files_in_dir(posixpath.dirname(current))),
    ]:
        if display != current and display not in files:
            files.append(display)
        if len(files) >= opts.max_similarity_files:
            break
    out: list[tuple[str, list[str]]] = []
    for display in files:
        version = index.file_version(display)
        if version is not None and version[1] > opts.max_similarity_file_chars:
            continue  # generated or data-like: costly to scan, rarely what the cursor needs
        lines = index.lines(display)
        if lines:
            out.append((display, lines))
    return out


class Similarity:
    """The similarity search; remembers each file's chunks by its version."""

    def __init__(self, options: RankOptions) -> None:
        """An empty memo for a search with ``options``."""
        self._options = options
        self._chunks: LockedLru[tuple[str, tuple[int, int, int], int], Chunks] = LockedLru(512)

    def clear(self) -> None:
        """Forget every file's chunks."""
        self._chunks.clear()

    def chunks(self, index: RepoView, display: str, lines: list[str]) -> Chunks:
        """Chunks of one file, cached by the file's version (disk stamp or buffer edits)."""
        size = self._options.chunk_lines
        version = index.file_version(display)
        if version is None:
            return chunks_of(lines, size)
        return self._chunks.get_or_compute((display, version, size), lambda: chunks_of(lines, size))

    def similar_chunks(
        self, index: RepoView, current: str, query: set[str], imported: list[str]
    ) -> list[Snippet]:
        """The chunks most similar to ``query`` (the window's identifiers), best first."""
        opts = self._options
        if not query:
            return []
        scored: list[tuple[float, str, int, int]] = []
        size = len(query)
        for display, lines in similarity_files(index, current, imported, opts):
            chunks = self.chunks(index, display, lines)
            # Most halves share nothing with the query: test that without building a set.
            shared = [None if query.isdisjoint(half) else half for half in chunks.halves]
            for k, n in enumerate(chunks.sizes):
                a = shared[k]
                b = shared[k + 1] if k + 1 < len(shared) else None
                if a is None and b is None:
                    continue
                if a is not None and b is not None:
                    inter = len(query & a) + len(query & b) - len(query & a & b)
                else:
                    inter = len(query & (a if a is not None else b))
                score = inter / (size + n - inter)
                if score >= opts.min_similarity:
                    start = k * chunks.step
                    end = min(len(lines), start + 2 * chunks.step) - 1
                    scored.append((score, display, start, end))
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        out: list[Snippet] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        for score, display, start, end in scored:
            spans = taken.setdefault(display, [])
            if any(start <= e and end >= s for s, e in spans):
                continue
            lines = index.lines(display) or []
            spans.append((start, end))
            out.append(Snippet(display, start, end, "\n".join(lines[start : end + 1]), 2, score))
            if len(out) >= opts.max_chunks:
                break
        return out
