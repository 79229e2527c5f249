"""One busy CPU loop beside a test, started and always stopped by it (issue 14).

``CODER_LSP_TEST_CPU_LOAD=1`` makes the editor tests run with one busy loop on a core
(``scripts/test`` runs the real-model editor tests that way once): completions must stay
correct and in time when something else wants the CPU. The loop runs in a session of its
own, as a program started elsewhere does (with autogroup scheduling it then competes as an
equal, whatever its nice value), and is bounded by ``timeout`` should the test run die.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

ENV = "CODER_LSP_TEST_CPU_LOAD"
LIMIT_S = 1800
"""The loop dies after this long even if nothing stops it."""


def wanted() -> bool:
    """Whether ``CODER_LSP_TEST_CPU_LOAD`` asks for the loop."""
    return os.environ.get(ENV, "").lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def busy_loop() -> Iterator[subprocess.Popen[bytes]]:
    """Run one CPU-bound loop (nice 0) for the duration of the block."""
    proc = subprocess.Popen(
        ["timeout", "-s", "KILL", str(LIMIT_S), sys.executable, "-c", "while True: pass"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # timeout and the loop: one group
        proc.wait()
