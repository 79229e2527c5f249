"""Build the local FIM window (prefix / suffix) around the cursor within a token budget.

The budget is measured in the model's own tokens: ``count_tokens`` is the backend's
real tokenizer, called once per whole line and cached, never per character. The
budget is split ~75% prefix / 25% suffix (what one side does not use goes to the
other), windows are cut at line boundaries and, when a syntax tree is at hand, moved
to a boundary between statements/definitions. When the prefix window has to drop the
start of scopes the cursor sits in, their header lines (class / function signatures)
are kept in front of it so the model still knows where it is.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Callable

from tree_sitter import Node, Point, Tree

from lsp_server.completion.trigger import BLOCK_CONTAINERS
from lsp_server.core import FimContext, Shape
from lsp_server.syntax import byte_offset, node_at
from lsp_server.tokens import cached_count, token_cache

logger = logging.getLogger(__name__)

__all__ = ["PREFIX_SHARE", "build_context", "indent_columns", "indent_scope_starts"]

PREFIX_SHARE = 0.75
"""Share of the token budget given to the prefix; the suffix gets the rest."""

_MAX_BOUNDARY_SHIFT = 40
"""How many lines a window edge may move to reach a statement boundary."""
_MAX_HEADER_LINES = 6
"""Most lines kept of one enclosing scope's header (long signatures are cut)."""
_MAX_HEADER_SCAN = 5000
"""Most lines scanned upwards for enclosing scopes without a syntax tree."""

# Definition-like node types (by substring): their first lines are scope headers.
_SCOPE_KINDS = (
    "function",
    "method",
    "class",
    "impl",
    "struct",
    "interface",
    "trait",
    "module",
    "namespace",
    "enum",
    "constructor",
    "object_declaration",
    "singleton",
    "def",
    "lambda",
    "closure",
)
# Containers whose children are statements or definitions: the trigger's block-like
# containers, plus the compound statements whose bodies hold statements directly.
_STATEMENT_CONTAINERS = (
    *BLOCK_CONTAINERS,
    "if_statement",
    "while_statement",
    "for_statement",
    "case",
)
# Containers by substring that hold expressions even when their names say "body"/"case".
_EXPRESSION_CONTAINERS = ("argument", "parameter", "string", "comment", "expression", "literal")

_last_lines: list[_Lines] = []
"""The most recent line index (see :meth:`_Lines.of`)."""


