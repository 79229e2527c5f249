"""Which files the current file (and each selected file) imports, remembered."""

from __future__ import annotations

from dataclasses import replace

from lsp_server.languages import language_for
from lsp_server.repo.context.base import RepoView
from lsp_server.repo.context.cache import LockedLru
from lsp_server.repo.imports import ResolvedImport, resolve_imports
from lsp_server.repo.tags import ImportRef, imports_from_tree
from lsp_server.syntax import parse


class ImportResolver:
    """Imports parsed and resolved, cached until what they depend on changes."""

    def __init__(self) -> None:
        """Empty caches."""
        self._parsed: LockedLru[tuple[str, str | None, tuple[int, int]], tuple[ImportRef, ...]]
        self._parsed = LockedLru(8)
        self._resolved: LockedLru[
            tuple[str, str | None, ImportRef, int], tuple[ResolvedImport, ...]
        ] = LockedLru(8192)
        self._targets: LockedLru[tuple[str, tuple[int, int, int], int], frozenset[str]]
        self._targets = LockedLru(4096)

    def clear(self) -> None:
        """Forget everything parsed and resolved."""
        self._parsed.clear()
        self._resolved.clear()
        self._targets.clear()

    def current_imports(
        self, text: str, language: str | None, rows: tuple[int, int]
    ) -> tuple[ImportRef, ...]:
        """Imports of the current buffer when no tree is at hand (cached by the text)."""

        def compute() -> tuple[ImportRef, ...]:
            tree = parse(text, language)
            return imports_from_tree(tree.root_node, language, rows) if tree is not None else ()

        return self._parsed.get_or_compute((text, language, rows), compute)

    def resolve(
        self, index: RepoView, current: str, language: str | None, imports: tuple[ImportRef, ...]
    ) -> list[ResolvedImport]:
        """``resolve_imports``, remembered per import until a file is added or removed.

        Resolution only asks which paths exist, so edits do not invalidate it. A file with
        a hundred imports cost up to 100 ms to resolve from scratch; a keystroke or a new
        cursor position now resolves nothing again.
        """
        generation = index.paths_generation
        out: list[ResolvedImport] = []
        for ref in imports:
            # Keyed without the line: a line inserted above the imports changes nothing.
            key = (current, language, replace(ref, line=0), generation)
            found = self._resolved.get_or_compute(
                key, lambda ref=ref: tuple(resolve_imports(index, current, language, (ref,)))
            )
            out.extend(item if item.ref == ref else replace(item, ref=ref) for item in found)
        return out

    def imports_of(self, index: RepoView, display: str) -> frozenset[str]:
        """Files an indexed file imports, cached by the file's version."""
        version = index.file_version(display)

        def compute() -> frozenset[str]:
            info = index.entry_tags(display)
            if info is None or not info.imports:
                return frozenset()
            language = language_for(None, display)
            return frozenset(r.path for r in self.resolve(index, display, language, info.imports))

        if version is None:
            return compute()
        return self._targets.get_or_compute((display, version, index.paths_generation), compute)
