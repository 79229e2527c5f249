"""Latency on a busy machine: completions while other work wants the CPU, per thread policy.

The benchmark starts a background load, runs completions with Qwen2.5-Coder-0.5B through
the server's own pipeline under each thread policy, stops the load, and moves on to the
next kind of load. Loads (``--loads``):

* ``none``: nothing else (the idle figure every ratio is taken against, same run);
* ``loop1`` / ``loop1-nice19``: one busy CPU loop at nice 0 / nice 19;
* ``loops`` / ``loops-nice19``: one busy loop per core;
* ``build-nice19``: a real parallel C build (a generated project, ``make -j<cores>`` with
  ``cc -O2``, over and over) at nice 19.

Loads run in a session of their own (``setsid``), as a build started in another terminal
does. On Linux with autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``)
that makes ``nice`` count only inside the load's own group: against the model's process
a nice-19 build weighs as much as a nice-0 one. ``--same-session`` keeps them in the
benchmark's group (nice then works). Every load process is in one process group that is
killed when the load ends, on errors and on Ctrl-C, and each is also bounded by
``timeout``.

Policies (``--policies``), each ``WAIT:THREADS``: WAIT is ``spin`` (libgomp's default, as
before this benchmark existed: waiting threads spin ``GOMP_SPINCOUNT=300000`` times before
they sleep) or ``passive`` (nothing set: the server's own ``OMP_WAIT_POLICY=PASSIVE``, set
by lsp_server.backends before llama.cpp loads); THREADS is a count, ``all`` (every CPU:
the default before this issue) or ``adaptive`` (lsp_server.backends.threads.AdaptiveThreads,
the default now). One worker process per WAIT loads the model once and runs its policies
in turns (round robin, the order rotated every round), so drift in the machine's own
noise hits all alike.

Requests: ``demo`` is ``scripts/try``'s completion (examples/demo.py, the empty line 7)
with the KV cache cleared first (the whole ~100-token prompt is evaluated); ``keys`` types
the expected line's first characters after it, one request per keystroke (each evaluates a
token or two and generates the rest of the line: the typing case).

Per load and policy it prints demo p50/p95, keystroke p50/p95, generated tokens/s (median
over demo requests), how many demo answers were the whole expected line, and each
figure's ratio to the same policy's ``none`` figure of the same run.

Run::

    nice -n 19 .venv/bin/python bench/busy.py                 # every load, ~10 min
    .venv/bin/python bench/busy.py --loads none,loop1 --rounds 4
    .venv/bin/python bench/busy.py --first                    # first completion, cold/warm
    .venv/bin/python bench/busy.py --report a.json b.json     # medians over saved runs

It prints tables; it is not a pass/fail test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import pct  # noqa: E402

DEMO = ROOT / "examples" / "demo.py"
DEMO_LINE, DEMO_COL = 7, 5  # 1-based, as scripts/try
EXPECTED = "return cleaned == cleaned[::-1]"
LOADS = ("none", "loop1", "loop1-nice19", "loops", "loops-nice19", "build-nice19")
POLICIES = ("spin:all", "spin:1", "spin:adaptive", "passive:all", "passive:adaptive")
LOAD_LIMIT_S = 600
"""No load process outlives this, whatever happens to the benchmark."""


def cpus() -> int:
    """CPUs this process may use."""
    from lsp_server.backends.threads import available_cpus

    return available_cpus()


# ---------------------------------------------------------------------------------------
# Background load
# ---------------------------------------------------------------------------------------

_C_FILE = """\
#include <math.h>
#include <string.h>
{functions}
double entry_{n}(double x) {{ double s = 0; {calls} return s; }}
"""
_C_FUNCTION = """\
static double f{n}_{i}(double x) {{
    double a[16]; memset(a, 0, sizeof a);
    for (int k = 0; k < 16; k++) a[k] = sin(x * k + {i}) * cos(x - k * {n});
    for (int r = 0; r < 4; r++) for (int k = 1; k < 16; k++) a[k] += a[k - 1] * 0.{i}1;
    return a[15] + (x > {i} ? f{n}_{prev}(x - 1) : 0);
}}
"""


def write_c_project(root: Path, files: int = 24, functions: int = 60) -> None:
    """A C project whose files each take a fraction of a second to compile at -O2."""
    objs = []
    for n in range(files):
        body = []
        for i in range(functions):
            prev = i - 1 if i else 0
            text = _C_FUNCTION.format(n=n, i=i, prev=prev)
            if i == 0:
                text = text.replace(f"(x > 0 ? f{n}_0(x - 1) : 0)", "0")
            body.append(text)
        calls = " ".join(f"s += f{n}_{i}(x);" for i in range(functions))
        (root / f"unit{n}.c").write_text(
            _C_FILE.format(functions="".join(body), n=n, calls=calls), encoding="utf-8"
        )
        objs.append(f"unit{n}.o")
    (root / "Makefile").write_text(
        f"OBJS = {' '.join(objs)}\n"
        "all: $(OBJS)\n"
        "%.o: %.c\n\tcc -O2 -c $< -o $@\n"
        "clean:\n\trm -f $(OBJS)\n",
        encoding="utf-8",
    )


def _load_commands(kind: str, workdir: Path) -> tuple[list[list[str]], int]:
    """The processes of load ``kind`` and their nice value."""
    nice = 19 if kind.endswith("-nice19") else 0
    base = kind.removesuffix("-nice19")
    loop = [sys.executable, "-c", "while True: pass"]
    if base == "none":
        return [], 0
    if base == "loop1":
        return [loop], nice
    if base == "loops":
        return [loop] * cpus(), nice
    if base == "build":
        write_c_project(workdir)
        script = f"while :; do make -s -j{cpus()} clean all >/dev/null 2>&1; done"
        return [["sh", "-c", script]], nice
    raise SystemExit(f"unknown load {kind!r}; known: {', '.join(LOADS)}")


@contextlib.contextmanager
def background_load(kind: str, *, same_session: bool = False) -> Iterator[None]:
    """Run load ``kind`` for the duration of the block; always stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="coder-lsp-load-") as tmp:
        commands, nice = _load_commands(kind, Path(tmp))
        procs: list[subprocess.Popen[bytes]] = []
        group: int | None = None

        def start_child() -> None:
            os.nice(nice)
            if same_session:
                os.setpgid(0, group or 0)  # one process group, the benchmark's autogroup
            else:
                os.setsid()  # a session of its own: own process group and autogroup

        try:
            for argv in commands:
                procs.append(
                    subprocess.Popen(
                        ["timeout", "-s", "KILL", str(LOAD_LIMIT_S), *argv],
                        cwd=tmp,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        preexec_fn=start_child,
                    )
                )
                if group is None:
                    group = procs[0].pid
            if procs:
                time.sleep(1.5)  # let the load reach its steady state
            yield
        finally:
            groups = {group} if same_session else {proc.pid for proc in procs}
            for pgid in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
                    os.killpg(pgid, signal.SIGKILL)  # make, cc and the loops with it
            for proc in procs:
                proc.wait()


