"""The completion pipeline: orchestration only.

``complete`` runs the named stages in order — trigger (shape), local context, prompt,
generation, post-processing — each a pure function of frozen inputs, and records how long
each took. The server and the ``coder-lsp complete`` command both call it, so what the CLI
prints is exactly what an editor gets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsp_server.backends.base import (
    Backend,
    CancelToken,
    Generation,
    GenerationRequest,
    StopReason,
)
from lsp_server.completion.context import build_context
from lsp_server.completion.postprocess import postprocess
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.completion.trigger import decide_shape, max_tokens_for
from lsp_server.core import Completion, CompletionRequest, FimContext, Shape
from lsp_server.repo.parsing import language_for
from lsp_server.settings import Settings

logger = logging.getLogger(__name__)

PROMPT_OVERHEAD_TOKENS = 16
"""Room left in the budget for the template's control tokens and BOS."""


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


def _indent_width(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def early_stop(ctx: FimContext) -> Callable[[str], bool]:
    """A check run after each generated token that ends generation once the rest is waste.

    LINE: once a newline follows some text. BLOCK: once a complete line dedents below the
    first line of the completion (the block has ended; post-processing trims that line).
    """
    if ctx.shape is Shape.LINE:

        def line_done(text: str) -> bool:
            nl = text.find("\n")
            return nl > 0 and text[:nl].strip() != ""

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


def complete(
    request: CompletionRequest,
    backend: Backend,
    settings: Settings,
    cancel: CancelToken | None = None,
    *,
    tree: Any = None,
) -> PipelineResult:
    """Run the whole pipeline for one request."""
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
    budget = settings.prompt_tokens or info.n_ctx - max_tokens
    budget = max(64, min(budget, info.n_ctx - max_tokens) - PROMPT_OVERHEAD_TOKENS)

    t0 = time.perf_counter()
    ctx = build_context(
        doc.text,
        offset,
        language=language,
        path=doc.path,
        shape=shape,
        budget_tokens=budget,
        count_tokens=backend.count_tokens,
        tree=tree,
    )
    prompt = render_fim_prompt(info.template, ctx)
    timings["context_ms"] = (time.perf_counter() - t0) * 1000

    if cancel.cancelled:
        return PipelineResult(None, shape, "cancelled", timings=timings)
    gen = backend.generate(
        GenerationRequest(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            time_budget_ms=settings.time_budget_ms,
            should_stop=early_stop(ctx),
        ),
        cancel,
    )
    timings["prompt_eval_ms"] = gen.prompt_ms
    timings["generate_ms"] = gen.generate_ms
    if gen.stop_reason is StopReason.CANCELLED:
        return PipelineResult(None, shape, "cancelled", gen, gen.text, timings)

    t0 = time.perf_counter()
    completion = postprocess(gen.text, ctx)
    timings["postprocess_ms"] = (time.perf_counter() - t0) * 1000
    reason = "" if completion else "nothing usable after post-processing"
    return PipelineResult(completion, shape, reason, gen, gen.text, timings)
