"""Definitions and imports of one source file, extracted with tree-sitter tag queries.

The queries are data files, ``queries/<stem>.scm`` (the language table's
:attr:`~lsp_server.languages.LanguageSpec.tag_query` names each language's), with these
captures:

* ``@definition.<kind>`` on a whole definition (kind: ``function``, ``method``, ``class``,
  ``type``, ``constant``, ``macro``) and ``@name`` on its name;
* ``@import`` on an import statement, with ``@import.source`` (the module / path as
  written), ``@import.name`` (one imported name), ``@import.alias`` (the local binding),
  ``@import.default`` (JavaScript: the local binding of the module's default export, or
  of a CommonJS module's ``module.exports``) and ``@import.module`` (Rust's ``mod name;``);
* ``@export`` on a JavaScript / TypeScript export that gives a local definition another
  name, with ``@export.default`` (the default export's local name) or ``@export.name``
  (the exported name) and ``@export.local`` (the local one);
* ``@package`` on the file's package name (Java, Go).

A :class:`Tag` keeps line numbers only (no text), so the index of ten thousand files stays
small; :func:`render_definition` cuts signature, docstring and a short body out of the
file's text when a snippet is needed.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import re
import sys
from dataclasses import dataclass

from tree_sitter import Node, Query, QueryCursor, QueryError

from lsp_server.languages import BRACE_STUB, PYTHON_STUB, spec_for
from lsp_server.syntax import get_language, get_parser

logger = logging.getLogger(__name__)

__all__ = [
    "FileTags",
    "ImportRef",
    "Tag",
    "body_indent",
    "closing_line",
    "cut_ending",
    "extract_tags",
    "has_tag_query",
    "imports_from_tree",
    "join_header",
    "opens_bracket",
    "outline",
    "render_definition",
]

_KIND_RANK: dict[str, int] = {
    "method": 0,
    "function": 1,
    "class": 1,
    "type": 1,
    "constant": 2,
    "macro": 2,
}
"""When two patterns tag the same node, the lower rank (the more specific kind) wins."""

_WRAPPERS = frozenset(
    {"decorated_definition", "export_statement", "template_declaration", "ambient_declaration"}
)
"""Parent nodes that belong to a definition's header (decorators, ``export``, templates)."""

_CLASS_LIKE = frozenset(
    {
        "class_definition",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "class_specifier",
        "struct_specifier",
        "impl_item",
        "trait_item",
        "enum_declaration",
        "record_declaration",
        "class",  # JavaScript class expressions (``module.exports = class Name {}``)
    }
)

_MAX_CAPTURE_CHARS = 200
"""Longest import source / name kept; longer ones are generated code, not imports."""


@dataclass(frozen=True, slots=True)
class Tag:
    """One definition in a file, by 0-based line numbers (no text is kept)."""

    name: str
    kind: str
    """``function``, ``method``, ``class``, ``type``, ``constant`` or ``macro``."""
    line: int
    """First line, including decorators, ``export`` and template headers."""
    header_end: int
    """Last line of the signature (before the body)."""
    end: int
    """Last line of the whole definition."""
    doc_start: int = -1
    """First line of the docstring or leading doc comment; -1 when there is none."""
    doc_end: int = -1
    parent: str | None = None
    """Name of the enclosing class / impl / interface, for methods."""


@dataclass(frozen=True, slots=True)
class ImportRef:
    """One imported module or name, as written in the source."""

    source: str
    """Module or path as written: ``a.b``, ``..m``, ``./x``, ``crate::a::B``, ``x.h``."""
    name: str | None = None
    """The imported name (``c`` in ``from a.b import c``); None for a whole module; ``*``
    for a star import or re-export; JavaScript: ``default`` for a default import and for a
    CommonJS ``const x = require(…)`` (which binds ``module.exports``)."""
    alias: str | None = None
    """The local name when it differs (``as`` clauses, default and namespace imports)."""
    line: int = 0
    kind: str = "import"
    """``import`` for ordinary imports; ``module`` for Rust's ``mod name;``."""

    @property
    def binding(self) -> str:
        """The name this import binds in the importing file."""
        if self.alias:
            return self.alias
        if self.name and self.name != "*":
            return self.name.rsplit(".", 1)[-1]
        for sep in ("::", "/", "."):
            if sep in self.source:
                return self.source.rstrip(sep).rsplit(sep, 1)[-1] or self.source
        return self.source


