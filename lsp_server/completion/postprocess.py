"""Turn a model's raw output into the completion shown in the editor, or nothing.

Every rule about what is shown lives here, one small function per rule, applied in
this order by :func:`postprocess`:

1. :func:`strip_special_tokens` – cut at anything that looks like a control token;
2. :func:`keep_first_line` – a LINE completion keeps its first line only;
3. :func:`fix_indentation` – no stray leading whitespace, the file's tabs/spaces;
4. :func:`stop_at_block_end` – stop when the completion dedents below its block,
   closes more brackets than it opens, or starts a new definition after a body;
5. :func:`remove_suffix_overlap` – drop what retypes the rest of the line or the
   following lines;
6. :func:`cut_trailing_comment` – no line comment at the end when code follows the
   cursor on its line (the comment would swallow it);
7. :func:`strip_trailing_whitespace` – and never an empty/whitespace-only result;
8. :func:`balance_closers` – when only closers follow the cursor and the completion
   ends with them, replace them instead of duplicating (``replace_chars``);
9. :func:`reparse_check` – the longest candidate (whole, then cut at line ends) that
   adds no ERROR/MISSING node to the window it lands in, or None.

Work happens on ``\\n``-only text; the result uses the document's line ending again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from lsp_server.completion.reparse import placeholder_body, reparse_check
from lsp_server.completion.scan import CLOSERS, OPENERS, CodeScan, unclosed_openers
from lsp_server.core import Completion, FimContext, Shape
from lsp_server.languages import line_comment_markers

logger = logging.getLogger(__name__)

__all__ = [
    "RULES",
    "balance_closers",
    "cut_trailing_comment",
    "fix_indentation",
    "keep_first_line",
    "placeholder_body",
    "postprocess",
    "remove_suffix_overlap",
    "reparse_check",
    "stop_at_block_end",
    "strip_special_tokens",
    "strip_trailing_whitespace",
]

_SPECIAL_TOKEN = re.compile(
    r"<\|[A-Za-z_][\w.:\-▁]{0,62}\|>"  # <|fim_middle|>, <|endoftext|>, <|EOT|>
    r"|<｜[^｜\s]{1,64}｜>"  # DeepSeek's fullwidth bars: <｜fim▁end｜>
    r"|<(?:fim[_-](?:prefix|suffix|middle|pad)|file_sep|repo_name|reponame|filename|"
    r"gh_stars|EOT|PRE|SUF|MID)>"  # StarCoder and Code Llama spellings
)
_REPLACEABLE = frozenset(")]}\"'`;")
"""Characters an editor auto-inserts after the cursor that a completion may replace."""
_DEFINITION = re.compile(
    r"^(?:@\w"  # a decorator / annotation opens the next definition
    r"|(?:export\s+)?(?:default\s+)?(?:async\s+)?"
    r"(?:def|class|function|func|fn|impl|struct|enum|trait|interface|module|namespace|"
    r"template|sub|proc|local\s+function)\b"
    r"|(?:pub(?:\([^)]*\))?\s+)+(?:fn|struct|enum|trait|mod|const|static|type|impl)\b"
    r"|(?:public|private|protected|internal|static|abstract|final|override|virtual)\s)"
)
_BRACKET_SCAN_CHARS = 4000
"""How far before/after the cursor open brackets are tracked."""


@dataclass(frozen=True, slots=True)
class _Cursor:
    """What the rules need to know about the cursor's surroundings (``\\n`` text)."""

    before: str
    """Text of the cursor line before the cursor."""
    after: str
    """Text of the cursor line after the cursor (no line ending)."""
    next_lines: tuple[str, ...]
    """The next few lines of the suffix after the cursor line."""
    indent: str
    """Leading whitespace of the cursor line."""
    language: str | None
    indent_unit: str
    """The file's indentation unit: a tab, or some spaces."""
    open_brackets: tuple[str, ...] = ()
    """Brackets opened before the cursor that nothing after it closes (innermost last):
    the completion may close these."""
    unclosed: tuple[str, ...] = ()
    """Openers the whole document has more of than closers, beyond ``open_brackets``: the
    document lacks a closer (the user is about to type the ``}`` or ``} else {`` that
    ends a block), so a completion may close these too (outermost first)."""

    @property
    def at_indent(self) -> bool:
        """True when only whitespace precedes the cursor on its line."""
        return not self.before.strip()


