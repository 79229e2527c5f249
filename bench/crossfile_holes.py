"""Cross-file holes in TypeScript and JavaScript projects (for :mod:`bench.crossfile`).

A hole is a line whose first use of a name imported from another file of the same project
is there. The imports are the server's own (:func:`extract_tags`), resolved with the
server's own :func:`resolve_imports`; CommonJS destructuring
(``const {A, B: C} = require('./x')``) and whole-module bindings
(``const X = require('./x')``) are read here, since the tag query captures only their
source. A name counts only when it resolves to a top-level definition in a workspace file:
a re-export or a whole module (``import * as N``) does not.

The hole is the name's first use in code. Earlier mentions as a member or an object key
(``x.Foo``, ``{Foo: 1}``) are other things of that name and do not count; a mention in a
comment or a string before the first use disqualifies the name (the model could copy it
from there). Declaration files (``.d.ts``) are never hole files, but stay in the
workspace as context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from lsp_server.languages import language_for
from lsp_server.repo.imports import resolve_imports
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.repo.tags import ImportRef, extract_tags
from lsp_server.syntax import parse

__all__ = [
    "SCRIPT_EXTENSIONS",
    "Hole",
    "find_script_holes",
    "require_refs",
    "script_code_rows",
    "script_import_rows",
]

SCRIPT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "typescript": (".ts", ".tsx", ".mts", ".cts"),
    "javascript": (".js", ".jsx", ".mjs", ".cjs"),
}
"""Hole files of each benchmark language (``.tsx`` files use the ``tsx`` grammar)."""


@dataclass(frozen=True)
class Hole:
    """One line to complete."""

    project: str
    rel: str
    """Path of the file inside the copied project (posix)."""
    row: int
    name: str
    """The imported name the line uses first."""
    target: str
    """The line, stripped."""
    language: str = "python"
    """Grammar of the hole's file (``python``, ``typescript``, ``tsx``, ``javascript``)."""


_USE_TYPES = frozenset({"identifier", "type_identifier", "shorthand_property_identifier"})
"""Nodes that name a variable or a type where it is used (``{A}`` uses ``A`` too)."""

_MEMBER_TYPES = frozenset({"property_identifier", "private_property_identifier"})
"""Nodes that name a member or an object key: another thing that shares the name."""

_NOT_CODE = frozenset({"string", "comment", "regex", "html_comment"})

_MEMBER_FIELDS: dict[str, str] = {
    "member_expression": "property",
    "nested_type_identifier": "name",
    "nested_identifier": "property",
}
"""The child that names a member (``x.Foo``, ``N.Foo`` as a type), not a variable."""


def _is_import(node: Node) -> bool:
    if node.type == "import_statement":
        return True
    # ``export {A} from './a'`` re-exports: no use of the name in this file.
    return node.type == "export_statement" and node.child_by_field_name("source") is not None


def _require_source(node: Node | None) -> str | None:
    """``'./x'`` for ``require('./x')`` (or ``require('./x').y``), else None."""
    while node is not None and node.type == "member_expression":
        node = node.child_by_field_name("object")
    if node is None or node.type != "call_expression":
        return None
    function = node.child_by_field_name("function")
    arguments = node.child_by_field_name("arguments")
    if function is None or function.text != b"require" or arguments is None:
        return None
    first = arguments.named_children[0] if arguments.named_children else None
    if first is None or first.type != "string":
        return None
    return "".join(
        (c.text or b"").decode("utf-8", "replace")
        for c in first.named_children
        if c.type == "string_fragment"
    )


def _require_declarators(root: Node) -> list[Node]:
    """``variable_declarator`` nodes of top-level ``const/let/var x = require(...)``."""
    out: list[Node] = []
    for statement in root.named_children:
        if statement.type not in ("lexical_declaration", "variable_declaration"):
            continue
        for declarator in statement.named_children:
            value = declarator.child_by_field_name("value")
            if declarator.type == "variable_declarator" and _require_source(value) is not None:
                out.append(declarator)
    return out