@dataclass(frozen=True, slots=True)
class FileTags:
    """Everything the index keeps about one file's syntax."""

    tags: tuple[Tag, ...] = ()
    imports: tuple[ImportRef, ...] = ()
    package: str | None = None
    """Java / Go package name, when the file declares one."""
    exports: tuple[tuple[str, str], ...] = ()
    """JavaScript / TypeScript: (exported name, local name) pairs where the two differ:
    ``("default", "Widget")`` for ``export default class Widget`` or CommonJS
    ``module.exports = Widget``, ``("W", "Widget")`` for ``export { Widget as W }``."""


EMPTY_TAGS = FileTags()


_INCLUDE = re.compile(r"^; include: ([a-z][a-z0-9-]*)$", re.MULTILINE)
"""A query file's ``; include: NAME`` line is replaced, in place, by ``queries/NAME.scm``
(patterns JavaScript and TypeScript share)."""


def _read_query(stem: str) -> str | None:
    resource = importlib.resources.files("lsp_server.repo").joinpath(f"queries/{stem}.scm")
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _query_source(language: str) -> str | None:
    spec = spec_for(language)
    source = _read_query(spec.tag_query) if spec is not None and spec.tag_query else None
    if source is None:
        return None
    return _INCLUDE.sub(lambda m: _read_query(m.group(1)) or "", source)


@functools.cache
def _query(language: str) -> Query | None:
    """The compiled tag query of ``language`` (cached), or None when there is none."""
    source = _query_source(language)
    if source is None:
        return None
    lang = get_language(language)
    if lang is None:
        return None
    try:
        return Query(lang, source)
    except QueryError as err:
        # A grammar update that renames a node must not take the index down: that
        # language simply has no tags until its query file is fixed.
        logger.error("tag query for %s does not compile: %s", language, err)
        return None


@functools.cache
def _import_query(language: str) -> Query | None:
    """The tag query of ``language`` with only its import (and package) patterns enabled.

    The current file's imports are read at every request: matching the definition
    patterns too (and building their tags) would cost more than the imports themselves.
    """
    source = _query_source(language)
    lang = get_language(language)
    if source is None or lang is None or _query(language) is None:
        return None
    query = Query(lang, source)
    data = source.encode("utf-8")
    for index in range(query.pattern_count):
        text = data[query.start_byte_for_pattern(index) : query.end_byte_for_pattern(index)]
        # A pattern's range runs up to the next one: the comments between them (which
        # may well mention ``@import``) are no part of it.
        code = b"\n".join(line for line in text.split(b"\n") if not line.lstrip().startswith(b";"))
        if b"@import" not in code and b"@package" not in code:
            query.disable_pattern(index)
    return query


def has_tag_query(language: str | None) -> bool:
    """True when ``language`` has a compiled tag query."""
    return language is not None and _query(language) is not None


def _text(node: Node) -> str:
    data = node.text or b""
    return data.decode("utf-8", "replace")


_BODY_NODES = ("class_body", "field_declaration_list", "declaration_list", "function_body")
"""Node types of a definition's body where the grammar gives it no ``body`` field."""


def _header_end(node: Node) -> int:
    """Last line of ``node``'s signature: the line before its body (or where ``{`` is)."""
    body = node.child_by_field_name("body")
    if body is None:
        # Some grammars name the body differently (C's declarators, TS class bodies) or
        # not at all (Kotlin's).
        for child in node.named_children:
            if child.type in _BODY_NODES:
                body = child
                break
    start = node.start_point.row
    if body is None:
        return min(node.end_point.row, start + 5)
    first = body.text[:1] if body.text else b""
    if first in (b"{", b":", b"(") or body.start_point.row == start:
        return max(start, body.start_point.row)
    # The signature ends where what comes before the body ends (Python's ``:``), which
    # is the body's own row for ``def f(\n    a,\n) -> T: ...``.
    before = body.prev_sibling
    while before is not None and before.type == "comment":
        before = before.prev_sibling  # a comment between the ``:`` and the body
    if before is not None:
        return max(start, min(before.end_point.row, body.start_point.row))
    return max(start, body.start_point.row - 1)


