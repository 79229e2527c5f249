"""The completion pipeline: orchestration only.

``complete`` runs the named stages in order — trigger (shape), local context, prompt,
cache, generation, post-processing — each a pure function of frozen inputs, and records
how long each took. The server and the ``coder-lsp complete`` command both call it, so
what the CLI prints is exactly what an editor gets.

The prompt is laid out for the KV cache (see :func:`kv_window`): the stable part — the
lines above the cursor, cut from a window whose top is aligned to a multiple of
``ALIGN_LINES`` rows — goes first, then the suffix, then the middle token followed by the
text typed since the last multiple of ``MIDDLE_LINES`` rows. Typing a character therefore
changes only the last few tokens of the prompt, and llama.cpp's longest-common-prefix reuse
evaluates just those. Post-processing still sees the whole prefix (window + typed text),
and the model's output already starts at the cursor.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lsp_server.backends.base import (
    Backend,
    CancelToken,
    Generation,
    GenerationRequest,
    StopReason,
    capabilities_of,
)
from lsp_server.completion.cache import CacheHit, CacheKey, CompletionCache
from lsp_server.completion.context import (
    PREFIX_SHARE,
    build_context,
    indent_columns,
    indent_scope_starts,
)
from lsp_server.completion.postprocess import (
    MAX_STATEMENT_LINES,
    RuleTrace,
    keep_first_line,
    line_statement_end,
    postprocess,
    statement_end,
)
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.completion.trigger import decide_shape, max_tokens_for
from lsp_server.core import Completion, CompletionRequest, FimContext, Prompt, Shape
from lsp_server.languages import language_for
from lsp_server.repo.context import RepoSelection, repo_budget
from lsp_server.settings import Settings
from lsp_server.syntax import parse
from lsp_server.tokens import cached_count

logger = logging.getLogger(__name__)

PROMPT_OVERHEAD_TOKENS = 16
"""Room left in the budget for the template's control tokens and BOS."""

ALIGN_LINES = 32
"""When the document is larger than the prompt budget, the window's first row is a
multiple of this: adding or scrolling one line does not move the start of the prompt
(which would make llama.cpp evaluate all of it again)."""
MIDDLE_LINES = 1
"""Whole lines since the last row that is a multiple of this go after the middle token
with the typed text, so pressing Enter appends tokens instead of changing the prefix.
1 (the default) = only the cursor line's typed text: a new line then costs one
evaluation of the suffix, as in llama.vim. 8 makes Enter cheap too; it is not the default
because the tiny test model (tests/tinymodel.py) only completes prompts that end with the
middle token (see the report of issue 5)."""
MAX_MIDDLE_CHARS = 4000
"""A middle longer than this (a minified line) falls back to the plain layout."""
MIDDLE_RESERVE_QUANTUM = 256
"""Tokens reserved for the middle are rounded up to a multiple of this (of an eighth of
the budget when that is less; see :func:`middle_reserve`), so the window's budget — and
with it the window — stays the same while the user types."""
_MAX_HEADER_LINES = 8
_WINDOW_MEMO_SIZE = 16


@dataclass(frozen=True, slots=True)
class KvWindow:
    """The prompt pieces of the KV-cache-friendly layout."""

    head: FimContext
    """Window prefix (lines above the middle) and suffix; what goes before the middle token."""
    middle: str
    """Text after the middle token: the lines since the middle's first row, then the
    cursor line up to the cursor — without its last character when that is a space or
    tab (see ``held``)."""
    held: str
    """The space or tab typed last before the cursor, held back from the prompt: a prompt
    that ends in a space makes models write odd tokens (the classic stray space), because
    their tokenizers attach that space to the next word. The model writes it itself, and
    :func:`strip_held` removes it again."""
    full: FimContext
    """The context post-processing sees: ``head.prefix + middle + held`` as prefix."""


