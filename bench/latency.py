"""Keystroke latency benchmark: replay real typing through the LSP server, against a baseline.

A function from a real file not written here (the Python standard library's argparse.py)
is typed into an open document one keystroke at a time (a newline and the next line's
indentation count as one keystroke, as with an editor's auto-indent), through
``coder-lsp --stdio`` with Qwen2.5-Coder-0.5B:

* ``sequential``: didChange, then inlineCompletion, and wait for the answer before the next
  keystroke — the latency of every keystroke (the first, cold request is reported apart);
* ``typing``: a typist's rhythm (seeded), didChange + inlineCompletion on every keystroke
  like an editor without debounce, ``$/cancelRequest`` for a request still pending when
  the next key arrives;
* ``debounce``: the same rhythm with a 150 ms debounce (a request only after 150 ms
  without a key), pending requests cancelled the same way.

In the same run the **baseline** sends each keystroke's plain PSM prompt (prefix, then
suffix; windows of the same size) straight to one ``llama_cpp.Llama`` object and waits for
a single line, as a straightforward server does (llama-cpp-python's own longest-common-
prefix reuse still applies to it). Figures per request come from the server's
``coder-lsp.stats`` command: evaluated / generated tokens, cache hits, llama.cpp time, the
server's own time.

Run (takes several minutes on 2 cores)::

    .venv/bin/python bench/latency.py                      # 1k/2k/4k, all modes
    .venv/bin/python bench/latency.py --contexts 2048 --keystrokes 20 --baseline-keystrokes 4
    .venv/bin/python bench/latency.py --contexts 2048 --modes typing,debounce \
        --baseline-keystrokes 0

It prints tables; it is not a pass/fail test.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STATS_COMMAND = "coder-lsp.stats"
RESET_COMMAND = "coder-lsp.benchReset"
SOURCE = Path("/usr/lib/python3.11/argparse.py")
FUNCTION = "    def _parse_known_args(self, arg_strings, namespace):\n"
URI = "file:///tmp/coder-lsp-bench/argparse_copy.py"
DEBOUNCE_S = 0.150
LINE_TOKENS = 64  # the server's LINE_TOKEN_CAP: the baseline asks for one line, as long


# ---------------------------------------------------------------------------------------
# --serve: the real server plus a stats command
# ---------------------------------------------------------------------------------------


def serve() -> None:
    """Run the real server over stdio with a cache-reset command added (for repeatable runs)."""
    import logging

    from lsp_server.server import create_server

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = create_server()

    @server.command(RESET_COMMAND)
    def reset(ls: Any, *args: Any) -> bool:
        """Forget cached completions and windows (the KV cache stays: it is warm)."""
        ls.engine.cache.clear()
        ls.engine.windows.clear()
        return True

    server.start_io()


def _proc_status(field_name: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------------------
# The typing script
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """A document with a function being typed into it."""

    before: str
    after: str
    keys: list[str]
    """Each keystroke's inserted text."""

    def text(self, n: int) -> str:
        """The document after ``n`` keystrokes."""
        return self.before + "".join(self.keys[:n]) + self.after

    def offset(self, n: int) -> int:
        """The cursor after ``n`` keystrokes."""
        return len(self.before) + sum(len(k) for k in self.keys[:n])


def make_script(n_keys: int, header: str = FUNCTION) -> Script:
    """Cut ``header``'s body out of argparse.py and split it into keystrokes (a newline
    plus the next line's indentation is one keystroke, as with an editor's auto-indent)."""
    src = SOURCE.read_text(encoding="utf-8")
    start = src.index(header) + len(header)
    # Skip the comment block or docstring that opens the body: type from the first code line.
    while src[start:].lstrip(" ").startswith(("#", '"""')):
        start = src.index("\n", start) + 1
    end = src.index("\n    def ", start)  # the next method
    body = src[start:end].rstrip("\n")
    keys: list[str] = []
    i = 0
    while i < len(body) and len(keys) < n_keys:
        if body[i] == "\n":
            j = i + 1
            while j < len(body) and body[j] in " \t":
                j += 1
            keys.append(body[i:j])
            i = j
        else:
            keys.append(body[i])
            i += 1
    # The untyped rest of the function is gone; the cursor line has nothing after it.
    return Script(before=src[:start], after="\n\n" + src[end:].lstrip("\n"), keys=keys)