class _Lines:
    """Line lookup over the document text without splitting all of it."""

    __slots__ = ("starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        # split + map + accumulate all run in C: no Python-level loop per line.
        lengths = map((1).__add__, map(len, text.split("\n")))
        starts = list(itertools.accumulate(lengths, initial=0))
        starts.pop()
        self.starts = starts

    @classmethod
    def of(cls, text: str) -> _Lines:
        """The line index of ``text``, reused while requests come for the same text."""
        last = _last_lines
        if last and last[0].text is text:
            return last[0]
        lines = cls(text)
        # One entry only: the document being typed in; it holds one text alive at most.
        _last_lines[:] = [lines]
        return lines

    def __len__(self) -> int:
        return len(self.starts)

    def start(self, row: int) -> int:
        """Offset of the first character of ``row``."""
        return self.starts[row]

    def end(self, row: int) -> int:
        """Offset just past ``row`` including its newline."""
        return self.starts[row + 1] if row + 1 < len(self.starts) else len(self.text)

    def line(self, row: int) -> str:
        """The text of ``row`` including its newline."""
        return self.text[self.starts[row] : self.end(row)]

    def row_of(self, offset: int) -> int:
        """The row holding ``offset``."""
        return bisect.bisect_right(self.starts, offset) - 1


def _leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _is_blank(line: str) -> bool:
    return not line.strip()


def _fit(chunk: str, budget: int, count: Callable[[str], int], *, tail: bool) -> str:
    """The longest tail (or head) of ``chunk`` that fits ``budget`` tokens (for over-long
    lines)."""

    def part(keep: int) -> str:
        return chunk[len(chunk) - keep :] if tail else chunk[:keep]

    if budget <= 0:
        return ""
    cost = count(chunk)
    keep = len(chunk)
    # A few proportional shrink steps are enough; each step is one tokenizer call.
    for _ in range(8):
        if cost <= budget:
            return part(keep)
        keep = int(keep * budget / max(cost, 1) * 0.9)
        if keep <= 0:
            return ""
        cost = count(part(keep))
    return part(keep) if cost <= budget else ""


def build_context(
    text: str,
    offset: int,
    *,
    language: str | None,
    path: str | None,
    shape: Shape,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    tree: Tree | None = None,
) -> FimContext:
    """Cut the prefix/suffix window around ``offset`` to fit ``budget_tokens``.

    ``tree`` is the syntax tree of ``text`` (when a grammar is known); it is used to
    move the window edges to statement boundaries and to find enclosing scope headers.
    """
    offset = max(0, min(offset, len(text)))
    lines = _Lines.of(text)
    row = lines.row_of(offset)
    line_start = lines.start(row)
    line_end = lines.end(row)
    before = text[line_start:offset]
    after = text[offset:line_end]
    indent = _leading_ws(lines.line(row).rstrip("\r\n"))

    cache = token_cache(count_tokens)

    def count(chunk: str) -> int:
        return cached_count(count_tokens, chunk, cache) if chunk else 0

    budget = max(0, budget_tokens)
    prefix_budget = int(budget * PREFIX_SHARE)
    suffix_budget = budget - prefix_budget

    # The cursor line itself is always in; only an over-long line is cut inside.
    before_cost = count(before)
    if before_cost > prefix_budget:
        before = _fit(before, prefix_budget, count, tail=True)
        before_cost = count(before)
    after_cost = count(after)
    if after_cost > suffix_budget + max(0, prefix_budget - before_cost):
        after = _fit(after, suffix_budget + max(0, prefix_budget - before_cost), count, tail=False)
        after_cost = count(after)

    line_cost: dict[int, int] = {}

    def cost_of(r: int) -> int:
        cached = line_cost.get(r)
        if cached is None:
            cached = count(lines.line(r))
            line_cost[r] = cached
        return cached

    # Prefix rows, walking up from the cursor line within the prefix share.
    used = before_cost
    top = row  # first full row of the prefix window
    while top > 0 and used + cost_of(top - 1) <= prefix_budget:
        top -= 1
        used += cost_of(top)

    # Suffix rows get their share plus what the prefix left over.
    suffix_limit = suffix_budget + (prefix_budget - used)
    suffix_used = after_cost
    bottom = row  # last row of the suffix window
    last_row = len(lines) - 1
    while bottom < last_row and suffix_used + cost_of(bottom + 1) <= suffix_limit:
        bottom += 1
        suffix_used += cost_of(bottom)

    # Give what the suffix left over back to the prefix.
    total_limit = budget
    while top > 0 and used + suffix_used + cost_of(top - 1) <= total_limit:
        top -= 1
        used += cost_of(top)

    boundary = _BoundaryFinder(lines, tree, text)

    # Keep the headers of scopes whose beginning falls off the window.
    scopes = _enclosing_scopes(lines, row, offset, tree, text, indent) if top > 0 else []
    headers = _headers_above(scopes, top)
    while top < row and headers:
        header_cost = sum(cost_of(r) for r in headers)
        if used + suffix_used + header_cost <= total_limit:
            break
        used -= cost_of(top)
        top += 1
        headers = _headers_above(scopes, top)
    if headers and used + suffix_used + sum(cost_of(r) for r in headers) > total_limit:
        headers = []

    # Prefer starting the window at a statement boundary.
    if top > 0:
        shift = min(_MAX_BOUNDARY_SHIFT, (row - top) // 4)
        new_top = boundary.first_boundary(top, min(row, top + shift))
        if new_top is not None and new_top != top:
            top = new_top
            headers = _headers_above(scopes, top)
            header_cost = sum(cost_of(r) for r in headers)
            window_cost = sum(cost_of(r) for r in range(top, row)) + before_cost
            if window_cost + header_cost + suffix_used > total_limit:
                headers = []

    # Prefer ending the window just before a statement boundary.
    if bottom < last_row and bottom > row:
        shift = min(_MAX_BOUNDARY_SHIFT, (bottom - row) // 4)
        new_bottom = boundary.last_end(max(row + 1, bottom - shift), bottom)
        if new_bottom is not None:
            bottom = new_bottom

    header_text = "".join(lines.line(r) for r in headers)
    prefix = header_text + text[lines.start(top) : line_start] + before
    suffix = after + (text[line_end : lines.end(bottom)] if bottom > row else "")
    return FimContext(
        prefix=prefix,
        suffix=suffix,
        shape=shape,
        language=language,
        path=path,
        indent=indent,
        source=text,
        source_offset=offset,
    )


def _headers_above(scopes: list[tuple[int, int]], top: int) -> list[int]:
    """Header rows (in order) of the scopes that start above the window's first row."""
    rows: list[int] = []
    for first, last in scopes:
        if first >= top:
            continue
        end = min(last, top - 1, first + _MAX_HEADER_LINES - 1)
        rows.extend(r for r in range(first, end + 1) if not rows or r > rows[-1])
    return rows


def _enclosing_scopes(
    lines: _Lines, row: int, offset: int, tree: Tree | None, text: str, indent: str
) -> list[tuple[int, int]]:
    """(first, last) header rows of the scopes around the cursor, outermost first."""
    if tree is not None:
        return _tree_scopes(tree, row, byte_offset(text, offset))
    return _indent_scopes(lines, row, indent_columns(indent))


def _tree_scopes(tree: Tree, row: int, byte: int) -> list[tuple[int, int]]:
    scopes: list[tuple[int, int]] = []
    node: Node | None = node_at(tree, byte)
    while node is not None:
        kind = node.type
        start_row = node.start_point.row
        if (
            start_row < row
            and node.end_byte >= byte
            and any(part in kind for part in _SCOPE_KINDS)
            and node.parent is not None
        ):
            scopes.append((start_row, _header_last_row(node)))
        node = node.parent
    scopes.reverse()
    # Nested nodes of one definition (e.g. a class body inside a class) share rows.
    merged: list[tuple[int, int]] = []
    for first, last in scopes:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _header_last_row(node: Node) -> int:
    """Last row of a definition's header: the row before its body, or the row of ``{``."""
    body = node.child_by_field_name("body")
    if body is None:
        for child in reversed(node.children):
            if any(part in child.type for part in ("block", "body", "declaration_list")):
                body = child
                break
    if body is None:
        return node.start_point.row
    body_row = body.start_point.row
    if body_row <= node.start_point.row:
        return node.start_point.row
    first = body.children[0] if body.children else None
    if first is not None and not first.is_named and first.start_point.row == body_row:
        # The body opens with a delimiter (`{`, `do`, `:`) on its own row: part of the header.
        return body_row
    return body_row - 1


def _indent_scopes(lines: _Lines, row: int, width: int) -> list[tuple[int, int]]:
    """Scope headers by indentation: each non-blank line above that is less indented."""
    starts = indent_scope_starts(lines.text, lines.start(row), width)
    return [(r, r) for r in map(lines.row_of, starts)]


def indent_columns(line: str) -> int:
    """The indentation of ``line`` in columns (spaces and tabs, a tab stop every 4)."""
    return len(_leading_ws(line).expandtabs(4))


def indent_scope_starts(text: str, pos: int, width: int) -> list[int]:
    """Start offsets of the lines above ``pos`` that open the scopes around a line there.

    Indentation-based, so it needs no syntax tree: walking up from the line that starts at
    ``pos`` (at most ``_MAX_HEADER_SCAN`` lines), each non-blank line less indented than
    ``width`` columns and than the last one found, and not starting with a closer, is the
    header of one more enclosing scope. Outermost first.
    """
    found: list[int] = []
    scanned = 0
    while pos > 0 and width > 0 and scanned < _MAX_HEADER_SCAN:
        start = text.rfind("\n", 0, pos - 1) + 1
        line = text[start:pos]
        pos = start
        scanned += 1
        if _is_blank(line):
            continue
        w = indent_columns(line)
        if w < width and line.lstrip()[:1] not in ")]}":
            found.append(start)
            width = w
    found.reverse()
    return found


class _BoundaryFinder:
    """Finds rows that begin a statement/definition (tree) or a paragraph (no tree)."""

    __slots__ = ("lines", "memo", "text", "tree")

    def __init__(self, lines: _Lines, tree: Tree | None, text: str) -> None:
        self.lines = lines
        self.tree = tree
        self.text = text
        self.memo: dict[int, bool] = {}

    def is_boundary(self, r: int) -> bool:
        """True when row ``r`` starts a new statement or definition."""
        found = self.memo.get(r)
        if found is None:
            found = self.memo[r] = self._is_boundary(r)
        return found

    def _is_boundary(self, r: int) -> bool:
        line = self.lines.line(r)
        if _is_blank(line):
            return False
        if self.tree is None:
            return r > 0 and _is_blank(self.lines.line(r - 1))
        column = len(_leading_ws(line))
        start = self.lines.start(r)
        segment = self.text[start : start + column]
        point = Point(r, len(segment.encode("utf-8", "surrogatepass")))
        node = self.tree.root_node.descendant_for_point_range(point, point)
        if node is None or node.start_point != point:
            return False
        while node.parent is not None and node.parent.start_point == point:
            node = node.parent
        parent = node.parent
        if parent is None or node.is_error:
            return False
        kind = parent.type
        if any(part in kind for part in _EXPRESSION_CONTAINERS):
            return False
        return parent.parent is None or any(part in kind for part in _STATEMENT_CONTAINERS)

    def _width(self, r: int) -> int:
        return len(_leading_ws(self.lines.line(r)).expandtabs(4))

    def first_boundary(self, lo: int, hi: int) -> int | None:
        """The least indented boundary row in ``lo..hi`` (inclusive; the first of equals).

        A window that opens on a definition or an outer statement reads like a file to
        the model; one that opens on a statement deep inside a block does not.
        """
        best: int | None = None
        best_width = 0
        for r in range(lo, hi + 1):
            if self.is_boundary(r):
                width = self._width(r)
                if best is None or width < best_width:
                    best, best_width = r, width
                    if width == 0:
                        break
        return best

    def last_end(self, lo: int, hi: int) -> int | None:
        """The last row in ``lo..hi`` followed by the least indented boundary, or None."""
        best: int | None = None
        best_width = 0
        for r in range(hi, lo - 1, -1):
            if r + 1 < len(self.lines) and self.is_boundary(r + 1):
                width = self._width(r + 1)
                if best is None or width < best_width:
                    best, best_width = r, width
                    if width == 0:
                        break
        return best
