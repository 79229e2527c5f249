"""Time to ghost text in the real editors, with the real model and default settings.

What a user waits for: from the moment they stop typing to the moment ghost text shows.
Each editor is driven exactly as its end-to-end test drives it (the shared drivers in
tests/editors/drivers.py and tests/editors/vscode.py, nothing copied), with
Qwen2.5-Coder-0.5B and the client's default debounce / idle delay and VS Code's default
settings (no ``nThreads``, no quick-suggestions tweaks):

* ``vscode``: code-server (VS Code's workbench) in headless Chromium, the packaged
  extension; the ``midword`` scenario of tests/editors/vscode_e2e.mjs;
* ``nvim-0.11``, ``nvim-0.12``, ``emacs-28``, ``emacs-30``: the headless editors; the
  ``midword_real`` scenario of editors/nvim/test/e2e.lua / editors/emacs/test/e2e.el.

Two figures per run, on a small two-file Python package:

* **mid-word**: in a function body, ``ret`` typed one key per 150 ms on an indented empty
  line; the time runs from the last key to the ghost text;
* **line start**: the time from arriving on an empty indented body line (Neovim: ``A``
  at its end; Emacs: ``C-e``; VS Code: Enter after a new ``def`` line) to the ghost text.
  Neovim and Emacs measure it as the first completion after the model is ready, before
  the mid-word one; VS Code after it (the scenarios are the tests').

Each editor run starts a fresh server (the model loads before any key is typed; the load
is not counted). Runs go round robin over the editors so the machine's drift hits all
alike. ``--busy`` runs every round again beside one busy CPU loop (tests/cpuload.py: a
program started elsewhere, competing as an equal) and adds a "busy" row per figure, with
its ratio to the same run's quiet median: the quiet row is the baseline.

Run (normally, not at low priority: it measures latency; a quiet machine gives the figures
worth quoting)::

    .venv/bin/python -m bench.ghost                          # every editor, 3 runs, ~15 min
    .venv/bin/python -m bench.ghost --runs 5 --busy --json /tmp/ghost.json
    .venv/bin/python -m bench.ghost --editors nvim-0.12 emacs-30 --runs 1

It prints a table (median and max per editor and scenario); it is not a pass/fail test.
A run that fails (no ghost text within the scenario's limit) is counted and its error
printed; the figures are over the runs that succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402  (the drivers report a missing editor as pytest's skip)

from tests.cpuload import busy_loop  # noqa: E402
from tests.editors import vscode  # noqa: E402
from tests.editors.drivers import (  # noqa: E402
    EMACS_VERSIONS,
    NVIM_VERSIONS,
    DriverError,
    Editor,
    drive,
    make_workspace,
    real_model_path,
)

EDITORS = ["vscode"] + [f"nvim-{v}" for v in NVIM_VERSIONS] + [f"emacs-{v}" for v in EMACS_VERSIONS]
SCENARIOS = ("mid-word", "line start")
EDITOR_TIMEOUT_S = 300
"""One headless Neovim / Emacs run (model load, two completions, accepts) ends by then."""
VSCODE_TIMEOUT_S = 420
GHOST_TIMEOUT_MS = 120_000
"""VS Code: how long the scenario waits for each ghost text (as the real-model test)."""


@dataclass
class Run:
    """One editor run: its two figures (seconds) or the error that stopped it."""

    editor: str
    condition: str
    round: int
    midword_s: float | None = None
    linestart_s: float | None = None
    ghost: str = ""
    error: str = ""
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def label(editor: str) -> str:
    """``nvim-0.12`` → ``Neovim 0.12``, ``vscode`` → ``VS Code``."""
    if editor == "vscode":
        return "VS Code"
    kind, version = editor.split("-", 1)
    return Editor(kind, version).label  # type: ignore[arg-type]


def run_headless(editor: str, model: Path, work: Path) -> dict[str, Any]:
    """One ``midword_real`` scenario in a headless Neovim / Emacs; its two figures in ms."""
    kind, version = editor.split("-", 1)
    ws = make_workspace(work, model)
    data = drive(
        Editor(kind, version),  # type: ignore[arg-type]
        "midword_real",
        ws,
        model=str(model),
        timeout_s=EDITOR_TIMEOUT_S,
    )
    return {"midword_ms": data["midword_ms"], "linestart_ms": data["linestart_ms"], **data}


def run_vscode(cs: vscode.CodeServer, name: str) -> dict[str, Any]:
    """One ``midword`` scenario in VS Code (a new window, so a new server); figures in ms."""
    ws = vscode.project(
        cs.root,
        name,
        {"coderLsp.serverPath": str(vscode.SERVER), "coderLsp.model": vscode.REAL_MODEL},
    )
    data = vscode.drive(
        cs,
        "midword",
        ws,
        timeout=VSCODE_TIMEOUT_S,
        name=name,
        file="ops.py",
        header="def add(a, b):",
        prefix="ret",
        keyDelayMs=150,
        header2="def mul(a, b):",
        ghostTimeoutMs=GHOST_TIMEOUT_MS,
        diskFile=str(ws / "ops.py"),
    )
    if not data.get("ghost2"):
        raise AssertionError(f"no ghost text at the line start; log: {data.get('log')}")
    return {"midword_ms": data["midwordMs"], "linestart_ms": data["lineStartMs"], **data}


def measure(editor: str, condition: str, rnd: int, go: Callable[[], dict[str, Any]]) -> Run:
    """Run ``go`` once, beside a busy loop when ``condition`` is ``busy``; never raises."""
    run = Run(editor, condition, rnd, load_before=list(os.getloadavg()))
    t0 = time.monotonic()
    with busy_loop() if condition == "busy" else contextlib.nullcontext():
        try:
            data = go()
            run.midword_s = data["midword_ms"] / 1000
            run.linestart_s = data["linestart_ms"] / 1000
            run.ghost = str(data.get("ghost", ""))
        except (DriverError, AssertionError, OSError, KeyError) as err:
            run.error = str(err)[:2000]
        except pytest.skip.Exception as err:  # the editor is not installed
            run.error = f"unavailable: {err}"
    run.wall_s = time.monotonic() - t0
    run.load_after = list(os.getloadavg())
    return run


@contextlib.contextmanager
def maybe_code_server(wanted: bool, root: Path) -> Iterator[vscode.CodeServer | None]:
    """A running code-server with the packaged extension when VS Code is measured; None
    (its runs then fail, saying why) when not wanted or its tools are not installed."""
    if not wanted:
        yield None
        return
    try:
        tools = vscode.find_tools()
    except pytest.skip.Exception as err:
        print(f"VS Code: {err}", file=sys.stderr)
        yield None
        return
    with vscode.running_code_server(tools, root) as cs:
        yield cs


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """Median and max per editor, scenario and condition; busy rows get busy/quiet."""
    rows: list[dict[str, Any]] = []
    editors = list(dict.fromkeys(r.editor for r in runs))
    conditions = list(dict.fromkeys(r.condition for r in runs))
    for editor in editors:
        for scenario, attr in zip(SCENARIOS, ("midword_s", "linestart_s"), strict=True):
            quiet_median = None
            for condition in conditions:
                mine = [r for r in runs if r.editor == editor and r.condition == condition]
                values = [getattr(r, attr) for r in mine if getattr(r, attr) is not None]
                row: dict[str, Any] = {
                    "editor": label(editor),
                    "scenario": scenario,
                    "condition": condition,
                    "runs": len(mine),
                    "failed": sum(1 for r in mine if r.error),
                    "median_s": statistics.median(values) if values else None,
                    "max_s": max(values) if values else None,
                    "ratio": None,
                }
                if condition == "quiet":
                    quiet_median = row["median_s"]
                elif quiet_median and row["median_s"] is not None:
                    row["ratio"] = row["median_s"] / quiet_median
                rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], runs: list[Run]) -> None:
    """The summary table, then each failed run's error and the load seen."""

    def fmt(v: float | None, spec: str = ".2f") -> str:
        return "-" if v is None else format(v, spec)

    print(
        f"{'editor':<12} {'scenario':<11} {'machine':<8} {'runs':>4} {'failed':>6} "
        f"{'median s':>9} {'max s':>7} {'vs quiet':>9}"
    )
    for r in rows:
        ratio = "" if r["ratio"] is None else f"x{r['ratio']:.2f}"
        print(
            f"{r['editor']:<12} {r['scenario']:<11} {r['condition']:<8} {r['runs']:>4} "
            f"{r['failed']:>6} {fmt(r['median_s']):>9} {fmt(r['max_s']):>7} {ratio:>9}"
        )
    loads = [r.load_before[0] for r in runs] + [r.load_after[0] for r in runs]
    if loads:
        print(f"load average (1 min) seen around the runs: {min(loads):.1f}-{max(loads):.1f}")
    for r in runs:
        if r.error:
            first = r.error.strip().splitlines()[0] if r.error.strip() else "?"
            print(f"FAILED {label(r.editor)} {r.condition} round {r.round}: {first}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every round, print the table (and write JSON if asked)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--editors", nargs="+", choices=EDITORS, default=EDITORS)
    p.add_argument("--runs", type=int, default=3, help="runs per editor and condition")
    p.add_argument("--busy", action="store_true", help="also run beside one busy CPU loop")
    p.add_argument("--json", type=Path, help="write every run and the summary here")
    args = p.parse_args(argv)
    try:
        model = real_model_path()
    except pytest.skip.Exception as err:  # not pulled yet: say how
        print(f"bench/ghost.py: {err}", file=sys.stderr)
        return 2
    conditions = ["quiet", "busy"] if args.busy else ["quiet"]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="coder-lsp-ghost-") as tmp:
        work = Path(tmp)
        with maybe_code_server("vscode" in args.editors, work / "vscode") as cs:
            for condition in conditions:
                for rnd in range(args.runs):
                    for editor in args.editors:
                        name = f"{editor}-{condition}-{rnd}"
                        if editor == "vscode":

                            def go(cs: vscode.CodeServer | None = cs, name: str = name) -> dict:
                                if cs is None:
                                    raise OSError("unavailable: the VS Code e2e tools are missing")
                                return run_vscode(cs, name)

                        else:

                            def go(editor: str = editor, name: str = name) -> dict:
                                return run_headless(editor, model, work / name)

                        run = measure(editor, condition, rnd, go)
                        runs.append(run)
                        shown = (
                            f"mid-word {run.midword_s:.1f} s, line start {run.linestart_s:.1f} s"
                            if not run.error
                            else "FAILED"
                        )
                        print(
                            f"  {label(editor)} {condition} #{rnd + 1}: {shown} "
                            f"(load {run.load_before[0]:.1f})",
                            file=sys.stderr,
                            flush=True,
                        )
    rows = summarize(runs)
    print_table(rows, runs)
    if args.json:
        args.json.write_text(
            json.dumps({"summary": rows, "runs": [asdict(r) for r in runs]}, indent=1)
        )
    # A failed run is a finding, not a figure: say so in the exit status too.
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