def _python_docstring(node: Node) -> tuple[int, int]:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return -1, -1
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children:
        first = first.named_children[0]
    if first.type in ("string", "concatenated_string"):
        return first.start_point.row, first.end_point.row
    return -1, -1


def _leading_comments(node: Node) -> tuple[int, int]:
    """Line range of the comment block right above ``node`` (doc comments), if any."""
    start = -1
    end = -1
    expect = node.start_point.row - 1
    sibling = node.prev_named_sibling
    while sibling is not None and "comment" in sibling.type and sibling.end_point.row == expect:
        start = sibling.start_point.row
        if end < 0:
            end = sibling.end_point.row
        expect = start - 1
        sibling = sibling.prev_named_sibling
    return start, end


def _outer(node: Node) -> Node:
    """``node`` widened to its decorators / ``export`` / template wrapper, or to the whole
    statement when it is the value assigned (``exports.f = function``: the doc comment is
    above the statement)."""
    parent = node.parent
    if (
        parent is not None
        and parent.type == "assignment_expression"
        and parent.child_by_field_name("right") == node
        and parent.parent is not None
        and parent.parent.type == "expression_statement"
    ):
        return parent.parent
    while node.parent is not None and node.parent.type in _WRAPPERS:
        node = node.parent
    return node


def _inside_function(node: Node) -> bool:
    current = node.parent
    while current is not None:
        kind = current.type
        if ("function" in kind or "method" in kind) and "signature" not in kind:
            return kind not in ("function_declarator",)
        if kind in _CLASS_LIKE:
            return False
        current = current.parent
    return False


def _parent_name(node: Node) -> str | None:
    current = node.parent
    while current is not None:
        if current.type in _CLASS_LIKE:
            named = current.child_by_field_name("name") or current.child_by_field_name("type")
            return _text(named) if named is not None else None
        current = current.parent
    return None


def extract_tags(text: str | bytes, language: str | None) -> FileTags:
    """Definitions, imports and package of one file's text (empty when unsupported).

    Never raises for bad input: text that does not parse still yields whatever
    definitions tree-sitter recovered.
    """
    if not language:
        return EMPTY_TAGS
    query = _query(language)
    parser = get_parser(language)
    if query is None or parser is None:
        return EMPTY_TAGS
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    tree = parser.parse(data)
    return tags_from_tree(tree.root_node, language, query)


IMPORT_DEPTH = 3
"""Deepest statement level searched by :func:`imports_from_tree` (``if TYPE_CHECKING:``
blocks and ``try`` / ``#ifdef`` bodies sit at depth 3; imports inside functions deeper)."""


def imports_from_tree(
    root: Node, language: str | None, rows: tuple[int, int] | None = None
) -> tuple[ImportRef, ...]:
    """The imports of a parsed file, looking only at its top statement levels.

    Much cheaper than :func:`tags_from_tree` on a large file (the query cursor does not
    descend into function bodies), for the file being edited at every keystroke.
    ``rows`` (first row, end row exclusive) adds the imports at any depth in those rows:
    a function-local import near the cursor is what the code there is about to use.
    """
    query = _import_query(language) if language else None
    if query is None or language is None:
        return ()
    found = tags_from_tree(root, language, query, max_depth=IMPORT_DEPTH).imports
    if rows is None or rows[1] <= rows[0]:
        return found
    local = tags_from_tree(root, language, query, rows=rows).imports
    return tuple(dict.fromkeys((*found, *local)))


