"""The chosen snippets in order, rendered as files.

Files are emitted in dependency order (a file another selected file imports comes
first); among files free to go next, the least relevant first, so the most relevant
definitions end up nearest the current file.
"""

from __future__ import annotations

from collections.abc import Callable

from lsp_server.languages import comment_marker
from lsp_server.repo.context.base import RepoView, Snippet


def render(
    index: RepoView,
    chosen: list[Snippet],
    target_order: dict[str, int],
    imports_of: Callable[[str], frozenset[str]],
) -> list[tuple[str, str]]:
    """The chosen snippets as ``(display path, content)`` files, in dependency order.

    ``target_order`` is the current file's import order of the files it imports;
    ``imports_of`` gives the files an indexed file imports. Snippets of one file keep
    their line order, joined by ``...`` lines where code was left out.
    """
    by_file: dict[str, list[Snippet]] = {}
    for snippet in chosen:
        by_file.setdefault(snippet.path, []).append(snippet)
    # Most relevant last, nearest the current file: the best snippet of each file, by
    # group (definitions first) then score.
    relevance = {
        display: max((-s.group, s.score) for s in snippets) for display, snippets in by_file.items()
    }
    paths = dependency_order(list(by_file), imports_of, target_order, relevance)
    out: list[tuple[str, str]] = []
    for display in paths:
        snippets = sorted(by_file[display], key=lambda s: (s.start, s.end))
        whole = next((s for s in snippets if s.whole), None)
        if whole is not None:
            out.append((display, whole.text))
            continue
        detailed = [s for s in snippets if not s.pieces]
        # (first row, last row, text, cut out of the file's middle, a fixed-size chunk)
        pieces: list[tuple[int, int, str, bool, bool]] = [
            (s.start, s.end, s.text, s.group != 0, s.group == 2) for s in detailed
        ]
        for snippet in snippets:
            for start, end, text in snippet.pieces:
                if not any(d.start <= start <= d.end for d in detailed):
                    pieces.append((start, end, text, False, False))
        # (Of pieces that start on the same line, the widest is shown: a definition that
        # stands for its members too covers a usage example on its first line.)
        pieces.sort(key=lambda p: (p[0], -p[1]))
        marker = comment_marker(display)
        parts: list[str] = []
        last_end = -1
        last_chunk = False
        for start, end, text, cut, chunk in pieces:
            if start <= last_end:
                continue
            if cut and (parts or start > 0):
                # A chunk cut out of the middle of a file: say that code was left out.
                parts.append(f"{marker} ...")
            elif (
                parts
                and start > last_end + 1
                and parts[-1].strip()
                and text.strip()
                and not text.lstrip().startswith("}")
            ):
                # Definitions that are apart in the file stay apart (as in any real file,
                # ``return x`` is not followed straight by the next ``def``).
                parts.append("")
            parts.append(text)
            last_end = end
            last_chunk = chunk
        if last_chunk and last_end < len(index.lines(display) or ()) - 1:
            # A chunk ends where its line count does, often mid-block. The file goes on:
            # say so, or the model reads a file that stops mid-code (and may write its
            # ending, ``module.exports = AddUser``, into the current file).
            parts.append(f"{marker} ...")
        out.append((display, "\n".join(parts)))
    return out


def dependency_order(
    paths: list[str],
    imports_of: Callable[[str], frozenset[str]],
    target_order: dict[str, int],
    relevance: dict[str, tuple[int, float]] | None = None,
) -> list[str]:
    """Topological order (imported before importer); among files free to go next, the
    least relevant first (so the most relevant end up nearest the current file), then
    the current file's import order."""
    selected = set(paths)
    deps: dict[str, set[str]] = {}
    for display in paths:
        deps[display] = {p for p in imports_of(display) if p in selected and p != display}

    def rank(display: str) -> tuple[tuple[int, float], int, int, str]:
        order = target_order.get(display)
        return (
            (relevance or {}).get(display, (0, 0.0)),
            0 if order is not None else 1,
            order if order is not None else 0,
            display,
        )

    out: list[str] = []
    placed: set[str] = set()
    remaining = sorted(paths, key=rank)
    while remaining:
        ready = [p for p in remaining if deps[p] <= placed]
        # A cycle: take the first by rank and go on.
        pick = ready[0] if ready else remaining[0]
        out.append(pick)
        placed.add(pick)
        remaining.remove(pick)
    return out