# ---------------------------------------------------------------------------------------
# Worker: one model, several policies in turns
# ---------------------------------------------------------------------------------------


def _policy(threads: str) -> Any:
    from lsp_server.backends.threads import AdaptiveThreads, FixedThreads

    if threads == "adaptive":
        return AdaptiveThreads(min(cpus(), 8))
    return FixedThreads(cpus() if threads == "all" else int(threads))


def worker(model: str, policies: list[str], rounds: int, keys: int, deadline_s: float) -> None:
    """Run ``rounds`` rounds of demo + keystroke requests per policy; JSON lines on stdout."""
    from lsp_server.backends.base import CancelToken
    from lsp_server.completion.pipeline import complete
    from lsp_server.core import CompletionRequest, DocumentSnapshot
    from lsp_server.engine import load_backend
    from lsp_server.languages import language_for
    from lsp_server.positions import UTF32, offset_at
    from lsp_server.settings import Settings
    from lsp_server.syntax import parse

    started = time.perf_counter()
    settings = Settings(model=model)
    backend: Any = load_backend(settings)
    load_s = time.perf_counter() - started
    openmp = {k: os.environ.get(k, "") for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    print(json.dumps({"load_s": load_s, "openmp": openmp}), flush=True)
    text = DEMO.read_text(encoding="utf-8")
    offset = offset_at(text, DEMO_LINE - 1, DEMO_COL - 1, UTF32)
    path = str(DEMO)
    language = language_for("python", path)

    def run(doc_text: str, at: int) -> tuple[float, Any]:
        doc = DocumentSnapshot(DEMO.as_uri(), doc_text, "python", 1, path)
        tree = parse(doc_text, language) if language else None
        t0 = time.perf_counter()
        result = complete(
            CompletionRequest(doc, at, invoked=False), backend, settings, CancelToken(), tree=tree
        )
        return (time.perf_counter() - t0) * 1000, result

    states = {name: _policy(name.split(":")[1]) for name in policies}
    for r in range(rounds):
        order = policies[r % len(policies) :] + policies[: r % len(policies)]
        for name in order:
            if time.perf_counter() - started > deadline_s:
                print(json.dumps({"deadline": True}), flush=True)
                return
            backend.threads = states[name]
            backend._llama.reset()  # the whole prompt is evaluated, as on a first request
            ms, result = run(text, offset)
            gen = result.generation
            answer = result.completion.text if result.completion else ""
            row = {
                "policy": name,
                "kind": "demo",
                "ms": ms,
                "text": answer,
                "correct": answer.strip() == EXPECTED,
                "threads": backend._n_threads,
                "generated": gen.generated_tokens if gen else 0,
                "evaluated": gen.evaluated_tokens if gen else 0,
                "generate_ms": gen.generate_ms if gen else 0.0,
                "prompt_ms": gen.prompt_ms if gen else 0.0,
            }
            print(json.dumps(row), flush=True)
            for k in range(1, keys + 1):
                typed = EXPECTED[:k]
                ms, result = run(text[:offset] + typed + text[offset:], offset + k)
                gen = result.generation
                print(
                    json.dumps(
                        {
                            "policy": name,
                            "kind": "key",
                            "ms": ms,
                            "threads": backend._n_threads,
                            "generated": gen.generated_tokens if gen else 0,
                            "evaluated": gen.evaluated_tokens if gen else 0,
                        }
                    ),
                    flush=True,
                )


def run_workers(
    model: str, policies: list[str], rounds: int, keys: int, deadline_s: float
) -> list[dict[str, Any]]:
    """One worker per wait policy; their rows."""
    rows: list[dict[str, Any]] = []
    by_wait: dict[str, list[str]] = {}
    for p in policies:
        by_wait.setdefault(p.split(":")[0], []).append(p)
    for wait, names in by_wait.items():
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("OMP_WAIT_POLICY", None)
        env.pop("GOMP_SPINCOUNT", None)
        if wait == "spin":
            # libgomp's own default spin count: OpenMP as it was before lsp_server set
            # OMP_WAIT_POLICY (its quiet_openmp leaves the user's settings alone).
            env["GOMP_SPINCOUNT"] = "300000"
        elif wait != "passive":  # the server's own default: lsp_server sets it
            raise SystemExit(f"unknown wait policy {wait!r} (spin, passive)")
        argv = [
            sys.executable,
            __file__,
            "--worker",
            model,
            ",".join(names),
            str(rounds),
            str(keys),
            str(deadline_s),
        ]
        try:
            out = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=deadline_s + 120
            )
        except subprocess.TimeoutExpired as err:
            out_text = err.stdout if isinstance(err.stdout, str) else ""
            print(f"# worker {wait} timed out", file=sys.stderr)
        else:
            out_text = out.stdout
            if out.returncode:
                print(f"# worker {wait} failed: {out.stderr[-2000:]}", file=sys.stderr)
        for line in out_text.splitlines():
            if line.startswith("{"):
                rows.append({"wait": wait, **json.loads(line)})
    return rows


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def summarize(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """(load, policy) -> figures of one run."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    keys = {(r["load"], r["policy"]) for r in rows if "policy" in r}
    for load, policy in keys:
        mine = [r for r in rows if r.get("load") == load and r.get("policy") == policy]
        demo = [r for r in mine if r["kind"] == "demo"]
        key = [r for r in mine if r["kind"] == "key"]
        rates = [
            (r["generated"] - 1) / (r["generate_ms"] / 1000)
            for r in demo
            if r["generated"] > 2 and r["generate_ms"] > 0
        ]
        out[(load, policy)] = {
            "n": len(demo),
            "demo_p50": pct([r["ms"] for r in demo], 0.5),
            "demo_p95": pct([r["ms"] for r in demo], 0.95),
            "key_p50": pct([r["ms"] for r in key], 0.5),
            "key_p95": pct([r["ms"] for r in key], 0.95),
            "tok_s": statistics.median(rates) if rates else float("nan"),
            "correct": sum(1 for r in demo if r["correct"]) / max(1, len(demo)),
            "threads": statistics.mean([r["threads"] for r in demo]) if demo else float("nan"),
        }
    return out


def print_table(runs: list[list[dict[str, Any]]]) -> None:
    """Medians over runs of each figure and of its ratio to the same policy's idle figure."""
    per_run = [summarize(rows) for rows in runs]
    loads = [x for x in LOADS if any(k[0] == x for s in per_run for k in s)]
    policies = sorted({k[1] for s in per_run for k in s}, key=lambda p: (p.split(":")[0], p))

    def med(values: list[float]) -> float:
        values = [v for v in values if v == v]
        return statistics.median(values) if values else float("nan")

    print(f"runs: {len(runs)}; medians over runs; ratio = same policy's idle figure, same run\n")
    print(
        "| load | policy | demo p50 ms | p50 × idle | demo p95 ms | key p50 ms | key p50 × idle "
        "| key p95 ms | gen tok/s | tok/s × idle | whole line | mean threads |"
    )
    print("|" + "---|" * 12)
    for load in loads:
        for policy in policies:
            got = [s[(load, policy)] for s in per_run if (load, policy) in s]
            if not got:
                continue
            idle = [s.get(("none", policy)) for s in per_run if (load, policy) in s]

            def ratio(field: str, got: list[dict[str, float]] = got, idle: list = idle) -> float:
                return med([g[field] / i[field] for g, i in zip(got, idle, strict=True) if i])

            print(
                f"| {load} | {policy} | {med([g['demo_p50'] for g in got]):.0f} | "
                f"{ratio('demo_p50'):.2f} | {med([g['demo_p95'] for g in got]):.0f} | "
                f"{med([g['key_p50'] for g in got]):.0f} | {ratio('key_p50'):.2f} | "
                f"{med([g['key_p95'] for g in got]):.0f} | {med([g['tok_s'] for g in got]):.1f} | "
                f"{ratio('tok_s'):.2f} | {med([g['correct'] for g in got]):.0%} | "
                f"{med([g['threads'] for g in got]):.1f} |"
            )


# ---------------------------------------------------------------------------------------
# First completion after start (model load included)
# ---------------------------------------------------------------------------------------


def _evict(path: Path) -> str:
    """Drop ``path`` from the page cache; how it was done."""
    try:
        subprocess.run(["sync"], check=False)
        Path("/proc/sys/vm/drop_caches").write_text("3\n", encoding="ascii")
        return "drop_caches"
    except OSError:
        pass
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return "fadvise(DONTNEED) on the model file"


def first_completion(model: str, load: str, same_session: bool) -> None:
    """Time ``coder-lsp complete`` on the demo from a fresh process: cold, then warm cache."""
    from lsp_server.registry import resolve_model

    path = resolve_model(model).path
    exe = Path(sys.executable).with_name("coder-lsp")
    argv = [str(exe), "complete", f"{DEMO}:{DEMO_LINE}:{DEMO_COL}", "--model", model, "--json"]
    print(f"load {load}; {exe}")
    print("| cache | wall s | model load s | completion ms | text |")
    print("|---|---|---|---|---|")
    with background_load(load, same_session=same_session):
        for cache in ("cold", "warm", "warm"):
            how = _evict(path) if cache == "cold" else ""
            t0 = time.perf_counter()
            out = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            wall = time.perf_counter() - t0
            got = json.loads(out.stdout) if out.stdout.startswith("{") else {}
            print(
                f"| {cache}{' (' + how + ')' if how else ''} | {wall:.2f} | "
                f"{got.get('load_s', float('nan')):.2f} | {got.get('total_ms', float('nan')):.0f} "
                f"| `{got.get('completion', out.stderr[-200:])}` |"
            )


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def _machine_load() -> str:
    return Path("/proc/loadavg").read_text(encoding="ascii").strip()


def main() -> None:
    """Command line."""
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        model, names, rounds, keys, deadline = sys.argv[2:7]
        worker(model, names.split(","), int(rounds), int(keys), float(deadline))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b")
    p.add_argument("--loads", default=",".join(LOADS))
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--rounds", type=int, default=5, help="demo requests per policy and load")
    p.add_argument("--keys", type=int, default=3, help="keystroke requests after each demo")
    p.add_argument("--runs", type=int, default=1, help="repeat the whole matrix")
    p.add_argument("--deadline", type=float, default=120.0, help="seconds per worker, at most")
    p.add_argument("--same-session", action="store_true")
    p.add_argument("--json", default="")
    p.add_argument("--first", action="store_true", help="time the first completion instead")
    p.add_argument("--first-load", default="none")
    p.add_argument("--report", nargs="+", help="print the table of saved runs (--json files)")
    args = p.parse_args()
    if args.report:
        runs = []
        for name in args.report:
            runs += json.loads(Path(name).read_text(encoding="utf-8"))["runs"]
        print_table(runs)
        return
    if args.first:
        first_completion(args.model, args.first_load, args.same_session)
        return
    loads = args.loads.split(",")
    policies = args.policies.split(",")
    runs: list[list[dict[str, Any]]] = []
    machine = [_machine_load()]
    for run in range(args.runs):
        rows: list[dict[str, Any]] = []
        for load in loads:
            t0 = time.perf_counter()
            with background_load(load, same_session=args.same_session):
                got = run_workers(args.model, policies, args.rounds, args.keys, args.deadline)
            rows += [{"load": load, **r} for r in got]
            print(
                f"# run {run + 1} {load}: {time.perf_counter() - t0:.0f} s "
                f"(loadavg {_machine_load()})",
                file=sys.stderr,
            )
        runs.append(rows)
        machine.append(_machine_load())
    print(f"loadavg before and after each run: {machine}")
    print_table(runs)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "runs": runs}, indent=0), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
