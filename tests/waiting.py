"""Waiting in tests for something that should happen soon, without timing it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

HANG_GUARD_S = 30.0
"""How long a test waits for something that should happen soon before it fails: a guard
against hangs, never a latency limit (timings belong to the benchmarks)."""


async def until(condition: Callable[[], object], what: str = "the condition") -> None:
    """Return once ``condition()`` holds (checked every 10 ms); fail, naming ``what``,
    after :data:`HANG_GUARD_S`, so a broken engine fails instead of hanging."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