class WindowMemo:
    """Remembers recent windows by the document text *without* the middle.

    While the user types within a line (or within the middle's rows), that text does not
    change, so the window — and the prompt up to the middle token — is reused unchanged
    even if re-cutting it would choose other boundaries (the syntax tree changes with
    every keystroke). Bounded; the engine owns one per loaded model.
    """

    def __init__(self, size: int = _WINDOW_MEMO_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, ...], tuple[str, str]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[object, ...]) -> tuple[str, str] | None:
        """The (prefix, suffix) remembered for ``key``."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return found

    def put(self, key: tuple[object, ...], value: tuple[str, str]) -> None:
        """Remember a window."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every window (the model changed)."""
        self._items.clear()


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """What one run of the pipeline produced, and why."""

    completion: Completion | None
    shape: Shape
    reason: str = ""
    """Why there is no completion (empty when there is one)."""
    generation: Generation | None = None
    raw: str = ""
    """The model's text before post-processing (for logs and benchmarks)."""
    timings: dict[str, float] = field(default_factory=dict)
    cache: CacheHit = CacheHit.MISS
    """Whether the completion came from the cache (and how), or from the model."""
    prompt: Prompt | None = None
    """The prompt the model was given (None when it did not run)."""
    context: FimContext | None = None
    """What post-processing saw around the cursor (None when the model did not run)."""
    output: str = ""
    """The model's text as post-processing got it (whitespace the prompt held back, and a
    healed line break, removed); the quality benchmark's rule ledger re-runs the rules on
    it."""

    @property
    def cut_short(self) -> bool:
        """True when a time limit ended the generation before it held anything to show.

        Such an empty answer says how busy the machine was, not what the model would
        write: it is not cached, and the engine may finish the work in the background
        (see :meth:`lsp_server.engine.Engine.complete`).
        """
        gen = self.generation
        return self.completion is None and gen is not None and gen.stop_reason is StopReason.TIMEOUT


