"""Imported files as candidates: whole when small, else an outline of their definitions."""

from __future__ import annotations

from dataclasses import replace

from lsp_server.languages import BRACE_STUB
from lsp_server.repo.context.base import RankOptions, RepoView, Snippet
from lsp_server.repo.context.budget import MAX_CHARS_PER_TOKEN
from lsp_server.repo.context.cache import LockedLru
from lsp_server.repo.context.snippets import stub_for
from lsp_server.repo.tags import Tag, closing_line, outline


class FileCandidates:
    """Imported files' candidates, remembered by file version and budget."""

    def __init__(self, options: RankOptions) -> None:
        """An empty memo for candidates built with ``options``."""
        self._options = options
        self._built: LockedLru[tuple[str, tuple[int, int, int], int], Snippet | None]
        self._built = LockedLru(1024)

    def clear(self) -> None:
        """Forget every candidate built."""
        self._built.clear()

    def candidate(
        self, index: RepoView, display: str, order: int, budget_chars: int
    ) -> Snippet | None:
        """``display`` whole (when small) or its outline, scored by its import ``order``."""
        opts = self._options
        version = index.file_version(display)
        if version is not None:
            found = self._built.get_or_compute(
                (display, version, budget_chars),
                lambda: build_file_candidate(index, display, budget_chars, opts),
            )
        else:
            lines = index.lines(display)
            found = build_file_candidate(index, display, budget_chars, opts, lines)
        if found is None:
            return None
        factor = 1.0 if found.whole else 0.5
        return replace(found, score=factor / (1 + order))


def build_file_candidate(
    index: RepoView,
    display: str,
    budget_chars: int,
    opts: RankOptions,
    lines: list[str] | None = None,
) -> Snippet | None:
    """``display`` whole when it is small next to the budget, else its outline (or None)."""
    lines = lines if lines is not None else index.lines(display)
    if lines is None:
        return None
    size = sum(map(len, lines)) + len(lines)
    score = 1.0
    if size <= budget_chars * opts.small_file_share:
        return Snippet(display, 0, len(lines) - 1, "\n".join(lines).rstrip("\n"), 1, score, True)
    info = index.entry_tags(display)
    if info is None or not info.tags:
        return None
    shown: list[Tag] = []
    last_row = -1
    for tag in info.tags:
        if (tag.parent is not None and tag.kind != "method") or tag.line <= last_row:
            continue
        if tag.kind == "constant" and (tag.end > tag.line or tag.name.startswith("__")):
            continue  # a long literal or a dunder shows nothing useful in an outline
        shown.append(tag)
        last_row = min(tag.header_end, tag.line + 1)
    stub = stub_for(display)
    pieces = []
    # An outline longer than the whole budget can never be chosen: stop building it.
    most = budget_chars // 3 * MAX_CHARS_PER_TOKEN
    total = 0
    for i, tag in enumerate(shown):
        # A class whose methods follow in the outline has a body already.
        after = shown[i + 1] if i + 1 < len(shown) else None  # ``shown`` is in line order
        nested = after is not None and after.line > tag.header_end and after.end <= tag.end
        text = outline(lines, (tag,), max_header_lines=2, stub="" if nested else stub)
        if text:
            pieces.append((tag.line, tag.header_end, text))
            total += len(text) + 1
            if total > most:
                return None
        closer = closing_line(lines, tag.end) if nested and stub == BRACE_STUB else None
        if closer is not None:
            pieces.append((tag.end, tag.end, closer))  # the class's own ``}``
    if not pieces:
        return None
    text = "\n".join(piece[2] for piece in pieces)
    return Snippet(display, 0, len(lines) - 1, text, 1, score * 0.5, False, tuple(pieces))
