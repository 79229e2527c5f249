"""Quality benchmark: the bare model against the full server pipeline, on real code.

For every hole (see :mod:`bench.holes`) it asks two completions, greedy, in one run:

* **bare** – the obvious FIM call: a char window of the file around the cursor,
  ``<|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>``, raw llama-cpp-python output (its first
  line for single-line holes, all of it for block holes);
* **pipeline** – ``coder-lsp --stdio`` started as a subprocess and asked over real LSP
  (``didOpen`` + ``textDocument/inlineCompletion``, trigger kind Invoked, UTF-16).

and prints, per language and shape: n, answered %, exact match %, edit similarity,
parse-ok % (block holes: share of answers after which the file still parses), leaked
special tokens, whitespace-only results and mean prompt tokens. It then times everything
but the model (trigger + context + prompt + post-processing) in-process on a 5,000-line
file. Figures are printed; nothing here passes or fails.

    .venv/bin/python -m bench.quality --limit 40
    .venv/bin/python -m bench.quality --languages python --shapes line --limit 5 --rules-log /tmp/x
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.holes import LANGUAGES, PY_ROOT, Hole, collect_holes
from bench.scoring import (
    apply_completion,
    bare_window,
    edit_similarity,
    exact_match,
    first_line,
    leaks_special_token,
    parses_ok,
    percentile,
)
from lsp_server.completion.context import build_context
from lsp_server.completion.fim import QWEN
from lsp_server.completion.postprocess import postprocess
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.completion.trigger import decide_shape
from lsp_server.core import Shape
from lsp_server.positions import position_at
from lsp_server.registry import load_registry, local_path
from lsp_server.repo.parsing import ParsedDocument

MODEL = "qwen2.5-coder-0.5b"
CHARS_PER_TOKEN = 3.0
"""Rough code chars per token, for sizing the bare model's char window like the pipeline's."""
LINE_MAX_TOKENS = 64
BLOCK_MAX_TOKENS = 128


@dataclass(slots=True)
class Outcome:
    """One hole answered one way."""

    language: str
    shape: str
    way: str
    hole: str
    expected: str
    got: str
    answered: bool
    exact: bool
    similarity: float
    parse_ok: bool | None
    leaked: bool
    whitespace_only: bool
    prompt_tokens: int
    seconds: float


def model_path(name: str) -> str:
    """The GGUF path of a registry name, or the argument itself when it is a path."""
    if os.path.exists(name):
        return name
    return str(local_path(load_registry().get(name)))


# -- the bare model ---------------------------------------------------------------------


class BareModel:
    """llama-cpp-python used the obvious way, with Qwen's FIM tokens."""

    def __init__(self, path: str, n_ctx: int, threads: int) -> None:
        """Load the model quietly (this process's stdout is not an LSP transport)."""
        from llama_cpp import Llama

        self.llm = Llama(
            path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as plain text (the same vocabulary the server uses)."""
        if not text:
            return 0
        return len(
            self.llm.tokenize(text.encode("utf-8", "surrogatepass"), add_bos=False, special=False)
        )

    def complete(self, hole: Hole, prompt_tokens: int) -> tuple[str, int]:
        """Raw model text for ``hole`` and the prompt's token count."""
        # A plain char window (75% before the cursor), sized so that it takes about as
        # many tokens as the pipeline's budget: the comparison is of how the window is
        # chosen and cleaned up, not of how much code the model sees.
        chars = int(prompt_tokens * CHARS_PER_TOKEN)
        for _ in range(3):
            prefix, suffix = bare_window(hole.text, hole.offset, int(chars * 0.75), chars // 4)
            used = self.count_tokens(prefix) + self.count_tokens(suffix)
            if used == 0 or abs(used - prompt_tokens) < prompt_tokens * 0.05:
                break
            chars = int(chars * prompt_tokens / used)
        prompt = f"{QWEN.prefix}{prefix}{QWEN.suffix}{suffix}{QWEN.middle}"
        tokens = self.llm.tokenize(
            prompt.encode("utf-8", "surrogatepass"), add_bos=False, special=True
        )
        line = hole.shape == "line"
        out = self.llm.create_completion(
            tokens,
            max_tokens=LINE_MAX_TOKENS if line else BLOCK_MAX_TOKENS,
            temperature=0.0,
            # A line hole is scored on its first line: stop once it is complete (the
            # first line of the raw output is the same either way, only sooner).
            stop=["\n"] if line else None,
        )
        text = out["choices"][0]["text"]  # type: ignore[index]
        return str(text), len(tokens)


# -- the server over LSP ----------------------------------------------------------------


class ServerClient:
    """``coder-lsp --stdio`` in a subprocess, asked over real LSP."""

    def __init__(self, model: str, threads: int, prompt_tokens: int) -> None:
        """Remember how to start the server; :meth:`start` starts it."""
        self.model = model
        self.threads = threads
        self.prompt_tokens = prompt_tokens
        self.client = LanguageClient("coder-lsp-bench", "1")
        self.counter = 0

    async def start(self) -> None:
        """Start and initialize the server (the model loads in the background)."""
        await self.client.start_io(
            sys.executable,
            "-m",
            "lsp_server",
            "--stdio",
            "--model",
            self.model,
            "--n-threads",
            str(self.threads),
            "--log-level",
            "warning",
        )
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options={
                    "temperature": 0,
                    # Figures must not depend on how loaded the machine is.
                    "timeBudgetMs": None,
                    "promptTokens": self.prompt_tokens,
                    "maxTokens": BLOCK_MAX_TOKENS,
                    "nCtx": 2048,
                },
            )
        )
        self.client.initialized(types.InitializedParams())

    async def complete(self, hole: Hole) -> tuple[str, int]:
        """The completion text (applied over what it replaces) and replaced char count."""
        self.counter += 1
        uri = f"file:///bench/{self.counter}/{os.path.basename(hole.path)}"
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=hole.language, version=1, text=hole.text
                )
            )
        )
        line, char = position_at(hole.text, hole.offset, "utf-16")
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=char),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        items = result.items if isinstance(result, types.InlineCompletionList) else result or []
        if not items:
            return "", 0
        item = items[0]
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        replace = 0
        if item.range is not None:
            end = item.range.end
            start = item.range.start
            if end.line == start.line:
                replace = end.character - start.character  # ASCII closers in practice
        return text, replace

    async def stop(self) -> None:
        """Shut the server down."""
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