def rhythm(n: int, seed: int = 7) -> list[float]:
    """Seconds before each keystroke: ~130 ms apart, longer pauses now and then."""
    rng = random.Random(seed)
    gaps = []
    for _ in range(n):
        gap = min(0.3, max(0.05, rng.gauss(0.13, 0.04)))
        if rng.random() < 0.08:
            gap += rng.uniform(0.3, 0.8)  # a thinking pause
        gaps.append(gap)
    return gaps


def line_col(text: str, offset: int) -> tuple[int, int]:
    """LSP position (UTF-16 == code points here: argparse.py is ASCII)."""
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


# ---------------------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    """One inlineCompletion request as the client saw it."""

    version: int
    key: str
    sent: float
    answered: float | None = None
    cancelled: bool = False
    text: str = ""


@dataclass
class Run:
    """Everything one mode produced."""

    mode: str
    context: int
    sent: list[Sent] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    max_waiting: int = 0
    rss_kb: int = 0
    hwm_kb: int = 0


class Bench:
    """Drives one server process."""

    def __init__(self, model: str, context: int, threads: int) -> None:
        self.model = model
        self.context = context
        self.threads = threads
        self.client: Any = None
        self.version = 0
        self.stats_seen = 0
        self.ids = 0

    async def start(self) -> None:
        from pytest_lsp import ClientServerConfig, client_capabilities

        config = ClientServerConfig(server_command=[sys.executable, __file__, "--serve"])
        self.client = await config.start()
        options = {
            "model": self.model,
            "nThreads": self.threads,
            # The window is the budget minus a 256-token reserve for the middle: ask for
            # that much more so the prompts come out near ``context`` tokens.
            "promptTokens": self.context + 256,
            "nCtx": self.context + 512,
            "logLevel": "warning",
        }
        await self.client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                initialization_options=options,
            )
        )
        while True:  # wait until the model is loaded
            status = await self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="coder-lsp.status")
            )
            if status["state"] in ("ready", "failed"):
                break
            await asyncio.sleep(0.1)
        if status["state"] != "ready":
            raise SystemExit(f"model failed to load: {status}")

    async def stop(self) -> None:
        await self.client.shutdown_session()
        await self.client.stop()

    async def reset(self) -> None:
        """Start a mode with no cached completions (each mode types the same text)."""
        await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=RESET_COMMAND)
        )

    async def stats(self) -> dict[str, Any]:
        got = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=STATS_COMMAND, arguments=[self.stats_seen])
        )
        self.stats_seen = got["count"]
        return got

    def open(self, text: str) -> None:
        self.version += 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=URI, language_id="python", version=self.version, text=text
                )
            )
        )

    def close(self) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=URI))
        )

    def type_key(self, before_text: str, offset: int, key: str) -> None:
        """didChange inserting ``key`` at ``offset`` (incremental, like editors)."""
        self.version += 1
        line, col = line_col(before_text, offset)
        pos = types.Position(line=line, character=col)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=self.version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=pos, end=pos), text=key
                    )
                ],
            )
        )

    def request(self, text: str, offset: int) -> tuple[str, asyncio.Future[Any]]:
        self.ids += 1
        msg_id = f"bench-{self.ids}"
        line, col = line_col(text, offset)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=line, character=col),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
        fut = asyncio.wrap_future(
            self.client.protocol.send_request(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id
            )
        )
        return msg_id, fut

    def cancel(self, msg_id: str) -> None:
        self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))


def _answer_text(result: Any) -> str:
    items = getattr(result, "items", None) or []
    return items[0].insert_text if items else ""


async def run_sequential(bench: Bench, script: Script, n: int) -> Run:
    """Each keystroke: change, request, wait for the answer."""
    run = Run("sequential", bench.context)
    await bench.reset()
    bench.open(script.text(0))
    await bench.stats()
    for k in range(n + 1):
        if k:
            bench.type_key(script.text(k - 1), script.offset(k - 1), script.keys[k - 1])
        text, offset = script.text(k), script.offset(k)
        sent = Sent(bench.version, script.keys[k - 1] if k else "", time.perf_counter())
        _, fut = bench.request(text, offset)
        sent.text = _answer_text(await fut)
        sent.answered = time.perf_counter()
        run.sent.append(sent)
    bench.close()
    got = await bench.stats()
    run.stats, run.max_waiting = got["requests"], got["max_waiting"]
    run.rss_kb, run.hwm_kb = got["rss_kb"], got["hwm_kb"]
    return run


