"""Multi-user benchmark: N users, each with their own ``coder-lsp --stdio``, one llama-server.

For N in 1, 2, 4, 8 the benchmark starts one llama-server with ``-np N`` (``-t THREADS``,
``-c N*CTX``: each slot holds CTX tokens) and N real server processes started exactly as
other tools start them::

    coder-lsp --stdio --backend llama-server --url http://127.0.0.1:P --slot I

(``--slot I`` pins user I to slot I, so each user keeps its own prompt cache; ``--no-slots``
lets the engine choose). Each user types a different method of the Python standard
library's argparse.py into its own document, one keystroke at a time (didChange, then
inlineCompletion, waiting for the answer: the latency of every keystroke), all users at
once. Per request figures come from each server's ``coder-lsp.stats`` command
(``evaluated_tokens`` is llama-server's ``timings.prompt_n``: prompt tokens the engine had
to evaluate, i.e. not found in the slot's cache).

It reports per N: per-keystroke p50/p95 (the first, cold request of each user left out),
the p50 ratio against N = 1 in the same run, evaluated tokens per engine request, the
engine's generated tokens per second of wall time, and errors (failed requests, a
``failed`` status, answers without a generation). Then, for one user with the same model
and threads, the in-process backend against llama-server: p50s and the server's own time
(total minus waiting minus model time), whose difference is the remote path's overhead
(HTTP, local tokenizing, stream parsing).

Run::

    .venv/bin/python bench/multiuser.py                    # N = 1,2,4,8, 24 keys, -t 2
    .venv/bin/python bench/multiuser.py --users 1,4 --keys 12 --threads 1

It prints tables; it is not a pass/fail test. Each user's typing is capped (``--keys``)
so the whole matrix stays within ~15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import Script, line_col, make_script, pct  # noqa: E402

METHODS = (
    "    def _parse_known_args(self, arg_strings, namespace):\n",
    "    def _get_values(self, action, arg_strings):\n",
    "    def _parse_optional(self, arg_string):\n",
    "    def add_argument(self, *args, **kwargs):\n",
    "    def _match_argument(self, action, arg_strings_pattern):\n",
    "    def _get_option_tuples(self, option_string):\n",
    "    def format_help(self):\n",
    "    def _get_optional_kwargs(self, *args, **kwargs):\n",
)
"""One method per user: each types different real code."""
VERBOSE = False
DEV_CACHE = Path(os.environ.get("CODER_LSP_DEV_CACHE", Path.home() / ".cache/coder-lsp-dev"))


@dataclass
class User:
    """One simulated user: a server process, a document and its keystroke latencies."""

    index: int
    script: Script
    client: Any = None
    uri: str = ""
    version: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    stats: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""

    async def start(self, cmd: list[str], options: dict[str, Any]) -> None:
        from pytest_lsp import ClientServerConfig, client_capabilities

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.client = await ClientServerConfig(server_command=cmd, server_env=env).start()
        await self.client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                initialization_options=options,
            )
        )
        deadline = time.monotonic() + 180
        while True:
            status = await self.command("coder-lsp.status")
            if status["state"] in ("ready", "failed") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        if status["state"] != "ready":
            raise SystemExit(f"user {self.index}: {status}")
        self.uri = f"file:///tmp/coder-lsp-bench/user{self.index}/argparse_copy.py"

    async def command(self, name: str, *args: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        )

    async def type_all(self) -> None:
        """Open the document, then each keystroke: change, request, wait for the answer."""
        s = self.script
        self.version += 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=self.uri, language_id="python", version=self.version, text=s.text(0)
                )
            )
        )
        for k in range(len(s.keys) + 1):
            if k:
                self.version += 1
                line, col = line_col(s.text(k - 1), s.offset(k - 1))
                pos = types.Position(line=line, character=col)
                self.client.text_document_did_change(
                    types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(
                            uri=self.uri, version=self.version
                        ),
                        content_changes=[
                            types.TextDocumentContentChangePartial(
                                range=types.Range(start=pos, end=pos), text=s.keys[k - 1]
                            )
                        ],
                    )
                )
            line, col = line_col(s.text(k), s.offset(k))
            params = types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri),
                position=types.Position(line=line, character=col),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
            sent = time.perf_counter()
            try:
                await self.client.text_document_inline_completion_async(params)
            except Exception:  # an LSP error is an error of the run, counted
                self.errors += 1
            self.latencies.append((time.perf_counter() - sent) * 1000)

    async def finish(self) -> None:
        got = await self.command("coder-lsp.stats", 0)
        self.stats = got["requests"]
        self.status = (await self.command("coder-lsp.status"))["state"]
        await self.client.shutdown_session()
        await self.client.stop()


def model_path() -> Path:
    from lsp_server.registry import load_registry, local_path

    return local_path(load_registry().get("qwen2.5-coder-0.5b"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_llama_server(slots: int, ctx: int, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    """llama-server (scripts/install-llama-server.sh) with ``-np slots``."""
    binary = DEV_CACHE / "bin" / "llama-server"
    if not binary.exists():
        raise SystemExit(f"{binary} missing: run scripts/install-llama-server.sh")
    port = free_port()
    cmd = [str(binary), "-m", str(model_path()), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["-t", str(threads), "-np", str(slots), "-c", str(ctx * slots)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit("llama-server exited")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("llama-server never became ready")
        time.sleep(0.1)


def options(ctx: int) -> dict[str, Any]:
    # No repository context (the benchmark's documents are not in a workspace); the
    # default time limits stay, as a user would have them.
    return {"nCtx": ctx, "logLevel": "warning", "repoContext": False}


def summarize(users: list[User], wall_s: float) -> dict[str, Any]:
    """Figures of one run over every user (each user's cold first request left out)."""
    latency = [ms for u in users for ms in u.latencies[1:]]
    stats = [st for u in users for st in u.stats if not st.get("follow_up")]  # requests only
    engine = [st for st in stats if st["cache"] == "miss" and st["prompt_tokens"]]
    unanswered = [st for st in stats if st["outcome"] == "empty" and not st["prompt_tokens"]]
    errors = sum(u.errors for u in users) + sum(u.status != "ready" for u in users)
    return {
        "users": len(users),
        "keystrokes": len(latency),
        "p50_ms": pct(latency, 0.5),
        "p95_ms": pct(latency, 0.95),
        "miss_p50_ms": pct([st["total_ms"] for st in engine], 0.5),
        "engine_requests": len(engine),
        "evaluated_mean": statistics.mean([st["evaluated_tokens"] for st in engine] or [0]),
        "evaluated_p95": pct([float(st["evaluated_tokens"]) for st in engine], 0.95),
        "prompt_tokens": statistics.mean([st["prompt_tokens"] for st in engine] or [0]),
        "generated_per_s": sum(st["generated_tokens"] for st in stats) / max(wall_s, 1e-9),
        "own_p50_ms": pct([st["own_ms"] for st in engine], 0.5),
        "model_p50_ms": pct([st["llama_ms"] for st in engine], 0.5),
        "errors": errors + len(unanswered),
        "wall_s": wall_s,
    }


async def run_users(cmds: list[list[str]], scripts: list[Script], ctx: int) -> dict[str, Any]:
    users = [User(i, scripts[i]) for i in range(len(cmds))]
    await asyncio.gather(*(u.start(cmd, options(ctx)) for u, cmd in zip(users, cmds, strict=True)))
    started = time.perf_counter()
    await asyncio.gather(*(u.type_all() for u in users))
    wall = time.perf_counter() - started
    for u in users:
        await u.finish()
        if VERBOSE:
            for st in u.stats:
                print(
                    f"user {u.index}: {st['cache']} {st['outcome']} prompt {st['prompt_tokens']} "
                    f"evaluated {st['evaluated_tokens']} generated {st['generated_tokens']} "
                    f"total {st['total_ms']:.0f} ms model {st['llama_ms']:.0f} ms",
                    file=sys.stderr,
                )
    return summarize(users, wall)


def server_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "lsp_server", "--stdio", *extra]


