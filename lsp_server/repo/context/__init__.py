"""Repository context: the snippets of other files that go in front of the current one.

:class:`RepoContext` chooses them (:meth:`RepoContext.select` returns a
:class:`RepoSelection`: ``(display path, content)`` files for
``render_fim_prompt(..., repo_files=...)`` and the current file's display path) and owns
every cache the choice uses. :func:`repo_budget` sizes the block.

The parts, by concern:

* :mod:`.selection` — the object, its selection and its warm-up;
* :mod:`.current` — what the current file needs (names near the cursor, above it);
* :mod:`.resolution` — the current and the selected files' imports, resolved;
* :mod:`.definitions` — definitions of imported names, through re-exports;
* :mod:`.snippets` — how a definition reads (signature, docstring, body, stubs);
* :mod:`.files` — imported files, whole or as outlines;
* :mod:`.examples` — usage examples of names imported but not used yet;
* :mod:`.similarity` — chunks similar to the cursor window;
* :mod:`.budget` — the budget, and the greedy fill in priority order;
* :mod:`.ordering` — dependency order and the rendered files;
* :mod:`.words` — identifiers and stop-words; :mod:`.cache` — the one cache type.

Stability: the needs are computed from a window quantised to blocks of lines plus the
identifiers of the cursor line, so typing inside a line, or moving within a block, gives
the very same files (and the model's KV cache keeps the repository block).
"""

from lsp_server.repo.context.base import RankOptions, RepoView
from lsp_server.repo.context.budget import repo_budget
from lsp_server.repo.context.selection import RepoContext, RepoSelection

__all__ = ["RankOptions", "RepoContext", "RepoSelection", "RepoView", "repo_budget"]
