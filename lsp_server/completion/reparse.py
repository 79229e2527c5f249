"""The last post-processing rule: a completion must not add syntax errors.

:func:`reparse_check` parses the text around the cursor with the completion in place,
incrementally from the window's own tree, and keeps the longest candidate (the whole
completion, then cut at each line end) that adds no ERROR/MISSING node. A single line
that opens a body is judged with the shortest body that closes it
(:func:`placeholder_body`). Without a grammar the text passes unchanged.
"""

from __future__ import annotations

import logging
import re

from tree_sitter import Node, Parser, Point

from lsp_server.completion.scan import unclosed_openers
from lsp_server.completion.trigger import opens_body
from lsp_server.core import FimContext, Shape
from lsp_server.languages import spec_for
from lsp_server.syntax import get_parser

logger = logging.getLogger("lsp_server.completion.postprocess")

_REPARSE_PREFIX_LINES = 300
_REPARSE_SUFFIX_LINES = 150
"""Lines of the window re-parsed around the completion (keeps the check fast)."""
_WHOLE_REPARSE_CHARS = 400_000
"""Up to this size, a document that lacks a closer is re-parsed whole (see reparse_check)."""


def _point_after(data: bytes) -> Point:
    nl = data.rfind(b"\n")
    return Point(data.count(b"\n"), len(data) - nl - 1)


def _source_window(text: str, offset: int) -> tuple[str, str]:
    """The lines around ``offset`` the re-parse check needs.

    At most ``_REPARSE_PREFIX_LINES`` lines up to the cursor — starting at an unindented
    line when the cut falls inside the file, so the window does not open mid-block — and
    ``_REPARSE_SUFFIX_LINES`` lines after it. Walks line ends with ``rfind``/``find``
    instead of splitting the text, so the cost does not grow with the file.
    """
    offset = max(0, min(offset, len(text)))
    top = text.rfind("\n", 0, offset) + 1  # start of the cursor line
    for _ in range(_REPARSE_PREFIX_LINES - 1):
        if top == 0:
            break
        top = text.rfind("\n", 0, top - 1) + 1
    if top > 0:
        # Start at an unindented line so the window does not open mid-block.
        line_start = top
        while line_start < offset:
            line_end = text.find("\n", line_start, offset)
            if line_end < 0:
                break
            line = text[line_start:line_end]
            if line.strip() and not line[:1].isspace():
                top = line_start
                break
            line_start = line_end + 1
    bottom = offset
    for _ in range(_REPARSE_SUFFIX_LINES):
        found = text.find("\n", bottom)
        if found < 0:
            bottom = len(text)
            break
        bottom = found + 1
    else:
        bottom -= 1  # like the split-based cut: the last kept line has no newline
    return text[top:offset], text[offset:bottom]


def _error_nodes(root: Node) -> list[tuple[bool, int, int]]:
    """(is_missing, start_byte, end_byte) of every ERROR and MISSING node under ``root``."""
    found: list[tuple[bool, int, int]] = []
    if not root.has_error:
        return found
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            found.append((node.is_missing, node.start_byte, node.end_byte))
        stack.extend(c for c in node.children if c.has_error or c.is_missing)
    return found