def _width(ws: str) -> int:
    return len(ws.expandtabs(4))


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _detect_indent_unit(prefix: str) -> str:
    """The file's indentation unit, judged from the prefix's indented lines."""
    tabs = spaces = 0
    widths: list[int] = []
    lines = prefix.split("\n")[-200:]
    for i, line in enumerate(lines):
        ws = _leading(line)
        # The cursor line counts even when blank: its whitespace is the editor's indent.
        if not ws or (not line.strip() and i != len(lines) - 1):
            continue
        if ws.startswith("\t"):
            tabs += 1
        else:
            spaces += 1
            widths.append(len(ws))
    if tabs > spaces:
        return "\t"
    if widths:
        unit = min(w for w in widths if w > 0)
        if unit in (2, 3, 4, 8):
            return " " * unit
    return "    "


def _cursor(ctx: FimContext) -> _Cursor:
    prefix = ctx.prefix.replace("\r\n", "\n")
    suffix = ctx.suffix.replace("\r\n", "\n")
    before = prefix[prefix.rfind("\n") + 1 :]
    first_nl = suffix.find("\n")
    after = suffix if first_nl < 0 else suffix[:first_nl]
    rest = "" if first_nl < 0 else suffix[first_nl + 1 :]
    next_lines = tuple(rest.split("\n", 8)[:8]) if rest else ()
    indent = ctx.indent or _leading(before + after)
    after = after.rstrip("\r")
    markers = line_comment_markers(ctx.language)
    stack: list[str] = []
    _track_brackets(prefix[-_BRACKET_SCAN_CHARS:], stack, markers, closing_only=False)
    if stack:
        # Closers the editor put right after the cursor may be retyped (and replaced),
        # so only later text counts as closing what the prefix opened.
        closing = rest if _replaceable_only(after) else suffix
        _track_brackets(closing[:_BRACKET_SCAN_CHARS], stack, markers, closing_only=True)
    return _Cursor(
        before=before,
        after=after,
        next_lines=next_lines,
        indent=indent,
        language=ctx.language,
        indent_unit=_detect_indent_unit(prefix),
        open_brackets=tuple(stack),
        unclosed=unclosed_openers(ctx.source if ctx.source is not None else prefix + suffix, stack),
    )


def _track_brackets(
    text: str, stack: list[str], markers: tuple[str, ...], *, closing_only: bool
) -> None:
    """Update ``stack`` with the brackets of ``text``, skipping strings and comments.

    Lenient: a closer that does not match the innermost opener is ignored. With
    ``closing_only`` (scanning the suffix), openers are matched within the text itself
    and only surplus closers pop ``stack``; scanning stops once ``stack`` is empty.
    """
    local: list[str] = []
    for _, tok in CodeScan(text, markers):
        if tok in OPENERS:
            (local if closing_only else stack).append(tok)
        elif tok in CLOSERS:
            if closing_only and local:
                if local[-1] == CLOSERS[tok]:
                    local.pop()
            elif stack and stack[-1] == CLOSERS[tok]:
                stack.pop()
                if closing_only and not stack:
                    return


def strip_special_tokens(text: str) -> str:
    """Cut ``text`` at the first special-token-looking text (``<|…|>``, ``<｜…｜>`` …)."""
    match = _SPECIAL_TOKEN.search(text)
    return text[: match.start()] if match else text


MAX_STATEMENT_LINES = 12
"""Most lines a single-line completion's statement may run over."""


def statement_end(text: str, language: str | None) -> int | None:
    """Where the first statement of ``text`` ends: the end of its first line, or of the
    line that closes the brackets the first line opens; None while they are still open.

    ``runner = Runner(`` alone is no statement to show when nothing after the cursor
    closes it: the lines up to its ``)`` are.
    """
    markers = line_comment_markers(language)
    depth: list[str] = []
    pos = 0
    for _ in range(MAX_STATEMENT_LINES):
        nl = text.find("\n", pos)
        line = text[pos:] if nl < 0 else text[pos:nl]
        if _scan_brackets(line, depth, markers) is not None or not depth:
            return len(text) if nl < 0 else nl
        if nl < 0:
            return None
        pos = nl + 1
    return None


def keep_first_line(text: str, language: str | None = None, closed_after: bool = True) -> str:
    """The first line of ``text`` (LINE shape) — or its first statement.

    When the first line opens brackets and the text goes on to close them within a few
    lines, and nothing after the cursor (``closed_after`` False) would close them, the
    statement is kept whole: the re-parse check then sees a sound statement, and the
    editor shows it (its first line is what a one-line request asked for).
    """
    first = text.split("\n", 1)[0]
    if closed_after or "\n" not in text:
        return first
    end = statement_end(text, language)
    return first if end is None else text[:end]