def _indent_width(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _rows_back(text: str, line_start: int, n: int) -> int:
    """Offset of the start of the row ``n`` rows above the row that starts at ``line_start``."""
    pos = line_start
    for _ in range(n):
        if pos == 0:
            break
        pos = text.rfind("\n", 0, pos - 1) + 1
    return pos


def early_stop(ctx: FimContext) -> Callable[[str], bool]:
    """A check run after each generated token that ends generation once the rest is waste.

    LINE: once a newline follows some text — or, when that first line opens brackets
    nothing after the cursor closes, once the line that closes them is complete. BLOCK:
    once a complete line dedents below the first line of the completion (the block has
    ended; post-processing trims that line).
    """
    if ctx.shape is Shape.LINE:
        spans: list[bool] = []  # decided once, at the first line break

        def line_done(text: str) -> bool:
            nl = text.find("\n")
            if nl <= 0 or not text[:nl].strip():
                return False
            if not spans:
                spans.append(line_statement_end(text, ctx) != nl)
            if not spans[0]:
                return True
            end = statement_end(text, ctx.language)
            if end is None:
                return text.count("\n") >= MAX_STATEMENT_LINES
            return end < len(text)

        return line_done

    def block_done(text: str) -> bool:
        lines = text.split("\n")
        if len(lines) < 3:
            return False
        first = ctx.indent + lines[0] if lines[0].strip() else None
        complete = lines[1:-1]  # the last element is still being generated
        base = _indent_width(first) if first is not None else None
        for line in complete:
            if not line.strip():
                continue
            if base is None:
                base = _indent_width(line)
                continue
            if _indent_width(line) < base:
                return True
        return False

    return block_done


def _scope_headers(text: str, top_start: int, width: int) -> list[str]:
    """The innermost scope header lines above the row starting at ``top_start`` (see
    :func:`~lsp_server.completion.context.indent_scope_starts`), each with its newline."""
    found = [
        text[start : text.find("\n", start) + 1]
        for start in indent_scope_starts(text, top_start, width)
    ]
    return found[-_MAX_HEADER_LINES:]


def _align_step(align_lines: int, rows: int) -> int:
    """The alignment quantum for a window that could hold ``rows`` rows above the cursor.

    Aligning moves the window's first row down by up to ``step - 1`` rows; a small prompt
    budget must not lose most of its lines to that (at 512 tokens the window holds ~15
    rows, and a 32-row step could leave none). Halve the step until it costs at most a
    third of the rows.
    """
    step = max(1, align_lines)
    while step > 1 and step > rows // 3:
        step //= 2
    return step


def _cut_window(
    stable: str,
    cursor: int,
    *,
    language: str | None,
    path: str | None,
    shape: Shape,
    budget: int,
    count_tokens: Callable[[str], int],
    align_lines: int,
) -> tuple[str, str]:
    """Cut (prefix, suffix) from ``stable`` (the text without the middle) at ``cursor``.

    When everything above the cursor fits, :func:`build_context` cuts as usual. When it
    does not, the window's first row is moved down to a multiple of ``align_lines`` (the
    scope headers above it are kept in front), and :func:`build_context` gets only that
    much text above the cursor, so it keeps all of it: the prompt's start stays put while
    the cursor moves over ``align_lines`` rows.
    """

    def count(chunk: str) -> int:
        return cached_count(count_tokens, chunk) if chunk else 0

    budget = max(0, budget)
    prefix_share = int(budget * PREFIX_SHARE)
    # Cost of the suffix side, only as far as it can matter.
    suffix_cost = 0
    pos = cursor
    while pos < len(stable) and suffix_cost <= budget:
        end = stable.find("\n", pos)
        end = len(stable) if end < 0 else end + 1
        suffix_cost += count(stable[pos:end])
        pos = end
    bottom = pos  # the text build_context sees ends here (a superset of what it keeps)
    allowance = max(prefix_share, budget - suffix_cost)

    # Walk up while the rows above fit the prefix's allowance.
    starts = [cursor]  # starts[i] = start of the row i rows above the cursor row
    cost = 0
    pos = cursor
    fits_all = True
    while pos > 0:
        start = stable.rfind("\n", 0, pos - 1) + 1
        c = count(stable[start:pos])
        if cost + c > allowance:
            fits_all = False
            break
        cost += c
        starts.append(start)
        pos = start
    top_start = 0
    header = ""
    if not fits_all and align_lines > 1:
        # The scopes around the cursor, judged from the nearest line above (not from the
        # cursor line: its indentation changes as the user types it).
        above = stable[:cursor].rstrip()
        last = above[above.rfind("\n") + 1 :]
        width = indent_columns(last) + (1 if last.rstrip()[-1:] in (":", "{", "(", "[") else 0)
        cursor_row = stable.count("\n", 0, cursor)
        natural_top = cursor_row - (len(starts) - 1)
        step = _align_step(align_lines, cursor_row - natural_top)
        aligned = -(-natural_top // step) * step
        while True:
            aligned = min(aligned, cursor_row)
            index = cursor_row - aligned
            headers = _scope_headers(stable, starts[index], width)
            header = "".join(headers)
            rows_cost = sum(count(stable[starts[i + 1] : starts[i]]) for i in range(index))
            if aligned >= cursor_row or rows_cost + count(header) <= allowance:
                break
            aligned += step
        top_start = starts[index]
    elif not fits_all:
        top_start = starts[-1]
    sub = header + stable[top_start:bottom]
    sub_cursor = len(header) + cursor - top_start
    ctx = build_context(
        sub,
        sub_cursor,
        language=language,
        path=path,
        shape=shape,
        budget_tokens=budget,
        count_tokens=count_tokens,
        tree=parse(sub, language) if language else None,
    )
    return ctx.prefix, ctx.suffix


def middle_reserve(middle_cost: int, budget_tokens: int) -> int:
    """Tokens the window leaves for a middle of ``middle_cost`` tokens.

    Rounded up to a quantum so that typing within a line does not change the window.
    The quantum is :data:`MIDDLE_RESERVE_QUANTUM`, or an eighth of the budget when that
    is smaller: a 512-token budget must not give half of itself to an empty middle (the
    quality benchmark measured the window at half its size, and lost lines to it).
    """
    quantum = min(MIDDLE_RESERVE_QUANTUM, max(16, budget_tokens // 8))
    return -(-max(1, middle_cost) // quantum) * quantum


def kv_window(
    text: str,
    offset: int,
    *,
    language: str | None,
    path: str | None,
    shape: Shape,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    memo: WindowMemo | None = None,
    middle_lines: int = MIDDLE_LINES,
    align_lines: int = ALIGN_LINES,
) -> KvWindow | None:
    """Split the text around the cursor into the KV-cache-friendly prompt pieces.

    The middle is the text from the start of the last row that is a multiple of
    ``middle_lines`` up to the cursor; the window (prefix above it, suffix below the
    cursor) is cut from the document *without* the middle, within ``budget_tokens`` minus
    a reserve for the middle (rounded up by :func:`middle_reserve` so typing does not
    change it). Returns None when the middle would be unreasonably long (a minified
    line): the caller then uses the plain layout.
    """
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    mid_start = line_start
    if middle_lines > 1:
        back = text.count("\n", 0, line_start) % middle_lines
        if back:
            start = _rows_back(text, line_start, back)
            if offset - start <= MAX_MIDDLE_CHARS:
                mid_start = start
    if offset - mid_start > MAX_MIDDLE_CHARS:
        return None
    middle = text[mid_start:offset]
    middle_cost = count_tokens(middle) if middle else 0
    budget = max(0, budget_tokens - middle_reserve(middle_cost, budget_tokens))
    stable = text[:mid_start] + text[offset:]
    cursor_line = text[line_start:line_end]
    key = (stable, mid_start, budget, language, path, align_lines)
    found = memo.get(key) if memo is not None else None
    if found is None:
        found = _cut_window(
            stable,
            mid_start,
            language=language,
            path=path,
            shape=shape,
            budget=budget,
            count_tokens=count_tokens,
            align_lines=align_lines,
        )
        if memo is not None:
            memo.put(key, found)
    prefix, suffix = found
    indent = _leading_ws(cursor_line)
    head = FimContext(prefix, suffix, shape, language, path, indent)
    # Hold back one trailing space or tab, not all of them: BPE pre-tokenizers (Qwen's,
    # DeepSeek's) attach the last space before a word to that word, so the model writes
    # it as part of its first token, while the indentation before it still tells the
    # model how deep the next statement goes.
    shown = middle[:-1] if middle[-1:] in (" ", "\t") else middle
    return KvWindow(
        head=head,
        middle=shown,
        held=middle[len(shown) :],
        full=replace(head, prefix=prefix + middle, source=text, source_offset=offset),
    )


def strip_held(raw: str, held: str) -> str:
    """The model's output without the whitespace the user already typed (``held``).

    The prompt stopped before that whitespace, so the model usually writes it again; the
    completion starts at the cursor, after it. Only whitespace is ever removed: an output
    that starts otherwise is left to post-processing.
    """
    if not held:
        return raw
    if raw.startswith(held):
        return raw[len(held) :]
    lead = len(raw) - len(raw.lstrip(" \t"))
    return raw[min(lead, len(held)) :]


def heals_line_start(text: str, offset: int) -> bool:
    """True when the cursor sits at column 0 of an empty line (after a ``\\n`` line break).

    Such a prompt can instead stop at the end of the line above (the cursor's empty line
    left out), so that the model writes the line break and the indentation itself (see
    :func:`unheal`) — a token-healing idea that the quality benchmark measures as the
    layout choice ``heal``; it is not the default.
    """
    if offset <= 0 or text[offset - 1] != "\n" or text[offset - 2 : offset - 1] == "\r":
        return False
    return text.startswith("\n", offset) or offset == len(text)


def unheal(raw: str) -> str | None:
    """The output of a healed prompt as seen from the cursor, or None.

    The model was asked to go on from the end of the line above the cursor: an output that
    starts with a line break continues at the cursor (the break is removed); one that
    does not would have gone on writing the line above, which the cursor cannot show.
    """
    return raw[1:] if raw.startswith("\n") else None


def _after_held(check: Callable[[str], bool], held: str) -> Callable[[str], bool]:
    """``check`` applied to the output as it will be shown (held whitespace removed)."""
    if not held:
        return check
    return lambda text: check(strip_held(text, held))


def prompt_budget(settings: Settings, n_ctx: int, max_tokens: int) -> int:
    """Tokens the prompt may take when up to ``max_tokens`` are generated."""
    budget = settings.prompt_tokens or n_ctx - max_tokens
    return max(64, min(budget, n_ctx - max_tokens) - PROMPT_OVERHEAD_TOKENS)


def repo_tokens(settings: Settings, n_ctx: int) -> int:
    """The repository block's budget: the same for every completion shape.

    Sized from the block shape's prompt budget (the smaller one), so a line request and a
    block request at the same place choose the same snippets — the block stays in the
    model's KV cache — and what the server warms up when a file is opened is what its
    requests look up.
    """
    block = max_tokens_for(Shape.BLOCK, settings.max_tokens)
    return repo_budget(prompt_budget(settings, n_ctx, block), settings.repo_share)


def complete(
    request: CompletionRequest,
    backend: Backend,
    settings: Settings,
    cancel: CancelToken | None = None,
    *,
    tree: Any = None,
    cache: CompletionCache | None = None,
    windows: WindowMemo | None = None,
    repo_context: Callable[[int], RepoSelection] | None = None,
    trace: RuleTrace | None = None,
    heal: bool = False,
) -> PipelineResult:
    """Run the whole pipeline for one request.

    Args:
        request: The document snapshot and cursor.
        backend: The loaded model.
        settings: Limits and switches (``kv_prompt``, ``middle_lines`` and
            ``window_align_lines`` are read when present; see the module constants).
        cancel: Set by the engine when a newer request supersedes this one.
        tree: The document's syntax tree, for the trigger.
        cache: Recent completions; consulted before the model (unless the request was
            invoked explicitly) and filled after it.
        windows: Recent prompt windows (keeps the prompt's start stable while typing).
        repo_context: Called with a token budget (``settings.repo_share`` of the prompt)
            to choose the repository files that go first in the prompt; only when a
            completion is due.
        trace: Sees every post-processing rule that changed the model's text
            (``coder-lsp complete --explain``).
        heal: At column 0 of an empty line, end the prompt at the line above (see
            :func:`heals_line_start`). Off: measured on the quality benchmark, the models
            here then go on writing the line above far more often than they start the
            next one (bench/README.md, "Cursor at column 0").
    """
    cancel = cancel or CancelToken()
    timings: dict[str, float] = {}
    doc = request.document
    offset = max(0, min(request.offset, len(doc.text)))
    language = language_for(doc.language_id, doc.path)

    t0 = time.perf_counter()
    shape = decide_shape(doc.text, offset, language, invoked=request.invoked, tree=tree)
    timings["trigger_ms"] = (time.perf_counter() - t0) * 1000
    if shape is Shape.NONE:
        return PipelineResult(None, shape, "no completion at this position", timings=timings)

    info = backend.info
    max_tokens = max_tokens_for(shape, settings.max_tokens)
    budget = prompt_budget(settings, info.n_ctx, max_tokens)
    repo = RepoSelection()
    if repo_context is not None and settings.repo_share > 0:
        t0 = time.perf_counter()
        repo = repo_context(repo_tokens(settings, info.n_ctx))
        timings["repo_ms"] = (time.perf_counter() - t0) * 1000
    repo_files = repo.files
    if repo_files:
        budget = max(64, budget - sum(cached_count(backend.count_tokens, c) for _, c in repo_files))

    # The prompt is cut from ``source`` at ``at``: the document itself, or — at the start
    # of an empty line — the document without that line, the cursor at the end of the
    # line above. Post-processing always sees the real cursor.
    healed = heal and heals_line_start(doc.text, offset)
    source, at = (
        (doc.text[: offset - 1] + doc.text[offset:], offset - 1) if healed else (doc.text, offset)
    )
    t0 = time.perf_counter()
    window = None
    if settings.kv_prompt and capabilities_of(backend).prefix_cache:
        window = kv_window(
            source,
            at,
            language=language,
            path=doc.path,
            shape=shape,
            budget_tokens=budget,
            count_tokens=backend.count_tokens,
            memo=windows,
            middle_lines=settings.middle_lines,
            align_lines=settings.window_align_lines,
        )
    if window is not None:
        ctx, prompt_ctx, middle, held = window.full, window.head, window.middle, window.held
        key_head, key_typed = prompt_ctx.prefix, middle + held
    else:
        ctx = build_context(
            source,
            at,
            language=language,
            path=doc.path,
            shape=shape,
            budget_tokens=budget,
            count_tokens=backend.count_tokens,
            tree=None if healed else tree,
        )
        prompt_ctx, middle, held = ctx, "", ""
        # The plain layout has no middle: key the whole prefix as "typed" so that
        # typed-through lookups still work.
        key_head, key_typed = "", ctx.prefix
    if healed:
        ctx = replace(
            ctx, prefix=ctx.prefix + "\n", indent="", source=doc.text, source_offset=offset
        )
        key_typed += "\n"
    timings["context_ms"] = (time.perf_counter() - t0) * 1000

    key = CacheKey(
        model=info.path or info.name,
        shape=Shape.BLOCK,  # shape-independent: a hit is fitted to the shape below
        head="".join(f"{p}\0{c}\0" for p, c in repo_files) + key_head,
        suffix=prompt_ctx.suffix,
        typed=key_typed,
    )
    if cache is not None and not request.invoked:
        # An explicit request (the user's trigger key) always asks the model: the cached
        # answer may be one a busy machine cut short, or the empty one it gave up with.
        t0 = time.perf_counter()
        found = cache.get(key)
        timings["cache_ms"] = (time.perf_counter() - t0) * 1000
        if found is not None:
            completion = found.completion
            if completion is not None and shape is Shape.LINE and "\n" in completion.text:
                first = keep_first_line(completion.text).rstrip()
                completion = Completion(first, 0) if first.strip() else None
            reason = "" if completion else "nothing usable (cached)"
            return PipelineResult(completion, shape, reason, timings=timings, cache=found.hit)

    prompt = render_fim_prompt(
        info.template,
        prompt_ctx,
        repo_files,
        middle_head=middle,
        current_path=repo.current,
    )
    if cancel.cancelled:
        return PipelineResult(None, shape, "cancelled", timings=timings)
    should_stop = _after_held(early_stop(ctx), held)
    if healed:
        line_break_first = should_stop

        def should_stop(text: str) -> bool:
            shown = unheal(text)
            # Output that does not start with a line break goes on with the line above:
            # it can never be shown, so stop at once.
            return shown is None or line_break_first(shown)

    gen = backend.generate(
        GenerationRequest(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            time_budget_ms=settings.time_budget_ms,
            max_predict_ms=settings.max_predict_ms,
            should_stop=should_stop,
        ),
        cancel,
    )
    timings["prompt_eval_ms"] = gen.prompt_ms
    timings["generate_ms"] = gen.generate_ms
    timings["llama_ms"] = gen.llama_ms
    if gen.stop_reason is StopReason.CANCELLED:
        return PipelineResult(None, shape, "cancelled", gen, gen.text, timings, prompt=prompt)

    t0 = time.perf_counter()
    output = unheal(gen.text) if healed else strip_held(gen.text, held)
    if output is None:
        completion, reason = None, "the model went on with the line above the cursor"
        output = ""
    else:
        completion = postprocess(output, ctx, trace)
        if completion is not None:
            reason = ""
        elif gen.stop_reason is StopReason.TIMEOUT:
            reason = "a time limit ended the generation before it held a whole line"
        else:
            reason = "nothing usable after post-processing"
    timings["postprocess_ms"] = (time.perf_counter() - t0) * 1000
    cut_short = completion is None and gen.stop_reason is StopReason.TIMEOUT
    if cache is not None and settings.temperature == 0 and not cut_short:
        # Sampled (temperature > 0) results are not reproducible: not worth repeating. An
        # empty answer a time limit cut short is not the model's answer either: cached, it
        # would hide the one a later run at the same spot finds.
        cache.put(key, completion)
    return PipelineResult(
        completion, shape, reason, gen, gen.text, timings, prompt=prompt, context=ctx, output=output
    )
