"""Long fuzz run: random-but-framed LSP traffic against one real server process.

The grammar and the invariants are those of the CI test (``tests/fuzzlsp.py``): every
well-framed request answered exactly once with a result or an expected error code, no
internal error, no traceback sent to the client, the known document still completed
correctly after every sequence, the process alive. This run goes on until ``--messages``
messages were sent (the CI test sends about 1,800), seeding Hypothesis afresh for every
batch of sequences, and prints the figures, RSS growth included.

Run (the issue's target is 100,000 messages; on 2 shared cores, at nice 19)::

    nice -n 19 .venv/bin/python -m bench.fuzz --messages 100000
    .venv/bin/python -m bench.fuzz --messages 5000 --seed 7

It prints figures; it exits 1 when any invariant failed (the first problems are shown).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tests.fuzzlsp import Figures, Fuzzer, sequences
from tests.tinymodel import write_tiny_model


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer; 0 when no invariant failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=500, help="sequences per Hypothesis seed")
    parser.add_argument("--stop-after", type=int, default=20, help="stop after this many failures")
    args = parser.parse_args(argv)

    figures = Figures()
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        fuzzer = Fuzzer(write_tiny_model(Path(tmp) / "tiny.gguf"), figures)
        loop.run_until_complete(fuzzer.start())
        started = time.monotonic()
        batch_seed = args.seed
        try:
            while figures.messages < args.messages and figures.failures < args.stop_after:

                @seed(batch_seed)
                @settings(
                    max_examples=args.batch,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(sequences)
                def batch(sequence: list) -> None:
                    if figures.messages >= args.messages or figures.failures >= args.stop_after:
                        return
                    before = len(figures.problems)
                    loop.run_until_complete(fuzzer.run(sequence))
                    for problem in figures.problems[before:]:
                        print(f"PROBLEM: {problem[:3000]}", file=sys.stderr, flush=True)

                batch()
                batch_seed += 1
                elapsed = time.monotonic() - started
                print(
                    f"[{elapsed:6.0f} s] seed {batch_seed - 1}: {figures.summary()}",
                    file=sys.stderr,
                    flush=True,
                )
        except (TimeoutError, AssertionError) as err:  # the server died: stop here
            print(f"stopped: {err!r}", file=sys.stderr)
        finally:
            loop.run_until_complete(fuzzer.close())
            loop.close()
        elapsed = time.monotonic() - started
    print(
        f"fuzz: {figures.summary()} elapsed_s={elapsed:.0f} "
        f"messages_per_s={figures.messages / max(elapsed, 1e-9):.0f}"
    )
    for problem in figures.problems[:5]:
        print(f"  problem: {problem[:1000]}")
    return 1 if figures.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