# -- scoring ----------------------------------------------------------------------------


def score(
    hole: Hole, way: str, got: str, replace: int, answered: bool, tokens: int, seconds: float
) -> Outcome:
    """Score one answer to ``hole``."""
    if hole.shape == "line":
        # Single-line holes score the first line; blocks score the whole text and whether
        # the file still parses with it.
        compared = first_line(got)
        exact = exact_match(compared, hole.expected)
        similarity = edit_similarity(compared.strip(), hole.expected.strip())
        ok = None
    else:
        exact = exact_match(got, hole.expected)
        similarity = edit_similarity(got.rstrip(), hole.expected.rstrip())
        doc = apply_completion(hole.text, hole.offset, got, replace)
        ok = parses_ok(doc, hole.language) if answered and got.strip() else None
    return Outcome(
        hole.language,
        hole.shape,
        way,
        hole.name,
        hole.expected,
        got,
        answered,
        exact,
        similarity,
        ok,
        leaks_special_token(got),
        answered and not got.strip(),
        tokens,
        seconds,
    )


def print_table(outcomes: list[Outcome]) -> None:
    """One row per language, shape and way."""
    groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[(o.language, o.shape, o.way)].append(o)
    header = (
        f"{'language':<11} {'shape':<6} {'way':<9} {'n':>3} {'answered':>8} {'exact%':>7} "
        f"{'edit_sim':>8} {'parse_ok%':>9} {'leaks':>5} {'ws_only':>7} {'prompt_tok':>10} "
        f"{'s/hole':>6}"
    )
    print(header)
    print("-" * len(header))
    for key in sorted(groups):
        rows = groups[key]
        n = len(rows)
        answered = sum(o.answered and bool(o.got.strip()) for o in rows)
        parsed = [o.parse_ok for o in rows if o.parse_ok is not None]
        parse = (
            f"{100 * sum(parsed) / len(parsed):9.1f}"
            if key[1] == "block" and parsed
            else (f"{'-':>9}")
        )
        print(
            f"{key[0]:<11} {key[1]:<6} {key[2]:<9} {n:>3} {100 * answered / n:7.1f}% "
            f"{100 * sum(o.exact for o in rows) / n:7.1f} "
            f"{statistics.fmean(o.similarity for o in rows):8.3f} {parse} "
            f"{sum(o.leaked for o in rows):>5} {sum(o.whitespace_only for o in rows):>7} "
            f"{statistics.fmean(o.prompt_tokens for o in rows):10.0f} "
            f"{statistics.median(o.seconds for o in rows):6.2f}"
        )


