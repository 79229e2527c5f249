"""A short, seeded, bounded fuzz run against a real server process (the long run is
``bench/fuzz.py``): see :mod:`tests.fuzzlsp` for the grammar and the invariants."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tests.fuzzlsp import Figures, Fuzzer, sequences


def test_fuzz_every_request_answered_known_document_completes(tiny_model_path: Path):
    loop = asyncio.new_event_loop()
    figures = Figures()
    fuzzer = Fuzzer(tiny_model_path, figures)
    loop.run_until_complete(fuzzer.start())
    try:

        @seed(16)
        @settings(
            max_examples=250,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(sequences)
        def check(sequence):
            loop.run_until_complete(fuzzer.run(sequence))

        check()
    finally:
        loop.run_until_complete(fuzzer.close())
        loop.close()
    print(figures.summary())
    assert figures.failures == 0, "\n".join(figures.problems[:5])
    assert figures.messages > 1500
    assert figures.rss_end_kb - figures.rss_start_kb < 50 * 1024