def require_refs(root: Node) -> list[ImportRef]:
    """The names bound by top-level CommonJS ``require`` declarations, as imports.

    ``const {A, B: C} = require('./x')`` gives ``A`` and ``B`` (bound as ``C``) from
    ``./x``; ``const X = require('./x')`` gives the whole module bound as ``X``.
    """
    refs: list[ImportRef] = []
    for declarator in _require_declarators(root):
        source = _require_source(declarator.child_by_field_name("value"))
        target = declarator.child_by_field_name("name")
        if source is None or target is None:
            continue
        line = declarator.start_point.row
        if target.type == "identifier":
            refs.append(ImportRef(source, None, _text(target), line))
            continue
        if target.type != "object_pattern":
            continue
        for item in target.named_children:
            if item.type == "shorthand_property_identifier_pattern":
                refs.append(ImportRef(source, _text(item), None, line))
            elif item.type == "pair_pattern":
                key = item.child_by_field_name("key")
                value = item.child_by_field_name("value")
                if key is not None and value is not None and value.type == "identifier":
                    alias = _text(value)
                    name = _text(key)
                    refs.append(ImportRef(source, name, alias if alias != name else None, line))
    return refs


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def script_import_rows(root: Node) -> set[int]:
    """Rows of import statements, re-exports and top-level ``require`` declarations."""
    rows: set[int] = set()
    spans = [n for n in root.named_children if _is_import(n)]
    spans += [d.parent for d in _require_declarators(root) if d.parent is not None]
    for node in spans:
        rows.update(range(node.start_point.row, node.end_point.row + 1))
    return rows


def script_code_rows(root: Node, name: str) -> set[int]:
    """Rows where ``name`` is used as a variable or a type in code.

    Not in strings, comments or imports, and not as a member (``x.Foo``, ``N.Foo``) or an
    object key (``{Foo: 1}``, a method or field name): those are other things that share
    the name. The code inside a template string's ``${…}`` counts.
    """
    return _name_rows(root, name)[0]


def _name_rows(root: Node, name: str) -> tuple[set[int], set[int]]:
    """Rows where ``name`` is used in code, and rows where a member or key has that name."""
    wanted = name.encode()
    uses: set[int] = set()
    members: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in _NOT_CODE or _is_import(node):
            continue
        if node.type == "template_string":
            stack.extend(c for c in node.named_children if c.type == "template_substitution")
            continue
        if node.text == wanted:
            if node.type in _USE_TYPES:
                uses.add(node.start_point.row)
            elif node.type in _MEMBER_TYPES:
                members.add(node.start_point.row)
        member_field = _MEMBER_FIELDS.get(node.type)
        member = node.child_by_field_name(member_field) if member_field else None
        if member is not None and member.text == wanted:
            members.add(member.start_point.row)
        stack.extend(c for c in node.children if member is None or c != member)
    return uses, members


def _defines(index: WorkspaceIndex, path: str, name: str) -> bool:
    """True when ``path`` has a top-level definition called ``name``."""
    return any(t.name == name and t.parent is None for t in index.tags_of(path))


def _imported_names(
    index: WorkspaceIndex, display: str, language: str, text: str, root: Node
) -> list[str]:
    """Local names of the file's imports that resolve to a definition in the workspace."""
    refs = [*extract_tags(text, language).imports]
    if language == "javascript":
        refs += require_refs(root)
    names: list[str] = []
    for item in resolve_imports(index, display, language, tuple(refs)):
        if item.symbol is None or item.symbol == "default":
            # A default import or ``X = require('./x')`` of a file that defines X.
            if item.ref.alias and _defines(index, item.path, item.ref.alias):
                names.append(item.ref.alias)
        elif item.symbol != "*" and _defines(index, item.path, item.symbol):
            # ``import {A}`` / ``import {A as B}``: A must be defined there, not re-exported.
            names.append(item.ref.alias or item.symbol)
    return list(dict.fromkeys(names))


def find_script_holes(
    index: WorkspaceIndex, project: str, root: Path, per_file: int, language: str
) -> list[Hole]:
    """Lines of ``root``'s ``language`` files whose first use of a cross-file name is there."""
    holes: list[Hole] = []
    extensions = SCRIPT_EXTENSIONS[language]
    paths = sorted(p for p in root.rglob("*") if p.suffix in extensions and p.is_file())
    for path in paths:
        if path.name.endswith((".d.ts", ".d.mts", ".d.cts")):
            continue
        display = index.display_path(str(path))
        grammar = language_for(None, str(path))
        if display is None or grammar is None or not index.has(display):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        tree = parse(text, grammar)
        if tree is None:
            continue
        lines = text.split("\n")
        skip = script_import_rows(tree.root_node)
        found: list[Hole] = []
        for name in _imported_names(index, display, grammar, text, tree.root_node):
            pattern = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
            in_code, members = _name_rows(tree.root_node, name)
            for row, line in enumerate(lines):
                if row in skip or not pattern.search(line):
                    continue
                if row not in in_code and row in members:
                    continue  # ``x.Foo`` or ``{Foo: 1}``: another thing of that name
                stripped = line.strip()
                # The first mention must be a use in code (not the name spelled out in a
                # comment or a string), on a line worth completing.
                if row in in_code and 6 <= len(stripped) <= 100:
                    found.append(Hole(project, display, row, name, stripped, grammar))
                break
        found.sort(key=lambda h: h.row)
        holes.extend(found[:per_file])
    return holes