# -- rule examples ----------------------------------------------------------------------


def rule_examples(
    hole: Hole,
    raw: str,
    count: Callable[[str], int],
    prompt_tokens: int,
    sink: dict[str, list[dict[str, str]]],
) -> None:
    """Run the server's post-processing on real model output and keep per-rule examples."""
    doc = ParsedDocument(hole.text, hole.language)
    shape = decide_shape(hole.text, hole.offset, hole.language, invoked=True, tree=doc.tree)
    if shape is Shape.NONE:
        return
    ctx = build_context(
        hole.text,
        hole.offset,
        language=hole.language,
        path=hole.path,
        shape=shape,
        budget_tokens=prompt_tokens,
        count_tokens=count,
        tree=doc.tree,
    )

    def trace(rule: str, before: str, after: str) -> None:
        if len(sink[rule]) < 3:
            sink[rule].append({"hole": hole.name, "before": before, "after": after})

    postprocess(raw, ctx, trace)


# -- everything but the model -----------------------------------------------------------


def overhead_timings(count: Callable[[str], int], runs: int, seed: int) -> None:
    """Time trigger + context + prompt + post-processing on a 5,000-line real file."""
    source = (PY_ROOT / "_pydecimal.py").read_text(encoding="utf-8")
    lines = source.split("\n")[:5000]
    text = "\n".join(lines) + "\n"
    t0 = time.perf_counter()
    doc = ParsedDocument(text, "python")
    full_parse_ms = (time.perf_counter() - t0) * 1000
    rng = random.Random(seed)
    rows = [r for r, line in enumerate(lines) if line.strip() and line.startswith("        ")]
    picks = [rng.choice(rows) for _ in range(runs)]
    budget = 4096 - BLOCK_MAX_TOKENS - 16  # the server's default window

    def one(row: int) -> tuple[float, float]:
        start = sum(len(x) + 1 for x in lines[:row])
        indent = len(lines[row]) - len(lines[row].lstrip())
        offset = start + indent
        # Real-looking model output: the line that was there, then the code after it.
        raw = "\n".join([lines[row].strip(), *lines[row + 1 : row + 6]])
        a = time.perf_counter()
        shape = decide_shape(text, offset, "python", invoked=True, tree=doc.tree)
        ctx = build_context(
            text,
            offset,
            language="python",
            path="bench.py",
            shape=shape if shape is not Shape.NONE else Shape.LINE,
            budget_tokens=budget,
            count_tokens=count,
            tree=doc.tree,
        )
        render_fim_prompt(QWEN, ctx)
        b = time.perf_counter()
        postprocess(raw, ctx)
        c = time.perf_counter()
        return (b - a) * 1000, (c - b) * 1000

    cold_ctx, cold_post = one(picks[0])
    ctx_ms: list[float] = []
    post_ms: list[float] = []
    total_ms: list[float] = []
    for row in picks:
        # The median of three runs per position: on a shared machine a single run may
        # be descheduled for a time slice, which says nothing about the code.
        runs3 = sorted((one(row) for _ in range(3)), key=sum)
        c_ms, p_ms = runs3[1]
        ctx_ms.append(c_ms)
        post_ms.append(p_ms)
        total_ms.append(c_ms + p_ms)

    # Incremental reparse after typing one character (what didChange costs).
    edit_ms: list[float] = []
    for row in picks[:50]:
        start = sum(len(x) + 1 for x in lines[:row])
        a = time.perf_counter()
        doc.apply_edit(start, start, "x")
        edit_ms.append((time.perf_counter() - a) * 1000)
        doc.apply_edit(start, start + 1, "")
    print(
        f"\neverything but the model, 5,000-line Python file ({len(text):,} chars), "
        f"budget {budget} tokens, {runs} cursor positions (median of 3 runs each)"
    )
    print(f"{'stage':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in (
        ("trigger+context+prompt", ctx_ms),
        ("post-processing", post_ms),
        ("total (target p95 <= 10 ms)", total_ms),
        ("didChange incremental reparse", edit_ms),
    ):
        print(
            f"{name:<34} {percentile(values, 0.5):8.2f} {percentile(values, 0.95):8.2f} "
            f"{max(values):8.2f}"
        )
    print(
        f"first request (cold token-count cache): context {cold_ctx:.1f} ms, "
        f"post {cold_post:.1f} ms; full parse {full_parse_ms:.1f} ms"
    )


