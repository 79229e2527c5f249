"""Repository context for one completion: the object that selects it and owns its caches."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from tree_sitter import Tree

from lsp_server.core import DocumentSnapshot
from lsp_server.languages import language_for
from lsp_server.repo.context.base import RankOptions, RepoView, Snippet
from lsp_server.repo.context.budget import exact_cost, fill_budget
from lsp_server.repo.context.cache import LockedLru
from lsp_server.repo.context.current import Needs, cursor_at, read_needs
from lsp_server.repo.context.definitions import Definitions
from lsp_server.repo.context.examples import UsageExamples
from lsp_server.repo.context.files import FileCandidates
from lsp_server.repo.context.ordering import render
from lsp_server.repo.context.resolution import ImportResolver
from lsp_server.repo.context.similarity import Similarity, similarity_files
from lsp_server.repo.context.words import ATTR, identifiers
from lsp_server.repo.tags import imports_from_tree


@dataclass(frozen=True, slots=True)
class RepoSelection:
    """The repository files chosen for a prompt, and how the prompt names the current file."""

    files: tuple[tuple[str, str], ...] = ()
    """``(display path, content)`` pairs, dependencies first and the most specific last."""
    current: str | None = None
    """The current file's display path (relative to its workspace root, like the files)."""


class RepoContext:
    """Chooses the repository snippets that go in front of the current file.

    Created once per workspace index (by the server, and handed to the engine); owns
    every cache of the selection — resolved imports, located definitions, imported
    files' candidates, usage examples, similarity chunks — each bounded and locked, so
    the prewarm thread and the generation worker can use it at once, and :meth:`clear`
    forgets them all.
    """

    def __init__(self, index: RepoView, options: RankOptions | None = None) -> None:
        """Selection from ``index`` with ``options`` (the defaults: what was measured)."""
        self.index = index
        self.options = options or RankOptions()
        self._imports = ImportResolver()
        self._definitions = Definitions(self.options)
        self._files = FileCandidates(self.options)
        self._examples = UsageExamples(self.options)
        self._similarity = Similarity(self.options)
        self._identifiers: LockedLru[str, frozenset[str]] = LockedLru(8)

    def clear(self) -> None:
        """Forget everything remembered (the next selection starts cold)."""
        self._imports.clear()
        self._definitions.clear()
        self._files.clear()
        self._examples.clear()
        self._similarity.clear()
        self._identifiers.clear()

    def _identifiers_cached(self, text: str) -> frozenset[str]:
        """Identifiers of a text that stays the same between keystrokes (outside the window)."""
        return self._identifiers.get_or_compute(text, lambda: frozenset(identifiers(text)))

    def select(
        self,
        path: str | None,
        text: str,
        offset: int,
        language: str | None,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
        *,
        tree: Tree | None = None,
    ) -> RepoSelection:
        """Repository snippets for a completion at ``offset`` in ``text``.

        Candidates, by priority: definitions of the imported names the code needs
        (:mod:`.definitions`), usage examples of names imported but not used yet
        (:mod:`.examples`), the imported files whole or as outlines (:mod:`.files`), and
        chunks similar to the cursor window (:mod:`.similarity`). Snippets that mostly
        repeat the current file are dropped; the budget is filled in priority order
        (:mod:`.budget`) and the files come out in dependency order (:mod:`.ordering`).

        Args:
            path: Absolute path of the current file (None for an untitled buffer).
            text: The current buffer's text (it wins over the file on disk).
            offset: Cursor offset into ``text``.
            language: LSP languageId or grammar name of the current file.
            budget_tokens: Most tokens the returned files may take, path lines included.
            count_tokens: The model's tokenizer (number of tokens of a text).
            tree: The current buffer's syntax tree, when the caller keeps one up to date
                (saves parsing the whole buffer at every request).

        Returns:
            The files (none when nothing useful was found or the budget is too small)
            and the current file's display path (None when the budget is too small).
        """
        if budget_tokens <= 0:
            return RepoSelection()
        index, options = self.index, self.options
        index.refresh()
        grammar = language_for(language, path)
        current = index.display_path(path) if path else None
        if current is None:
            current = posixpath.basename(path) if path else "untitled"
        cursor = cursor_at(text, offset, options)
        if tree is not None and grammar is not None:
            imports = imports_from_tree(tree.root_node, grammar, (cursor.top, cursor.bottom))
        else:
            imports = self._imports.current_imports(text, grammar, (cursor.top, cursor.bottom))
        resolved = self._imports.resolve(index, current, grammar, imports)
        needs = read_needs(cursor, imports, self._identifiers_cached)

        candidates: list[Snippet] = []
        seen_defs: set[tuple[str, int]] = set()
        target_order: dict[str, int] = {}
        for order, item in enumerate(resolved):
            target_order.setdefault(item.path, order)
            candidates.extend(self._definitions.candidates(index, item, needs, seen_defs))

        budget_chars = budget_tokens * 3
        for display, order in sorted(target_order.items(), key=lambda kv: kv[1]):
            snippet = self._files.candidate(index, display, order, budget_chars)
            if snippet is not None:
                candidates.append(snippet)

        unused = [
            name
            for item in resolved
            if item.symbol is not None
            and (name := item.ref.alias or item.symbol) not in needs.used_above
            and name != "default"  # ``export { default } from``: no name to look for
        ]
        if unused:
            candidates.extend(
                self._examples.examples(
                    index, current, tuple(dict.fromkeys(unused)), list(target_order)
                )
            )
        candidates.extend(
            self._similarity.similar_chunks(index, current, needs.query, list(target_order))
        )

        chosen = fill_budget(candidates, budget_tokens, needs.local_lines, options)

        def rendered() -> list[tuple[str, str]]:
            if not chosen:
                return []
            return render(index, chosen, target_order, self._imports_of)

        files = rendered()
        # The exact count of what was chosen: drop the least important snippets until it fits.
        while files and exact_cost(files, count_tokens) > budget_tokens:
            chosen.pop()
            files = rendered()
        return RepoSelection(tuple(files), current)

    def for_document(
        self,
        document: DocumentSnapshot,
        offset: int,
        count_tokens: Callable[[str], int],
        *,
        tree: Tree | None = None,
    ) -> Callable[[int], RepoSelection]:
        """:meth:`select` for one request, waiting only for its token budget (what the
        pipeline's ``repo_context`` takes: it sizes the budget when a completion is due)."""

        def select(budget_tokens: int) -> RepoSelection:
            return self.select(
                document.path,
                document.text,
                offset,
                document.language_id,
                budget_tokens,
                count_tokens,
                tree=tree,
            )

        return select

    def _imports_of(self, display: str) -> frozenset[str]:
        return self._imports.imports_of(self.index, display)

    def prewarm(
        self,
        path: str | None,
        text: str,
        language: str | None,
        budget_tokens: int | None,
        *,
        tree: Tree | None = None,
    ) -> int:
        """Do the work of a document's first selection that does not depend on the cursor.

        Meant for when a document is opened, off the request path: it resolves all the
        document's imports (function-local ones too), locates the definition of every name
        it imports (and of every ``module.member`` it uses), builds the imported files'
        whole or outline candidates and their own imports, and scans the files the
        similarity search would read. All of it lands in the caches :meth:`select` reads,
        so the first completion in a file costs about what a later one does.
        ``budget_tokens`` is the repository budget requests will use (the file candidates
        depend on it); None when it is not known yet (no model loaded): those are left for
        the first request.

        Returns:
            The number of definitions located (0 when there is nothing to do).
        """
        if not path or (budget_tokens is not None and budget_tokens <= 0):
            return 0
        index = self.index
        index.refresh()
        grammar = language_for(language, path)
        current = index.display_path(path)
        if current is None or grammar is None:
            return 0
        rows = (0, text.count("\n") + 1)
        if tree is not None:
            imports = imports_from_tree(tree.root_node, grammar, rows)
        else:
            imports = self._imports.current_imports(text, grammar, rows)
        resolved = self._imports.resolve(index, current, grammar, imports)
        names = {ref.alias or ref.name or ref.binding for ref in imports}
        attrs: dict[str, set[str]] = {}
        for base, attr in ATTR.findall(text):
            attrs.setdefault(base, set()).add(attr)
        # Every imported name counts as needed near the cursor, every member as used.
        needs = Needs(names, set(), attrs, attrs, set(), set())
        located = 0
        seen: set[tuple[str, int]] = set()
        targets: list[str] = []
        for item in resolved:
            if item.path not in targets:
                targets.append(item.path)
            located += len(self._definitions.candidates(index, item, needs, seen))
        for order, display in enumerate(targets):
            if budget_tokens is not None:
                self._files.candidate(index, display, order, budget_tokens * 3)
            self._imports_of(display)
        for display, lines in similarity_files(index, current, targets, self.options):
            self._similarity.chunks(index, display, lines)
        return located