def reparse_check(text: str, replace_chars: int, ctx: FimContext) -> tuple[str, int] | None:
    """The longest candidate that adds no syntax errors, or None when none does.

    Candidates are the whole completion (with, then without replacing closers after
    the cursor), then the completion cut at each line end. Each is parsed in place
    (prefix + candidate + suffix), incrementally from the window's own tree, and passes
    when it has no more ERROR/MISSING nodes than the window without it and no more
    ERROR nodes over the inserted text than there were at the cursor before. Without
    a grammar the text passes unchanged.
    """
    parser: Parser | None = get_parser(ctx.language) if ctx.language else None
    if parser is None:
        return text, replace_chars
    if (
        ctx.source is not None
        and len(ctx.source) <= _WHOLE_REPARSE_CHARS
        and unclosed_openers(ctx.source, [])
    ):
        # The document lacks a closer: a window cut out of it may be balanced on its own
        # (its first lines inside the block whose closer is missing), and the closer the
        # user is about to type would then look like an error. Judge in the whole file.
        prefix, suffix = ctx.source[: ctx.source_offset], ctx.source[ctx.source_offset :]
    elif ctx.source is not None:
        prefix, suffix = _source_window(ctx.source, ctx.source_offset)
    else:
        prefix, suffix = _source_window(ctx.prefix + ctx.suffix, len(ctx.prefix))
    crlf = "\r\n" in prefix or "\r\n" in suffix
    pre = prefix.encode("utf-8", "surrogatepass")
    at = len(pre)
    base_data = pre + suffix.encode("utf-8", "surrogatepass")
    base_tree = parser.parse(base_data)
    base_errors = _error_nodes(base_tree.root_node)
    base_at_cursor = sum(1 for missing, s, e in base_errors if not missing and s <= at <= e)
    anchor = _clean_anchor(base_tree.root_node, at, len(suffix[:replace_chars].encode()))
    start = _point_after(pre)

    lines = text.split("\n")
    candidates: list[tuple[str, int]] = [(text, replace_chars)]
    if replace_chars:
        candidates.append((text, 0))
    for k in range(len(lines) - 1, 0, -1):
        cand = "\n".join(lines[:k]).rstrip()
        if cand.strip() and cand != candidates[-1][0]:
            candidates.append((cand, 0))

    def passes(cand: str, replace: int) -> bool:
        inserted = (cand.replace("\n", "\r\n") if crlf else cand).encode("utf-8", "surrogatepass")
        removed = suffix[:replace].encode("utf-8", "surrogatepass")
        data = pre + inserted + base_data[at + len(removed) :]
        tree = base_tree.copy()
        tree.edit(
            start_byte=at,
            old_end_byte=at + len(removed),
            new_end_byte=at + len(inserted),
            start_point=start,
            old_end_point=Point(start.row, start.column + len(removed)),
            new_end_point=_point_after(pre + inserted)
            if b"\n" in inserted
            else Point(start.row, start.column + len(inserted)),
        )
        root = parser.parse(data, tree).root_node
        errors = _error_nodes(root)
        end = at + len(inserted)
        over_insert = sum(1 for missing, s, e in errors if not missing and s < end and e > at)
        if len(errors) <= len(base_errors) and over_insert <= base_at_cursor:
            return True
        # A window cut from the middle of a file often has errors of its own, and error
        # recovery may then shift when anything is inserted. Still fine when the
        # smallest error-free node around the cursor stays one error-free node over the
        # same text around the insertion: its brackets and statements are whole.
        return anchor is not None and _anchor_holds(root, anchor, len(inserted) - len(removed))

    for cand, replace in candidates:
        if passes(cand, replace):
            return cand, replace
        if ctx.shape is Shape.LINE or "\n" not in cand:
            # A single line may open a body the user goes on to write ("if (x) {",
            # "def f(a):"): judge it with a placeholder body after it. That includes a
            # block's first line alone, its last candidate — a block cut short by the
            # token limit inside its first body (``class A extends B {`` and half a
            # method) shows what a line request would have.
            body = placeholder_body(cand, ctx.language)
            if body is not None and passes(cand + body, replace):
                return cand, replace
    logger.debug("every candidate adds syntax errors (%d in the window)", len(base_errors))
    return None


def _clean_anchor(root: Node, at: int, removed: int) -> tuple[int, int, str] | None:
    """(start, end, type) of the smallest error-free node strictly around byte ``at``.

    None when every node around the cursor has errors, or the text a completion
    replaces runs past it.
    """
    if not root.has_error:
        return None  # the plain error count is exact then
    node: Node | None = root.descendant_for_byte_range(at, at)
    while node is not None:
        if node.start_byte < at and at + removed < node.end_byte and not node.has_error:
            return node.start_byte, node.end_byte, node.type
        node = node.parent
    return None


def _anchor_holds(root: Node, anchor: tuple[int, int, str], delta: int) -> bool:
    """True when ``root`` has an error-free node over the anchor's text shifted by ``delta``."""
    start, end, _kind = anchor
    new_end = end + delta
    node: Node | None = root.descendant_for_byte_range(start, new_end)
    while node is not None and node.start_byte == start:
        # The kind may change: in a window cut mid-file, `{ }` alone reads as an object
        # literal, and with statements in it as the block it really is.
        if node.end_byte == new_end and not node.has_error:
            return True
        if node.end_byte > new_end:
            break
        node = node.parent
    return False


_PAREN_HEADER = re.compile(
    r"^\}?\s*(?:else\s+)?(?:if|while|for|foreach|switch)\s*\(.*\)\s*$|^\}?\s*else\s*$"
)


def placeholder_body(line_text: str, language: str | None) -> str | None:
    """The shortest text that closes the body ``line_text``'s last line opens, or None.

    ``{`` gets ``}``, a Python header ``:`` gets `` pass``, a C-family ``if (…)`` without
    a brace gets an empty statement, and ``then``/``do``/``def`` lines of the ``end``
    languages get ``end``. Only used to judge whether a one-line completion is sound.
    """
    last = line_text.rstrip().rsplit("\n", 1)[-1].strip()
    if not last:
        return None
    if last.endswith("{"):
        return "}"
    spec = spec_for(language)
    blocks = spec.blocks if spec is not None else "braces"
    if blocks == "indent":
        return " pass" if last.endswith(":") else None
    if blocks == "end":
        return "\nend" if opens_body(last, language) else None
    if blocks == "shell":
        if re.search(r"\bthen$", last):
            return " :; fi"
        if re.search(r"\bdo$", last):
            return " :; done"
        return None
    if (spec is None or spec.empty_statement) and _PAREN_HEADER.match(last):
        return " ;"
    return None