# -- main -------------------------------------------------------------------------------


def load_outcomes(paths: list[str]) -> list[Outcome]:
    """Scored answers saved with ``--jsonl`` (to print one table over several runs)."""
    outcomes: list[Outcome] = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            outcomes.extend(Outcome(**json.loads(line)) for line in f if line.strip())
    return outcomes


async def run(args: argparse.Namespace) -> None:
    """Run the benchmark as the arguments say."""
    if args.table_from:
        print_table(load_outcomes(args.table_from))
        return
    path = model_path(args.model)
    bare = BareModel(path, n_ctx=2048, threads=args.threads)
    if not args.timing_only:
        holes: list[Hole] = []
        for language in args.languages:
            for shape in args.shapes:
                found = collect_holes(language, shape, args.limit, args.seed)
                print(f"{language} {shape}: {len(found)} holes", file=sys.stderr)
                holes.extend(found)
        server = ServerClient(args.model, args.threads, args.prompt_tokens)
        await server.start()
        outcomes: list[Outcome] = []
        rules: dict[str, list[dict[str, str]]] = defaultdict(list)
        log = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None  # noqa: SIM115
        try:
            for i, hole in enumerate(holes, 1):
                t0 = time.perf_counter()
                raw, tokens = bare.complete(hole, args.prompt_tokens)
                t1 = time.perf_counter()
                got = first_line(raw) if hole.shape == "line" else raw
                outcomes.append(score(hole, "bare", got, 0, True, tokens, t1 - t0))
                text, replace = await server.complete(hole)
                t2 = time.perf_counter()
                outcomes.append(score(hole, "pipeline", text, replace, bool(text), 0, t2 - t1))
                if args.rules_log:
                    rule_examples(hole, raw, bare.count_tokens, args.prompt_tokens, rules)
                if log is not None:
                    for o in outcomes[-2:]:
                        log.write(json.dumps(asdict(o)) + "\n")
                    log.flush()
                print(
                    f"[{i}/{len(holes)}] {hole.language} {hole.shape} {hole.name}: "
                    f"bare {outcomes[-2].similarity:.2f} pipeline {outcomes[-1].similarity:.2f}",
                    file=sys.stderr,
                )
        finally:
            if log is not None:
                log.close()
            await server.stop()
        print(
            f"\nmodel {args.model}, greedy, prompt budget ~{args.prompt_tokens} tokens, "
            f"seed {args.seed}"
        )
        print_table(outcomes)
        if args.rules_log:
            Path(args.rules_log).write_text(json.dumps(rules, indent=1), encoding="utf-8")
            print(f"\nrule examples: {args.rules_log}")
    overhead_timings(bare.count_tokens, args.timing_runs, args.seed)


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    parser.add_argument("--shapes", nargs="+", default=["line", "block"], choices=["line", "block"])
    parser.add_argument("--limit", type=int, default=40, help="holes per language and shape")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=768)
    parser.add_argument("--jsonl", help="write every scored answer here")
    parser.add_argument("--rules-log", help="write per-rule before/after examples (JSON) here")
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument(
        "--table-from", nargs="+", metavar="JSONL", help="only print the table of saved answers"
    )
    parser.add_argument("--timing-runs", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