def tags_from_tree(
    root: Node,
    language: str,
    query: Query | None = None,
    max_depth: int | None = None,
    rows: tuple[int, int] | None = None,
) -> FileTags:
    """Like :func:`extract_tags`, on an already parsed tree.

    ``max_depth`` limits the matches to nodes at most that deep, ``rows`` (first row, end
    row exclusive) to nodes that intersect those rows (see :func:`imports_from_tree`).
    """
    query = query or _query(language)
    if query is None:
        return EMPTY_TAGS
    spec = spec_for(language)
    # Rust's ``use a::{b, c::d}`` is one statement that imports several paths.
    expand = spec is not None and spec.imports == "rust"
    by_node: dict[tuple[int, int], Tag] = {}
    imports: list[tuple[ImportRef, int, int]] = []
    """Each import with its statement's byte range."""
    exports: list[tuple[str, str]] = []
    package: str | None = None
    cursor = QueryCursor(query)
    if max_depth is not None:
        cursor.set_max_start_depth(max_depth)
    if rows is not None:
        cursor.set_point_range((max(0, rows[0]), 0), (max(0, rows[1]), 0))
    for _pattern, captures in cursor.matches(root):
        if "package" in captures:
            package = _text(captures["package"][0])
            continue
        if "import" in captures:
            ref = _import_ref(captures)
            if ref is None:
                continue
            statement = captures["import"][0]
            span = (statement.start_byte, statement.end_byte)
            if expand and ref.kind == "import":
                imports.extend(
                    (ImportRef(path, None, alias, ref.line), *span)
                    for path, alias in expand_use(ref.source)
                )
            else:
                imports.append((ref, *span))
            continue
        if "export" in captures:
            pair = _export_pair(captures)
            if pair is not None:
                exports.append(pair)
            continue
        kind = next((k[11:] for k in captures if k.startswith("definition.")), None)
        names = captures.get("name")
        if kind is None or not names:
            continue
        node = captures[f"definition.{kind}"][0]
        if _inside_function(node):
            # Local helpers and closures are not part of a file's interface.
            continue
        key = (node.start_byte, node.end_byte)
        previous = by_node.get(key)
        if previous is not None and _KIND_RANK.get(previous.kind, 3) <= _KIND_RANK.get(kind, 3):
            continue
        scope = captures.get("scope")
        owner = _text(scope[0]) if scope else None
        by_node[key] = _make_tag(node, _text(names[0]), kind, language, owner)
    tags = sorted(by_node.values(), key=lambda t: (t.line, t.end))
    return FileTags(tuple(tags), _unique_imports(imports), package, tuple(dict.fromkeys(exports)))


def _unique_imports(imports: list[tuple[ImportRef, int, int]]) -> tuple[ImportRef, ...]:
    """One entry per (source, name, alias, line), without redundant generic entries.

    The same statement can match several patterns: the generic source-only one and a
    more specific one (``const { a } = require("m")`` also holds the bare
    ``require("m")``). The generic entry is dropped when a specific one of the same
    source comes from the same statement or one around it.
    """
    specific: dict[str, list[tuple[int, int]]] = {}
    for ref, start, end in imports:
        if ref.name or ref.alias:
            specific.setdefault(ref.source, []).append((start, end))
    kept = [
        ref
        for ref, start, end in imports
        if ref.name
        or ref.alias
        or ref.kind != "import"
        or not any(s <= start and end <= e for s, e in specific.get(ref.source, ()))
    ]
    return tuple(dict.fromkeys(kept))


def _make_tag(node: Node, name: str, kind: str, language: str, owner: str | None = None) -> Tag:
    """The tag of a definition node; ``owner``: the parent named by the query itself
    (``Name.member = function``), which no enclosing class gives."""
    outer = _outer(node)
    spec = spec_for(language)
    if spec is not None and spec.docstrings:
        doc_start, doc_end = _python_docstring(node)
    else:
        doc_start, doc_end = _leading_comments(outer)
    parent = owner or (_parent_name(node) if kind == "method" else None)
    if "::" in name:
        # C++ out-of-line definitions (``void ns::C::m() {}``): the name is the last part.
        scope, _, name = name.rpartition("::")
        parent = parent or scope.rpartition("::")[2] or None
    end = node.end_point.row
    if node.end_point.column == 0 and end > node.start_point.row:
        end -= 1  # the node swallowed its line end (C preprocessor definitions)
    return Tag(
        name=sys.intern(name),
        kind=kind,
        line=outer.start_point.row,
        header_end=min(_header_end(node), end),
        end=end,
        doc_start=doc_start,
        doc_end=doc_end,
        parent=sys.intern(parent) if parent else None,
    )


