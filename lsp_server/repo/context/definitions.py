"""Definitions of the names the current file imports, found through re-exports.

A definition is wanted when its name is used near the cursor, or imported but not used
yet (the likeliest to be typed next), or used elsewhere in the file; it is shown as its
signature, docstring and a short body (classes: header, docstring and their members'
signatures), see :mod:`.snippets`.
"""

from __future__ import annotations

from lsp_server.languages import language_for
from lsp_server.repo.context.base import RankOptions, RepoView, Snippet
from lsp_server.repo.context.cache import LockedLru
from lsp_server.repo.context.current import Needs
from lsp_server.repo.context.snippets import (
    compact_text,
    definition_end,
    definition_text,
    is_ecma,
    stub_for,
)
from lsp_server.repo.imports import ResolvedImport, resolve_imports
from lsp_server.repo.tags import FileTags, Tag

Definition = tuple[str, int, int, str, str]
"""(path, first line, last line, text, compact text) of a located definition."""


class Definitions:
    """Finds the definitions the current file needs; remembers where each one was."""

    def __init__(self, options: RankOptions) -> None:
        """An empty memo for definitions cut with ``options``."""
        self._options = options
        self._found: LockedLru[
            tuple[str, tuple[int, int, int], str, str],
            tuple[Definition | None, tuple[int, int, int] | None],
        ] = LockedLru(2048)

    def clear(self) -> None:
        """Forget every definition located."""
        self._found.clear()

    def candidates(
        self,
        index: RepoView,
        item: ResolvedImport,
        needs: Needs,
        seen: set[tuple[str, int]],
    ) -> list[Snippet]:
        """Definitions in ``item.path`` that the current file imports and needs.

        ``seen`` holds the (path, first line) of the definitions already chosen for this
        request (two imports may lead to one definition); it is updated.
        """
        tags_info = index.entry_tags(item.path)
        js = is_ecma(item.path)
        # (A file of re-exports alone — an ``index.ts``, a package ``__init__.py`` — has
        # no tags of its own: its imports lead to the definitions.)
        if tags_info is None or not (tags_info.tags or tags_info.imports):
            return []
        tags = tags_info.tags
        binding = item.ref.binding
        near, attrs_near, attrs_any = needs.near, needs.attrs_near, needs.attrs_any
        wanted: list[tuple[str, float]] = []
        if item.symbol is not None:
            local = item.ref.alias or item.symbol
            if local in near:
                score = 3.0
            elif local not in needs.used_above:
                score = 2.5  # imported but not used above the cursor: likely what comes next
            else:
                score = 1.0
            wanted.append((item.symbol, score))
            if item.symbol == "default" and js:
                # A default import (or a CommonJS ``require``) binds an object as often as
                # a class: its members count as a whole module's do (``locate`` finds them).
                near_attrs = attrs_near.get(local, set())
                for attr in sorted(near_attrs):
                    wanted.append((f"default.{attr}", 3.0))
                for attr in sorted(attrs_any.get(local, set()) - near_attrs):
                    wanted.append((f"default.{attr}", 0.8))
            else:
                # Members of an imported class used as ``Name.member`` near the cursor.
                for attr in attrs_near.get(local, ()):
                    wanted.append((f"{item.symbol}.{attr}", 2.0))
        else:
            for attr in sorted(attrs_near.get(binding, ())):
                wanted.append((attr, 3.0))
            for attr in sorted(attrs_any.get(binding, set()) - attrs_near.get(binding, set())):
                wanted.append((attr, 0.8))
            if item.ref.name == "*" or item.ref.kind == "module":
                for tag in tags:
                    if tag.parent is None and tag.name in near:
                        wanted.append((tag.name, 2.8))
        out: list[Snippet] = []
        version = index.file_version(item.path)
        for name, score in wanted:
            parent, _, member = name.rpartition(".")
            found = self._definition(index, item.path, version, tags_info, member, parent)
            if found is None:
                continue
            path, start, end, body, compact = found
            if (path, start) in seen:
                continue
            seen.add((path, start))
            out.append(Snippet(path, start, end, body, 0, score, compact=compact))
        return out

    def _definition(
        self,
        index: RepoView,
        path: str,
        version: tuple[int, int, int] | None,
        info: FileTags,
        name: str,
        parent: str,
    ) -> Definition | None:
        """Where ``name`` (a member of ``parent`` when not empty) is defined, and its texts.

        Remembered by the importing file's version and checked against the version of the
        file it was found in (re-exports lead elsewhere): the same definitions are wanted
        at every keystroke, and following re-exports and cutting texts cost more than the
        rest.
        """
        key = (path, version, name, parent) if version is not None else None
        if key is not None:
            hit = self._found.get(key)
            if hit is not None:
                found, where = hit
                if found is None or index.file_version(found[0]) == where:
                    return found
        located = locate(index, path, info, name, parent or None)
        found = None
        where = None
        if located is not None:
            at, tag, file_tags = located
            where = index.file_version(at)
            lines = index.lines(at)
            if lines is not None:
                stub = stub_for(at)
                body = definition_text(lines, tag, file_tags, self._options, stub)
                if body:
                    compact = compact_text(lines, tag, file_tags, stub) or body
                    found = (at, tag.line, definition_end(tag, file_tags), body, compact)
        if key is not None:
            self._found.put(key, (found, where))
        return found


def _find_tag(tags: tuple[Tag, ...], name: str, parent: str | None = None) -> Tag | None:
    for tag in tags:
        if tag.name == name and tag.parent == parent:
            return tag
    return None


def locate(
    index: RepoView, path: str, info: FileTags, name: str, parent: str | None, hops: int = 2
) -> tuple[str, Tag, tuple[Tag, ...]] | None:
    """The definition of ``name`` (a member of ``parent`` when given) in ``path``.

    Follows re-exports — ``from .x import name`` in a package's ``__init__``, ``export
    { name } from`` and ``export * from`` in an ``index.ts`` — up to ``hops`` files
    further, renaming through ``as`` clauses. JavaScript / TypeScript: ``default`` is the
    file's default export (``export default class Name``, ``module.exports = Name``), an
    export alias (``export { Name as Other }``) leads to its local name, and the members
    of a default export that names no definition (``module.exports = { a, b }``,
    ``exports.a = …``) are the file's top-level definitions.
    """
    language = language_for(None, path)
    js = is_ecma(path)
    if info.exports:
        local = dict(info.exports)
        if parent is None:
            name = local.get(name, name)
        else:
            parent = local.get(parent, parent)
    tag = _find_tag(info.tags, name, parent)
    if tag is None and js and parent == "default":
        tag = _find_tag(info.tags, name, None)
    if tag is not None:
        return path, tag, info.tags
    if hops <= 0 or not info.imports:
        return None
    head = parent or name
    # ``export * from`` passes on every name but the default export.
    star = not (js and head == "default")
    refs = tuple(ref for ref in info.imports if ref.binding == head or (star and ref.name == "*"))
    if not refs:
        return None
    for item in resolve_imports(index, path, language, refs):
        target = index.entry_tags(item.path)
        if target is None or (item.symbol is None and item.ref.name != "*"):
            continue
        real = item.symbol if item.symbol and item.ref.name != "*" else head
        if parent is None:
            found = locate(index, item.path, target, real, None, hops - 1)
        else:
            found = locate(index, item.path, target, name, real, hops - 1)
        if found is not None:
            return found
    return None
