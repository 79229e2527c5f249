"""How many tokens repository context gets, and which candidates fill them.

The budget is filled in priority order with token estimates; what is chosen is then
counted exactly with the model's own tokenizer (through the pipeline's memo) and the
least important snippets are dropped until it fits (see :mod:`.selection`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from lsp_server.repo.context.base import RankOptions, Snippet
from lsp_server.tokens import cached_count


def repo_budget(prompt_budget: int, share: float = 0.4, min_local: int = 256) -> int:
    """Tokens for repository context out of ``prompt_budget``.

    Repository context gets ``share`` of the budget; the local window keeps at least
    ``min_local`` tokens (or everything, for tiny budgets). The reverse flow, the local
    window taking what repository context leaves unused, is the caller's: it sizes the
    window after the selection.
    """
    if prompt_budget <= min_local:
        return 0
    return max(0, min(int(prompt_budget * share), prompt_budget - min_local))


MAX_CHARS_PER_TOKEN = 8
"""No code tokenizer averages more characters per token: a text longer than this many
characters per remaining token cannot fit, and is skipped without tokenizing it."""
ESTIMATE_CHARS_PER_TOKEN = 3.5
"""Selection estimates a snippet's tokens from its length (Qwen2.5-Coder's tokenizer on
Python: 4.2 characters per token at the median, 2.4 at the 5th percentile); only the
files finally chosen are tokenized, and snippets are dropped until that exact count fits.
Tokenizing every candidate cost more than the rest of the selection on a first request."""


def estimate(text: str) -> int:
    """Estimated tokens of ``text`` (see :data:`ESTIMATE_CHARS_PER_TOKEN`)."""
    return int(len(text) / ESTIMATE_CHARS_PER_TOKEN) + 1


def exact_cost(files: list[tuple[str, str]], count_tokens: Callable[[str], int]) -> int:
    """Tokens the rendered files take: path line, content and separator of each.

    Counted through the pipeline's own memo, so its count of the same contents is free.
    """
    return sum(
        cached_count(count_tokens, content) + cached_count(count_tokens, path) + 2
        for path, content in files
    )


def is_example(snippet: Snippet) -> bool:
    """A usage example (see :mod:`.examples`): lines of a file, in group 1."""
    return snippet.group == 1 and not snippet.whole and not snippet.pieces


def fill_budget(
    candidates: list[Snippet],
    budget: int,
    local_lines: set[str],
    opts: RankOptions,
) -> list[Snippet]:
    """Greedy fill in priority order: group, then score, then a stable tie-break.

    Costs are estimates (:func:`estimate`); the caller checks the exact count of what
    is chosen. The list is in the order the snippets were taken, so dropping from its
    end drops the least important first.
    """
    count_tokens = estimate

    def hopeless(text: str) -> bool:
        return len(text) > (budget - used) * MAX_CHARS_PER_TOKEN

    ordered = sorted(candidates, key=lambda s: (s.group, -s.score, s.path, s.start))
    chosen: list[Snippet] = []
    used = 0
    files: set[str] = set()
    whole: set[str] = set()

    def path_cost(path: str) -> int:
        return 0 if path in files else count_tokens(path) + 2

    def take(snippet: Snippet) -> None:
        """Choose ``snippet`` if it fits what is left."""
        nonlocal used
        if hopeless(snippet.text):
            return
        cost = count_tokens(snippet.text) + 2 + path_cost(snippet.path)
        if used + cost <= budget:
            chosen.append(snippet)
            files.add(snippet.path)
            used += cost

    definitions = [s for s in ordered if s.group == 0]
    # Pass 1: every needed definition as a signature; pass 2: full text while it fits.
    for snippet in definitions:
        if not mostly_in(snippet.text, local_lines, opts.repeat_threshold):
            take(replace(snippet, text=snippet.compact or snippet.text))
    # Usage examples next: a few short lines, and the shape of the likeliest next use.
    for snippet in ordered:
        if is_example(snippet):
            take(snippet)
    for i, small in enumerate(chosen):
        if small.group != 0:
            continue
        full = next(s for s in definitions if (s.path, s.start) == (small.path, small.start))
        if full.text == small.text or hopeless(full.text):
            continue
        extra = count_tokens(full.text) - count_tokens(small.text)
        if used + extra <= budget:
            chosen[i] = full
            used += extra

    for snippet in ordered:
        if snippet.group == 0 or is_example(snippet) or snippet.path in whole:
            continue
        if hopeless(snippet.text) and not snippet.whole:
            continue
        if mostly_in(snippet.text, local_lines, opts.repeat_threshold):
            continue
        if snippet.group == 2 and any(
            c.path == snippet.path and c.start <= snippet.end and snippet.start <= c.end
            for c in chosen
            if not c.whole and not c.pieces
        ):
            continue  # overlaps a definition already shown
        cost = count_tokens(snippet.text) + 2 + path_cost(snippet.path)
        if snippet.whole:
            # The whole file replaces the parts of it already chosen.
            freed = [c for c in chosen if c.path == snippet.path]
            saved = sum(count_tokens(c.text) + 2 for c in freed)
            if used - saved + cost > budget:
                continue
            chosen = [c for c in chosen if c.path != snippet.path]
            used -= saved
            whole.add(snippet.path)
        elif used + cost > budget:
            continue
        chosen.append(snippet)
        files.add(snippet.path)
        used += cost
    return chosen


def mostly_in(text: str, haystack: set[str], threshold: float) -> bool:
    """Whether more than ``threshold`` of ``text``'s non-trivial lines are in ``haystack``."""
    lines = [line.strip() for line in text.split("\n") if len(line.strip()) > 3]
    if not lines:
        return True
    repeated = sum(1 for line in lines if line in haystack)
    return repeated / len(lines) > threshold