def _import_ref(captures: dict[str, list[Node]]) -> ImportRef | None:
    statement = captures["import"][0]
    line = statement.start_point.row
    if "import.module" in captures:
        return ImportRef(_text(captures["import.module"][0]), line=line, kind="module")
    sources = captures.get("import.source")
    if not sources:
        return None
    source = " ".join(_text(sources[0]).split())
    if not source or len(source) > _MAX_CAPTURE_CHARS:
        return None
    name_nodes = captures.get("import.name")
    alias_nodes = captures.get("import.alias") or captures.get("import.default")
    name = _text(name_nodes[0]).strip() if name_nodes else None
    alias = _text(alias_nodes[0]).strip() if alias_nodes else None
    if "import.default" in captures:
        name = "default"
    return ImportRef(source, name or None, alias or None, line)


def _export_pair(captures: dict[str, list[Node]]) -> tuple[str, str] | None:
    """(exported name, local name) of an ``@export`` match; None when they are the same."""
    if "export.default" in captures:
        exported = "default"
        local = _text(captures["export.default"][0]).strip()
    else:
        names = captures.get("export.name")
        locals_ = captures.get("export.local")
        if not names or not locals_:
            return None
        exported = _text(names[0]).strip()
        local = _text(locals_[0]).strip()
    if not local or exported == local or len(local) > _MAX_CAPTURE_CHARS:
        return None
    return sys.intern(exported), sys.intern(local)


def expand_use(tree: str) -> list[tuple[str, str | None]]:
    """Rust ``use`` tree as flat ``(path, alias)`` pairs.

    ``crate::x::{Y, z::{W as V, self}}`` gives ``crate::x::Y``, ``crate::x::z::W`` (alias
    ``V``) and ``crate::x::z``; a glob keeps its ``*``.
    """
    out: list[tuple[str, str | None]] = []

    def split_top(body: str) -> list[str]:
        parts: list[str] = []
        depth = 0
        current: list[str] = []
        for ch in body:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append("".join(current))
                current = []
            else:
                current.append(ch)
        parts.append("".join(current))
        return [p.strip() for p in parts if p.strip()]

    def walk(prefix: str, item: str) -> None:
        brace = item.find("{")
        if brace >= 0 and item.endswith("}"):
            head = item[:brace].rstrip(":").strip()
            base = f"{prefix}::{head}" if prefix and head else (prefix or head)
            for part in split_top(item[brace + 1 : -1]):
                walk(base, part)
            return
        path, _, alias = item.partition(" as ")
        path = path.strip()
        if path == "self":
            out.append((prefix, alias.strip() or None))
            return
        full = f"{prefix}::{path}" if prefix else path
        out.append((full, alias.strip() or None))

    # Drop all whitespace except the one around ``as`` (identifiers may contain "as").
    compact = "".join(re.sub(r"\s+as\s+", "\0", tree).split()).replace("\0", " as ")
    walk("", compact)
    return out


# --- rendering -------------------------------------------------------------------------


def render_definition(lines: list[str], tag: Tag, body_lines: int = 6, stub: str = "") -> str:
    """Signature, docstring and up to ``body_lines`` body lines of ``tag``, from ``lines``.

    ``lines`` are the file's lines without line ends. A body cut short is cut between
    statements (never inside an open bracket) and ends with an indented ``...`` line so
    the model reads it as elided code, not as the end; with :data:`BRACE_STUB` that line
    is a ``// ...`` comment followed by the definition's closing ``}``.
    """
    last = min(tag.end, len(lines) - 1)
    if last < tag.line:
        return ""
    start = tag.line
    if 0 <= tag.doc_start < tag.line:
        start = tag.doc_start
    head_end = max(tag.header_end, tag.doc_end)
    keep_to = head_end + body_lines
    if keep_to >= last:
        return "\n".join(lines[start : last + 1])
    while keep_to > head_end and opens_bracket("\n".join(lines[head_end + 1 : keep_to + 1])):
        keep_to -= 1
    shown = lines[start : keep_to + 1]
    shown.extend(cut_ending(lines, body_indent(lines, tag.header_end + 1, last), last, stub))
    return "\n".join(shown)