async def run_realtime(bench: Bench, script: Script, n: int, debounce: float | None) -> Run:
    """Keystrokes at a typist's rhythm; with or without a debounce; pending ones cancelled."""
    run = Run("debounce" if debounce else "typing", bench.context)
    bench.open(script.text(0))
    # Warm: the prompt at the starting point is in the KV cache, as after any pause.
    _, warmup = bench.request(script.text(0), script.offset(0))
    await warmup
    await bench.reset()
    await bench.stats()
    pending: dict[str, tuple[Sent, asyncio.Future[Any]]] = {}
    timer: asyncio.TimerHandle | None = None
    loop = asyncio.get_running_loop()

    def fire(k: int) -> None:
        sent = Sent(bench.version, script.keys[k - 1] if k else "", time.perf_counter())
        msg_id, fut = bench.request(script.text(k), script.offset(k))
        pending[msg_id] = (sent, fut)
        run.sent.append(sent)

        def done(f: asyncio.Future[Any], s: Sent = sent, m: str = msg_id) -> None:
            s.answered = time.perf_counter()
            pending.pop(m, None)
            if f.cancelled() or f.exception() is not None:
                s.cancelled = True
            else:
                s.text = _answer_text(f.result())

        fut.add_done_callback(done)

    gaps = rhythm(n)
    for k in range(1, n + 1):
        await asyncio.sleep(gaps[k - 1])
        for msg_id, (sent, _) in list(pending.items()):
            bench.cancel(msg_id)  # the editor drops a suggestion the user typed past
            sent.cancelled = True
        if timer is not None:
            timer.cancel()
        bench.type_key(script.text(k - 1), script.offset(k - 1), script.keys[k - 1])
        if debounce:
            timer = loop.call_later(debounce, fire, k)
        else:
            fire(k)
    await asyncio.sleep((debounce or 0) + 0.05)
    while pending:
        await asyncio.sleep(0.05)
    bench.close()
    got = await bench.stats()
    run.stats, run.max_waiting = got["requests"], got["max_waiting"]
    run.rss_kb, run.hwm_kb = got["rss_kb"], got["hwm_kb"]
    return run


# ---------------------------------------------------------------------------------------
# Baseline: one llama_cpp.Llama, the plain PSM prompt, one line
# ---------------------------------------------------------------------------------------


@dataclass
class BaseRow:
    """One baseline request."""

    latency_ms: float
    prompt_tokens: int
    evaluated: int
    generated: int