def line_statement_end(text: str, ctx: FimContext) -> int | None:
    """Where a LINE completion's text is complete: after its first line, or after the
    line that closes what the first line opens when nothing after the cursor does.

    None while that point is not reached (generation goes on); the first line's end once
    more than :data:`MAX_STATEMENT_LINES` lines are written.
    """
    nl = text.find("\n")
    if nl < 0 or not text[:nl].strip():
        return None
    if _suffix_closes(text, _cursor(ctx)):
        return nl
    end = statement_end(text, ctx.language)
    if end is None:
        return nl if text.count("\n") >= MAX_STATEMENT_LINES else None
    return end if end < len(text) else None


def _suffix_closes(text: str, cur: _Cursor) -> bool:
    """True unless the first line of ``text`` opens brackets that no text after the
    cursor closes (then its statement may run over several lines)."""
    depth: list[str] = []
    first = text.split("\n", 1)[0]
    _scan_brackets(first, depth, line_comment_markers(cur.language))
    if not depth:
        return True
    # The document's own closers after the cursor (the rest of a call the user split
    # over lines) belong to the first line's brackets when the document lacks openers.
    rest = "\n".join((cur.after, *cur.next_lines))
    surplus = sum(rest.count(c) for c in CLOSERS) - sum(rest.count(o) for o in OPENERS)
    return surplus >= len(depth)


def fix_indentation(text: str, cur: _Cursor) -> str:
    """Drop stray leading whitespace and convert indentation to the file's style.

    When the cursor already sits after whitespace, whitespace the model adds on the
    first line is stray (the classic double indentation); lines after it that were
    shifted by the same amount are shifted back. Later lines get the file's tabs or
    spaces.
    """
    if not text:
        return text
    lines = text.split("\n")
    if cur.at_indent and cur.before and len(lines) > 1 and not lines[0].strip():
        # A blank first line on an already indented line would leave a whitespace-only
        # line behind: start on the cursor line when the next line sits at its level.
        first_content = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first_content is not None and _leading(lines[first_content]).startswith(cur.before):
            lines = lines[first_content:]
            lines[0] = lines[0][len(cur.before) :]
    first = lines[0]
    if cur.before and cur.before[-1] in " \t" and first[:1] in (" ", "\t"):
        extra = _leading(first)
        lines[0] = first[len(extra) :]
        if cur.at_indent and extra and len(lines) > 1:
            shifted = cur.before + extra
            rest = [line for line in lines[1:] if line.strip()]
            if rest and all(line.startswith(shifted) for line in rest):
                lines[1:] = [
                    line[len(extra) :] if line.strip() else line.strip(" \t") for line in lines[1:]
                ]
    for i in range(1, len(lines)):
        lines[i] = _restyle_indent(lines[i], cur.indent_unit)
    return "\n".join(lines)


