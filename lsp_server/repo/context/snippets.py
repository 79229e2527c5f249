"""How a definition reads in a snippet: signature, docstring, a short body, a stub.

Python outlines read as stub files (``def f(x: int) -> str: ...``, multi-line signatures
joined) and brace languages' as ``f(x) { /* ... */ }``: a signature with nothing under
it is not code, and the model would imitate it.
"""

from __future__ import annotations

from lsp_server.languages import PYTHON_STUB, language_for, spec_for
from lsp_server.repo.context.base import RankOptions
from lsp_server.repo.tags import (
    Tag,
    body_indent,
    close_header,
    cut_ending,
    join_header,
    opens_bracket,
    outline,
    render_definition,
)


def stub_for(display: str) -> str:
    """The body that stands for left-out code in a stub of this file's language.

    A signature with nothing under it (``def f(x):``, ``f(x) {`` straight followed by the
    next header) is broken code the model may imitate; Python's ``def f(x): ...`` and a
    brace language's ``f(x) { /* ... */ }`` are whole definitions. Other languages'
    outlines keep their headers as they are.
    """
    spec = spec_for(language_for(None, display))
    return spec.stub if spec is not None else ""


def is_ecma(path: str) -> bool:
    """Whether ``path`` is JavaScript or TypeScript (default exports, CommonJS)."""
    spec = spec_for(language_for(None, path))
    return spec is not None and spec.imports == "ecma"


def definition_text(
    lines: list[str], tag: Tag, tags: tuple[Tag, ...], opts: RankOptions, stub: str = ""
) -> str:
    if tag.kind == "class":
        return class_text(lines, tag, tags, opts.class_lines, stub)
    text = render_definition(lines, tag, opts.body_lines, stub)
    # ``const webidl = {}`` followed by ``webidl.brandCheck = function (…)``: the object is
    # its members; show their signatures as a class's are.
    members = _members_outline(lines, tag, tags, opts.class_lines, stub)
    if members:
        text = f"{text}\n\n{members}" if text else members
    return text


def _members(tag: Tag, tags: tuple[Tag, ...]) -> list[Tag]:
    """Members assigned to a constant's object after its definition (``X.m = function``;
    only JavaScript / TypeScript constants have them)."""
    if tag.kind != "constant":
        return []
    return [t for t in tags if t.parent == tag.name and t.line > tag.end]


def definition_end(tag: Tag, tags: tuple[Tag, ...]) -> int:
    """Last line a definition's text stands for: its members' too (they are shown)."""
    return max((t.end for t in _members(tag, tags)), default=tag.end)


def _members_outline(
    lines: list[str], tag: Tag, tags: tuple[Tag, ...], max_lines: int, stub: str
) -> str:
    """Signatures of the members assigned to ``tag``'s object after its definition, up to
    ``max_lines`` lines (whole signatures; a ``...`` line says when some were left out)."""
    members = _members(tag, tags)
    out: list[str] = []
    for member in members:
        text = outline(lines, (member,), stub=stub)
        size = text.count("\n") + 1
        if out and len(out) + size > max_lines:
            out.extend(cut_ending(lines, "", -1, stub))  # (top-level: no closing line)
            break
        out.extend(text.split("\n"))
    return "\n".join(out)


def class_text(
    lines: list[str], tag: Tag, tags: tuple[Tag, ...], max_lines: int, stub: str = ""
) -> str:
    """A class with its fields and its members' signatures (member bodies left out).

    With ``stub`` (see :func:`stub_for`), the class reads as a stub: each member's signature
    gets ``stub`` as its body when that is left out (a Python signature is joined onto
    one line first), statements spanning several lines (``__slots__ = (`` …) are left
    out — a cut one is not code — and a brace class keeps its closing ``}``. The
    ``max_lines`` cap falls between members, never inside a signature.
    """
    skip: set[int] = set()
    stubbed: set[int] = set()
    headers: dict[int, int] = {}
    for member in tags:
        if member.line > tag.header_end and member.end <= tag.end and member is not tag:
            headers[member.line] = member.header_end
            # (A docstring under the header; a brace language's doc comment is above it.)
            short_doc = (
                member.doc_start > member.header_end and member.doc_end - member.doc_start < 3
            )
            for row in range(member.header_end + 1, member.end + 1):
                if not (short_doc and member.doc_start <= row <= member.doc_end):
                    skip.add(row)
            if stub and not short_doc and member.end > member.header_end:
                stubbed.add(member.header_end)
    start = tag.doc_start if 0 <= tag.doc_start < tag.line else tag.line
    out: list[str] = []
    last_end = min(tag.end, len(lines) - 1)
    row = start - 1
    while row < last_end:
        row += 1
        if row in skip:
            continue
        line = lines[row]
        if not line.strip() and (not out or not out[-1].strip()):
            continue
        entry = [line]
        header_end = headers.get(row)
        if stub and header_end is not None and header_end > row:
            header = lines[row : header_end + 1]
            entry = join_header(header) if stub == PYTHON_STUB else header
            row = header_end
        elif stub and header_end is None and row > tag.header_end and opens_bracket(line):
            first = row  # a statement that goes on below: skip all of it
            while row < last_end and opens_bracket("\n".join(lines[first : row + 1])):
                row += 1
            continue
        if len(out) + len(entry) > max_lines:
            out.extend(
                cut_ending(lines, body_indent(lines, tag.header_end + 1, last_end), tag.end, stub)
            )
            break
        if row in stubbed:
            entry[-1] = close_header(entry[-1], stub)
        out.extend(entry)
    return "\n".join(out).rstrip()


def compact_text(lines: list[str], tag: Tag, tags: tuple[Tag, ...], stub: str = "") -> str:
    """Signature (and one-line docstring); a class adds its constructor's signature."""
    shown = [tag]
    if tag.kind == "class":
        shown += [
            t
            for t in tags
            if t.parent == tag.name
            and t.name in ("__init__", "constructor", "new")
            and tag.line < t.line <= tag.end
        ][:1]
    # Whole signatures (up to 12 lines): a cut parameter list reads as broken code.
    return outline(lines, tuple(shown), max_header_lines=12, stub=stub)