def cut_ending(lines: list[str], indent: str, last: int, stub: str) -> list[str]:
    """The lines that end a body cut short, in the stub's language: ``...`` (Python and
    the rest), or ``// ...`` and the body's closing line at ``last`` (:data:`BRACE_STUB`)."""
    if stub != BRACE_STUB:
        return [f"{indent}..."]
    closer = closing_line(lines, last)
    return [f"{indent}// ...", *([closer] if closer is not None else [])]


def closing_line(lines: list[str], row: int) -> str | None:
    """The line at ``row`` when it closes a brace body (``}``, ``};``), else None."""
    if 0 <= row < len(lines) and lines[row].strip().startswith("}"):
        return lines[row].rstrip()
    return None


def body_indent(lines: list[str], first: int, last: int) -> str:
    """The indentation of the first non-blank line in ``first..last`` (a body's)."""
    for row in range(first, min(last, first + 20) + 1):
        line = lines[row]
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return "    "


def opens_bracket(text: str) -> bool:
    """Whether ``text`` leaves a bracket open (a statement that goes on below)."""
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth > 0


def close_header(line: str, stub: str) -> str:
    """``line``, a header whose body is left out, closed with ``stub`` (unchanged when it
    opens no body: a Python ``:`` for :data:`PYTHON_STUB`, a ``{`` for the others)."""
    stripped = line.rstrip()
    if not stub or not stripped.endswith(":" if stub == PYTHON_STUB else "{"):
        return line
    return f"{stripped} {stub}"


def outline(
    lines: list[str], tags: tuple[Tag, ...], max_header_lines: int = 3, stub: str = ""
) -> str:
    """A file's shape: the header lines of every definition, classes before their methods.

    Each definition contributes its signature (at most ``max_header_lines`` lines) and
    the first line of its docstring; bodies are left out. With ``stub`` (see
    :func:`close_header`), the outline reads as a stub file: a multi-line signature is
    joined into one line (a signature cut after two lines is not code) and a definition
    with nothing under it gets ``stub`` as its body.
    """
    out: list[str] = []
    last_row = -1
    for i, tag in enumerate(tags):
        if tag.line <= last_row:
            continue
        if stub == PYTHON_STUB:
            header_last = min(tag.header_end, len(lines) - 1)
            header = join_header(lines[tag.line : header_last + 1])
        else:
            header_last = min(tag.header_end, tag.line + max_header_lines - 1, len(lines) - 1)
            header = lines[tag.line : header_last + 1]
            if stub:
                # The body opens on the first line ending in ``{`` (``(a) => {``): what
                # follows is body, not signature.
                opened = next((k for k, h in enumerate(header) if h.rstrip().endswith("{")), None)
                if opened is not None:
                    header = header[: opened + 1]
        one_line_doc = tag.header_end < tag.doc_start == tag.doc_end < len(lines)
        after = tags[i + 1] if i + 1 < len(tags) else None  # tags come in line order
        nested = after is not None and after.line > tag.header_end and after.end <= tag.end
        if stub and not one_line_doc and not nested and header:
            header = [*header[:-1], close_header(header[-1], stub)]
        out.extend(header)
        if one_line_doc:
            out.append(lines[tag.doc_start])  # one-line docstrings only: no dangling quotes
        last_row = header_last
    return "\n".join(out)


def join_header(header: list[str]) -> list[str]:
    """A multi-line signature as its decorator lines and one line for the rest.

    ``def f(\n    a,\n    b,\n) -> T:`` becomes ``def f(a, b) -> T:``: as short as the
    cut original and still code.
    """
    start = next(
        (
            i
            for i, line in enumerate(header)
            if line.lstrip().startswith(("def ", "async def ", "class "))
        ),
        0,
    )
    decorators, rest = header[:start], header[start:]
    if len(rest) <= 1 or any("#" in line for line in rest):
        return header  # one line already, or comments that joining would swallow
    joined = rest[0].rstrip()
    for line in rest[1:]:
        piece = line.strip()
        if not piece:
            continue
        if joined.endswith(("(", "[", "{")) or piece.startswith((")", "]", "}")):
            joined = joined.rstrip(",") if piece.startswith((")", "]", "}")) else joined
            joined += piece
        else:
            joined += " " + piece
    return [*decorators, joined]