def _restyle_indent(line: str, unit: str) -> str:
    """Re-indent ``line`` with the file's unit when it uses the other style."""
    ws = _leading(line)
    if not ws:
        return line
    if unit == "\t" and " " in ws:
        width = _width(ws)
        return "\t" * (width // 4) + " " * (width % 4) + line[len(ws) :]
    if unit != "\t" and "\t" in ws:
        width = len(ws.expandtabs(len(unit)))
        return " " * width + line[len(ws) :]
    return line


def _scan_brackets(line: str, depth: list[str], markers: tuple[str, ...]) -> int | None:
    """Track open brackets over ``line``; the index of an unmatched closer, else None.

    Skips string literals and line comments (by the language's markers) so brackets
    inside them do not count.
    """
    for i, tok in CodeScan(line, markers):
        if tok in OPENERS:
            depth.append(tok)
        elif tok in CLOSERS:
            if not depth or depth[-1] != CLOSERS[tok]:
                return i
            depth.pop()
        else:  # a line comment: nothing after it counts
            return None
    return None


def _closer_only(line: str) -> bool:
    body = line.strip()
    return bool(body) and all(ch in ")]};," for ch in body)


def stop_at_block_end(text: str, cur: _Cursor) -> str:
    """Cut ``text`` where the syntactic unit at the cursor ends.

    The unit ends when a line dedents below the block's indentation, when the text
    closes a bracket it did not open (unless that closer replaces one right after the
    cursor), or when a new definition starts at the block's level after a body.
    """
    lines = text.split("\n")
    markers = line_comment_markers(cur.language)
    opened_on_cursor_line = bool(cur.before.strip())
    if opened_on_cursor_line:
        block = _width(cur.indent)
    else:
        block = None
        for i, line in enumerate(lines):
            if line.strip():
                block = _width(cur.before + _leading(line) if i == 0 else _leading(line))
                break
        if block is None:
            return text
    # Brackets the prefix opened and nothing after the cursor closes may be closed here,
    # and so may those the document never closes.
    depth: list[str] = [*cur.unclosed, *cur.open_brackets]
    had_body = False
    blank_seen = False
    first_content = True
    kept: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip():
            blank_seen = blank_seen or i > 0
            kept.append(line)
            continue
        if i > 0:
            width = _width(_leading(line))
            if width < block:
                if (
                    _closer_only(line)
                    and opened_on_cursor_line
                    and width >= _width(cur.indent)
                    and not _next_starts_with(cur, line.strip()[0])
                ):
                    # It closes the body the cursor line opened, and nothing after the
                    # cursor does: keep the closer, then stop.
                    kept.append(line)
                break
            if (
                not first_content
                and width <= block
                and (had_body or blank_seen)
                and _DEFINITION.match(line.lstrip())
            ):
                break
            if width > block:
                had_body = True
        opening_line = first_content
        first_content = False
        cut = _scan_brackets(line, depth, markers)
        if cut is not None:
            if opening_line and not line[:cut].strip():
                # The completion starts with a closer (`},`, `} else {`, `)`): exactly
                # what a user types where a block ends — when the document lacks it. The
                # bracket counts cannot tell (a `} else {` balances), so the line is
                # kept alone and the re-parse check judges it in the document.
                kept.append(line)
                break
            kept.append(line[:cut].rstrip())
            break
        kept.append(line)
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def _next_starts_with(cur: _Cursor, ch: str) -> bool:
    for line in cur.next_lines:
        if line.strip():
            return line.strip().startswith(ch)
    return False


def _replaceable_only(after: str) -> bool:
    body = after.rstrip()
    return bool(body) and all(ch in _REPLACEABLE for ch in body)


def _only_replaceable(cur: _Cursor) -> bool:
    return _replaceable_only(cur.after)


def remove_suffix_overlap(text: str, cur: _Cursor) -> str:
    """Cut ``text`` where it starts retyping the rest of the line or the next lines."""
    after = cur.after.strip()
    lines = text.split("\n")
    if after and not _only_replaceable(cur):
        first = lines[0].rstrip()
        if first.endswith(after):
            return first[: len(first) - len(after)].rstrip()
        if len(after) >= 4:
            pos = first.find(after)
            if pos >= 0:
                return first[:pos].rstrip()
    following = [line.strip() for line in cur.next_lines if line.strip()]
    if not following:
        return text
    next_width = next(_width(_leading(line)) for line in cur.next_lines if line.strip())
    start = 0 if cur.at_indent else 1
    for i in range(start, len(lines)):
        body = lines[i].strip()
        if not body:
            continue
        if _closer_only(body) and (
            _width((cur.before if i == 0 else "") + _leading(lines[i])) != next_width
        ):
            # `}` one level deeper than the next line's `}` closes another block: the
            # one the document lacks (a Go or C `}` before the function's own).
            continue
        if body == following[0] or (
            i == len(lines) - 1 and len(body) >= 3 and following[0].startswith(body)
        ):
            rest = [line.strip() for line in lines[i + 1 :] if line.strip()]
            if all(a == b for a, b in zip(rest, following[1:], strict=False)) and len(rest) < len(
                following
            ):
                kept = lines[:i]
                while kept and not kept[-1].strip():
                    kept.pop()
                return "\n".join(kept)
    return text


def _comment_start(line: str, markers: tuple[str, ...]) -> int | None:
    """Where a line comment starts in ``line`` (outside strings), or None."""
    for i, tok in CodeScan(line, markers):
        if tok in markers:
            return i
    return None


def cut_trailing_comment(text: str, cur: _Cursor) -> str:
    """Drop a line comment at the end of a completion that code after the cursor follows.

    The rest of the cursor line lands after the completion's last line: behind a comment
    the model wrote (``greet(John)  # call it`` before ``)``), it would be commented out.
    """
    if not cur.after.strip():
        return text
    markers = line_comment_markers(cur.language)
    if not markers:
        return text
    head, _, last = text.rpartition("\n")
    cut = _comment_start(last, markers)
    if cut is None:
        return text
    kept = last[:cut].rstrip()
    return f"{head}\n{kept}" if head else kept


def balance_closers(text: str, cur: _Cursor) -> tuple[str, int]:
    """Replace closers after the cursor that the completion retypes.

    When the rest of the cursor line is only closers (``)``, ``]``, quotes, ``;`` … as
    an editor auto-inserts them) and the completion ends with the first ``k`` of them
    (optionally followed by ``;``/``,``), closing brackets/strings it did not open
    itself, returns the text with ``replace_chars=k`` so they are not duplicated.
    """
    if not _only_replaceable(cur):
        return text, 0
    closers = cur.after.rstrip()
    last = text.rstrip().rsplit("\n", 1)[-1]
    trimmed = last.rstrip(";, \t")
    surplus = _surplus_closers(text)
    for k in range(len(closers), 0, -1):
        head = closers[:k]
        if not (last.endswith(head) or trimmed.endswith(head)):
            continue
        needed_brackets = sum(1 for ch in head if ch in CLOSERS)
        needed_quotes = {ch for ch in head if ch in "\"'`"}
        if needed_brackets <= surplus and all(text.count(q) % 2 == 1 for q in needed_quotes):
            return text, k
    return text, 0


def _surplus_closers(text: str) -> int:
    """How many closing brackets in ``text`` close nothing ``text`` itself opened."""
    depth: list[str] = []
    surplus = 0
    for ch in text:
        if ch in OPENERS:
            depth.append(ch)
        elif ch in CLOSERS:
            if depth and depth[-1] == CLOSERS[ch]:
                depth.pop()
            else:
                surplus += 1
    return surplus


def strip_trailing_whitespace(text: str) -> str:
    """Strip trailing whitespace (and trailing blank lines) from ``text``."""
    return text.rstrip()


RuleTrace = Callable[[str, str, str], None]
"""Called as ``trace(rule, before, after)`` whenever a rule changes the text."""


RULES: tuple[str, ...] = (
    "strip_special_tokens",
    "keep_first_line",
    "fix_indentation",
    "stop_at_block_end",
    "remove_suffix_overlap",
    "cut_trailing_comment",
    "balance_closers",
    "reparse_check",
)
"""The rules :func:`postprocess` applies, in order (names as ``trace`` and ``skip`` use them)."""


def postprocess(
    raw: str,
    ctx: FimContext,
    trace: RuleTrace | None = None,
    skip: frozenset[str] = frozenset(),
) -> Completion | None:
    """Apply every rule to the model's ``raw`` output; None when nothing is worth showing.

    ``trace``, when given, sees each rule that changed the text (for benchmarks and
    debugging); it never changes the result. ``skip`` names rules (from :data:`RULES`) to
    leave out: the quality benchmark's per-rule ledger measures what each rule wins and
    loses that way.
    """

    def step(rule: str, before: str, after: str) -> str:
        if rule in skip:
            return before
        if trace is not None and before != after:
            trace(rule, before, after)
        return after

    crlf = "\r\n" in ctx.prefix or "\r\n" in ctx.suffix
    text = step("strip_special_tokens", raw, strip_special_tokens(raw))
    text = text.replace("\r\n", "\n").replace("\r", "")
    cur = _cursor(ctx)
    if ctx.shape is not Shape.BLOCK:
        text = step(
            "keep_first_line",
            text,
            keep_first_line(text, ctx.language, closed_after=_suffix_closes(text, cur)),
        )
    text = step("fix_indentation", text, fix_indentation(text, cur))
    text = step("stop_at_block_end", text, stop_at_block_end(text, cur))
    text = step("remove_suffix_overlap", text, remove_suffix_overlap(text, cur))
    text = step("cut_trailing_comment", text, cut_trailing_comment(text, cur))
    text = step("strip_trailing_whitespace", text, strip_trailing_whitespace(text))
    if not text.strip():
        step("never_empty", text or "(empty)", "(no completion)")
        return None
    text, replace = (text, 0) if "balance_closers" in skip else balance_closers(text, cur)
    if replace:
        step("balance_closers", text, f"{text}  [replaces {cur.after[:replace]!r}]")
    checked = (text, replace) if "reparse_check" in skip else reparse_check(text, replace, ctx)
    if checked is None:
        step("reparse_check", text, "(no completion)")
        return None
    text = step("reparse_check", text, checked[0])
    replace = checked[1]
    text = strip_trailing_whitespace(text)
    if not text.strip() or (replace and text == cur.after[:replace]):
        # Nothing, or only what is already after the cursor: no point showing it.
        step("never_empty", text or "(empty)", "(no completion)")
        return None
    if crlf:
        text = text.replace("\n", "\r\n")
    return Completion(text=text, replace_chars=replace)