def run_baseline(model_path: str, context: int, threads: int, script: Script, n: int) -> list:
    """Each keystroke's plain PSM prompt straight to one Llama; windows fixed per line."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path,
        n_ctx=context + 512,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )

    def tokens(text: str) -> list[int]:
        return llm.tokenize(text.encode(), add_bos=False, special=False)

    rows: list[BaseRow] = []
    line_cache: dict[str, int] = {}

    def cost(line: str) -> int:
        if line not in line_cache:
            line_cache[line] = len(tokens(line))
        return line_cache[line]

    for k in range(n + 1):
        text, offset = script.text(k), script.offset(k)
        line_start = text.rfind("\n", 0, offset) + 1
        # 3/4 of the budget above the cursor line, 1/4 below, whole lines.
        above = text[:line_start].splitlines(keepends=True)
        below = text[offset:].splitlines(keepends=True)
        budget_above, budget_below = context * 3 // 4, context - context * 3 // 4
        pre: list[str] = []
        used = 0
        for line in reversed(above):
            if used + cost(line) > budget_above:
                break
            pre.append(line)
            used += cost(line)
        suf: list[str] = []
        used = 0
        for line in below:
            if used + cost(line) > budget_below:
                break
            suf.append(line)
            used += cost(line)
        prefix = "".join(reversed(pre)) + text[line_start:offset]
        suffix = "".join(suf)
        prompt = (
            llm.tokenize(b"<|fim_prefix|>", add_bos=False, special=True)
            + tokens(prefix)
            + llm.tokenize(b"<|fim_suffix|>", add_bos=False, special=True)
            + tokens(suffix)
            + llm.tokenize(b"<|fim_middle|>", add_bos=False, special=True)
        )
        held = list(llm.input_ids[: llm.n_tokens])
        common = 0
        for a, b in zip(held, prompt, strict=False):
            if a != b:
                break
            common += 1
        t0 = time.perf_counter()
        out = llm.create_completion(
            prompt, max_tokens=LINE_TOKENS, temperature=0.0, stop=["\n"], seed=0
        )
        latency = (time.perf_counter() - t0) * 1000
        usage = out["usage"]
        rows.append(
            BaseRow(
                latency,
                usage["prompt_tokens"],
                len(prompt) - min(common, len(prompt) - 1),
                usage["completion_tokens"],
            )
        )
    llm.close()
    return rows


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize_server(run: Run) -> dict[str, Any]:
    """One table row for a server run (the cold first request left out)."""
    # A follow-up (a background run finishing an answer a time limit cut short) has the
    # version of the request it finishes; that request's own figures are the ones wanted.
    by_version = {s["version"]: s for s in run.stats if not s.get("follow_up")}
    rows = []
    for i, sent in enumerate(run.sent):
        if run.mode == "sequential" and i == 0:
            continue
        st = by_version.get(sent.version)
        rows.append((sent, st))
    answered = [(s, st) for s, st in rows if not s.cancelled and s.answered is not None]
    latency = [(s.answered - s.sent) * 1000 for s, _ in answered]  # type: ignore[operator]
    engine = [st for _, st in rows if st is not None]
    model = [st for st in engine if st["cache"] == "miss" and st["prompt_tokens"]]
    hits = [st for st in engine if st["cache"] in ("typed", "exact")]
    within_line = [
        st
        for (s, st) in rows
        if st is not None and st in model and "\n" not in s.key and s.key != ""
    ]
    return {
        "mode": run.mode,
        "context": run.context,
        "requests": len(rows),
        "answered": len(answered),
        "cancelled": sum(1 for s, _ in rows if s.cancelled),
        "shown": sum(1 for s, _ in answered if s.text),
        "p50_ms": pct(latency, 0.5),
        "p95_ms": pct(latency, 0.95),
        "miss_p50_ms": pct(
            [
                (s.answered - s.sent) * 1000  # type: ignore[operator]
                for s, st in answered
                if st is not None and st["cache"] == "miss" and st["prompt_tokens"]
            ],
            0.5,
        ),
        "own_p50_ms": pct([st["own_ms"] for st in engine if st["outcome"] != "cancelled"], 0.5),
        "prompt_tokens": statistics.mean([st["prompt_tokens"] for st in model] or [0]),
        "evaluated_mean": statistics.mean([st["evaluated_tokens"] for st in model] or [0]),
        "evaluated_in_line_mean": statistics.mean(
            [st["evaluated_tokens"] for st in within_line] or [0]
        ),
        "generated_mean": statistics.mean([st["generated_tokens"] for st in model] or [0]),
        "hit_rate": len(hits) / max(1, len(engine)),
        "hit_p95_ms": pct([st["total_ms"] for st in hits], 0.95),
        "max_queue": run.max_waiting,
        "rss_mb": run.rss_kb / 1024,
        "cold_ms": (
            (run.sent[0].answered - run.sent[0].sent) * 1000  # type: ignore[operator]
            if run.mode == "sequential"
            else float("nan")
        ),
    }


def summarize_baseline(rows: list[BaseRow], context: int) -> dict[str, Any]:
    """One table row for the baseline (the cold first request left out)."""
    warm = rows[1:]
    return {
        "mode": "baseline",
        "context": context,
        "requests": len(warm),
        "p50_ms": pct([r.latency_ms for r in warm], 0.5),
        "p95_ms": pct([r.latency_ms for r in warm], 0.95),
        "prompt_tokens": statistics.mean([r.prompt_tokens for r in warm] or [0]),
        "evaluated_mean": statistics.mean([r.evaluated for r in warm] or [0]),
        "generated_mean": statistics.mean([r.generated for r in warm] or [0]),
        "cold_ms": rows[0].latency_ms if rows else float("nan"),
    }


def print_tables(rows: list[dict[str, Any]], model_size_mb: float) -> None:
    """Print the figures as Markdown tables."""
    cols = [
        ("context", "ctx", "{:d}"),
        ("mode", "mode", "{}"),
        ("requests", "req", "{:d}"),
        ("answered", "answered", "{}"),
        ("cancelled", "cancelled", "{}"),
        ("shown", "shown", "{}"),
        ("p50_ms", "p50 ms", "{:.0f}"),
        ("p95_ms", "p95 ms", "{:.0f}"),
        ("miss_p50_ms", "model p50 ms", "{:.0f}"),
        ("own_p50_ms", "own p50 ms", "{:.1f}"),
        ("prompt_tokens", "prompt tok", "{:.0f}"),
        ("evaluated_mean", "eval tok mean", "{:.1f}"),
        ("evaluated_in_line_mean", "eval in-line", "{:.1f}"),
        ("generated_mean", "gen tok", "{:.1f}"),
        ("hit_rate", "cache hits", "{:.0%}"),
        ("hit_p95_ms", "hit p95 ms", "{:.1f}"),
        ("max_queue", "max queue", "{}"),
        ("cold_ms", "cold ms", "{:.0f}"),
        ("rss_mb", "RSS MB", "{:.0f}"),
    ]
    print("| " + " | ".join(c[1] for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        cells = []
        for key, _, fmt in cols:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        print("| " + " | ".join(cells) + " |")
    print()
    seq = {r["context"]: r for r in rows if r["mode"] == "sequential"}
    base = {r["context"]: r for r in rows if r["mode"] == "baseline"}
    print("| ctx | server p50 ms | server p50 ms, model runs only | baseline p50 ms | ratios |")
    print("|---|---|---|---|---|")
    for ctx in sorted(seq):
        if ctx in base:
            server_p50, model_p50 = seq[ctx]["p50_ms"], seq[ctx]["miss_p50_ms"]
            base_p50 = base[ctx]["p50_ms"]
            print(
                f"| {ctx} | {server_p50:.0f} | {model_p50:.0f} | {base_p50:.0f} | "
                f"{server_p50 / base_p50:.3f}x / {model_p50 / base_p50:.3f}x |"
            )
    if len(seq) > 1:
        lo, hi = min(seq), max(seq)
        growth = seq[hi]["p50_ms"] / seq[lo]["p50_ms"] - 1
        model_growth = seq[hi]["miss_p50_ms"] / seq[lo]["miss_p50_ms"] - 1
        print(
            f"\nserver p50 growth {lo} -> {hi} prompt tokens: {growth:+.0%} "
            f"(model runs only: {model_growth:+.0%})"
        )
    rss = max((r.get("rss_mb") or 0) for r in rows)
    print(f"server RSS (largest run): {rss:.0f} MB; model file {model_size_mb:.0f} MB; ")
    print(f"RSS - model file: {rss - model_size_mb:.0f} MB")


async def main_async(args: argparse.Namespace) -> None:
    from lsp_server.registry import resolve_model

    model_path = str(resolve_model(args.model).path)
    model_mb = os.path.getsize(model_path) / 2**20
    script = make_script(max(args.keystrokes, args.baseline_keystrokes))
    rows: list[dict[str, Any]] = []
    for context in args.contexts:
        bench = Bench(model_path, context, args.threads)
        await bench.start()
        try:
            modes = [
                m for m in args.modes if m == "sequential" or context in args.realtime_contexts
            ]
            for mode in modes:
                t0 = time.perf_counter()
                if mode == "sequential":
                    run = await run_sequential(bench, script, args.keystrokes)
                else:
                    run = await run_realtime(
                        bench, script, args.keystrokes, DEBOUNCE_S if mode == "debounce" else None
                    )
                row = summarize_server(run)
                rows.append(row)
                print(f"# {context} {mode}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
                print(json.dumps(row), file=sys.stderr)
        finally:
            await bench.stop()
        if args.baseline_keystrokes:
            t0 = time.perf_counter()
            base = run_baseline(model_path, context, args.threads, script, args.baseline_keystrokes)
            rows.append(summarize_baseline(base, context))
            print(f"# {context} baseline: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            print(json.dumps(rows[-1]), file=sys.stderr)
    print_tables(rows, model_mb)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


def main() -> None:
    """Command line."""
    if "--serve" in sys.argv:
        serve()
        return
    if "--report" in sys.argv:  # --report FILE.json [FILE.json …]: tables from saved runs
        rows = []
        for name in sys.argv[sys.argv.index("--report") + 1 :]:
            rows += json.loads(Path(name).read_text(encoding="utf-8"))
        from lsp_server.registry import resolve_model

        model_mb = os.path.getsize(resolve_model("qwen2.5-coder-0.5b").path) / 2**20
        print_tables(rows, model_mb)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument(
        "--contexts", type=lambda s: [int(x) for x in s.split(",")], default=[1024, 2048, 4096]
    )
    p.add_argument(
        "--modes",
        type=lambda s: s.split(",") if s else [],
        default=["sequential", "typing", "debounce"],
        help="sequential, typing (no debounce), debounce (150 ms)",
    )
    p.add_argument(
        "--realtime-contexts", type=lambda s: [int(x) for x in s.split(",")], default=[2048]
    )
    p.add_argument("--keystrokes", type=int, default=40)
    p.add_argument("--baseline-keystrokes", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
