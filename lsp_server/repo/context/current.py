"""What the current file needs: the names used near the cursor, above it, and elsewhere.

The needs are read from a window quantised to blocks of lines plus the identifiers of
the cursor line, so typing inside a line, or moving within a block, gives the very same
needs (and so the very same repository block, which the model's KV cache keeps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lsp_server.repo.context.base import RankOptions
from lsp_server.repo.context.words import ATTR, identifiers
from lsp_server.repo.tags import ImportRef


@dataclass(frozen=True, slots=True)
class Cursor:
    """The current buffer cut into lines, the cursor's row and the window around it."""

    lines: list[str]
    row: int
    top: int
    """First row of the block-anchored window."""
    bottom: int
    """End row (exclusive) of the window."""


def cursor_at(text: str, offset: int, opts: RankOptions) -> Cursor:
    """The cursor at ``offset`` (clamped into ``text``) and its window."""
    offset = max(0, min(offset, len(text)))
    lines = text.split("\n")
    row = text.count("\n", 0, offset)
    top, bottom = window_rows(row, len(lines), opts)
    return Cursor(lines, row, top, bottom)


def window_rows(row: int, n_lines: int, opts: RankOptions) -> tuple[int, int]:
    """First row and end row (exclusive) of the block-anchored window around ``row``."""
    anchor = row - row % max(1, opts.block)
    return max(0, anchor - opts.window_before), min(
        n_lines, anchor + opts.block + opts.window_after
    )


def import_rows(lines: list[str], starts: set[int]) -> set[int]:
    """Rows of the import statements that start at ``starts``, continuation lines included
    (``from x import (`` … ``)``, ``import {`` … ``} from``, Go's ``import (`` … ``)``)."""
    rows: set[int] = set()
    for start in starts:
        depth = 0
        row = start
        while row < len(lines) and row - start < 200:
            rows.add(row)
            text = lines[row]
            depth += text.count("(") + text.count("{") - text.count(")") - text.count("}")
            if depth <= 0:
                break
            row += 1
    return rows


@dataclass(frozen=True, slots=True)
class Needs:
    """The names the code around the cursor uses, and the lines the file already has."""

    near: set[str]
    """Used in the window or on the cursor line (import statements left out)."""
    used_above: set[str]
    """Used above the cursor (its own line left out: typing on it changes nothing)."""
    attrs_near: dict[str, set[str]]
    """``base.attr`` near the cursor: the attributes used of each base."""
    attrs_any: dict[str, set[str]]
    """``base.attr`` anywhere in the file outside its imports."""
    query: set[str]
    """The window's identifiers, for the similarity search."""
    local_lines: set[str]
    """The file's non-trivial lines, stripped (snippets that repeat them are dropped)."""


def read_needs(
    cursor: Cursor,
    imports: tuple[ImportRef, ...],
    identifiers_cached: Callable[[str], frozenset[str]],
) -> Needs:
    """The needs of the code around ``cursor``; ``imports`` are the file's own imports.

    ``identifiers_cached`` is :func:`identifiers` remembered by text: the part of the file
    above the window does not change while typing, so its (large) scan is cached.
    """
    lines, row, top, bottom = cursor.lines, cursor.row, cursor.top, cursor.bottom
    window_text = "\n".join(line for i, line in enumerate(lines[top:bottom], top) if i != row)
    cursor_line = lines[row] if 0 <= row < len(lines) else ""
    local_lines = {line.strip() for line in lines if len(line.strip()) > 3}
    import_lines = import_rows(lines, {ref.line for ref in imports})
    # Identifiers used in the file (imports left out).
    outside = "\n".join(
        line for i, line in enumerate(lines) if (i < top or i >= bottom) and i not in import_lines
    )
    window_code = [
        (i, line) for i, line in enumerate(lines[top:bottom], top) if i not in import_lines
    ]
    inside = "\n".join(line for _, line in window_code)
    # Names used above the cursor. One imported but not used yet is the likeliest to be
    # typed next (used further down or not at all).
    above = "\n".join(line for i, line in enumerate(lines[:top]) if i not in import_lines)
    above_inside = "\n".join(line for i, line in window_code if i < row)
    # (The cursor line is left out: typing on it must not change the block.)
    used_above = set(identifiers_cached(above)) | identifiers(above_inside)
    body_text = outside + "\n" + inside
    # Names in import statements are not uses: an import in the window does not make
    # its names "needed near the cursor".
    near = identifiers(inside) | identifiers(cursor_line)
    attrs_near: dict[str, set[str]] = {}
    attrs_any: dict[str, set[str]] = {}
    for source, target in (
        (window_text + "\n" + cursor_line, attrs_near),
        (body_text, attrs_any),
    ):
        for base, attr in ATTR.findall(source):
            target.setdefault(base, set()).add(attr)
    # Import rows say nothing about the code to write: other files' import headers are
    # what they match, and the import resolution above covers what they name.
    query = identifiers("\n".join(line for i, line in window_code if i != row))
    return Needs(near, used_above, attrs_near, attrs_any, query, local_lines)