async def main_async(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.users.split(",")]
    scripts = [make_script(args.keys, METHODS[i % len(METHODS)]) for i in range(max(counts))]
    rows: list[dict[str, Any]] = []
    for n in counts:
        proc, url = start_llama_server(n, args.ctx, args.threads)
        try:
            cmds = [
                server_cmd(
                    "--backend",
                    "llama-server",
                    "--url",
                    url,
                    *([] if args.no_slots else ["--slot", str(i)]),
                )
                for i in range(n)
            ]
            row = await run_users(cmds, scripts, args.ctx)
        finally:
            proc.kill()
            proc.wait()
        rows.append(row)
        print(f"N={n}: p50 {row['p50_ms']:.0f} ms, errors {row['errors']}", file=sys.stderr)
    base = rows[0]["p50_ms"] if rows else float("nan")
    print(
        f"\n## Multi-user: one llama-server (-np N, -t {args.threads}, {args.ctx} tokens/slot), "
        f"{'engine-chosen slots' if args.no_slots else 'one slot per user (--slot)'}\n"
    )
    print(
        "| users | keystrokes | p50 ms | p95 ms | p50 / 1-user | engine p50 ms | engine requests | "
        "evaluated/request (mean, p95) | prompt tokens | generated tok/s | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['users']} | {r['keystrokes']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
            f"{r['p50_ms'] / base:.2f} | {r['miss_p50_ms']:.0f} | {r['engine_requests']} | "
            f"{r['evaluated_mean']:.1f}, {r['evaluated_p95']:.0f} | {r['prompt_tokens']:.0f} | "
            f"{r['generated_per_s']:.1f} | {r['errors']} |"
        )
    if args.skip_overhead:
        return
    # One user: in-process against llama-server, same model, threads and script.
    proc, url = start_llama_server(1, args.ctx, args.threads)
    try:
        remote = await run_users(
            [server_cmd("--backend", "llama-server", "--url", url, "--slot", "0")],
            scripts[:1],
            args.ctx,
        )
    finally:
        proc.kill()
        proc.wait()
    local = await run_users(
        [server_cmd("--model", str(model_path()), "--n-threads", str(args.threads))],
        scripts[:1],
        args.ctx,
    )
    print(f"\n## One user: in-process against llama-server (-t {args.threads} both)\n")
    print("| backend | p50 ms | p95 ms | model p50 ms | own p50 ms | evaluated/request | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("in-process", local), ("llama-server", remote)):
        print(
            f"| {name} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['model_p50_ms']:.0f} | "
            f"{r['own_p50_ms']:.1f} | {r['evaluated_mean']:.1f} | {r['errors']} |"
        )
    print(
        f"\nremote path's own overhead (own p50, llama-server minus in-process): "
        f"{remote['own_p50_ms'] - local['own_p50_ms']:.1f} ms; "
        f"p50 ratio llama-server / in-process: {remote['p50_ms'] / local['p50_ms']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,2,4,8", help="user counts to run")
    parser.add_argument("--keys", type=int, default=24, help="keystrokes per user")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (-t)")
    parser.add_argument("--ctx", type=int, default=2048, help="context tokens per slot")
    parser.add_argument("--no-slots", action="store_true", help="let the engine pick slots")
    parser.add_argument("--skip-overhead", action="store_true", help="no 1-user comparison")
    parser.add_argument("--verbose", action="store_true", help="every request's figures")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
