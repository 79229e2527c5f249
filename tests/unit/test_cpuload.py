"""The busy loop the editor tests run beside (tests/cpuload.py) starts, burns and stops."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.cpuload import busy_loop, wanted


def _group(pgid: int) -> list[list[str]]:
    """The /proc/PID/stat fields (after the name) of the live processes in group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):  # a zombie has ended
            found.append(fields)
    return found


def _cpu_ticks(pgid: int) -> int:
    """User + system clock ticks of the processes in group ``pgid``."""
    return sum(int(f[11]) + int(f[12]) for f in _group(pgid))


def test_loop_burns_cpu_and_is_gone_afterwards() -> None:
    with busy_loop() as proc:
        assert proc.poll() is None
        deadline = time.monotonic() + 30
        while _cpu_ticks(proc.pid) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _cpu_ticks(proc.pid) >= 5  # it really runs (50 ms of CPU at least)
    assert proc.poll() is not None
    assert _group(proc.pid) == []  # nothing of the group runs on


def test_loop_is_stopped_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError), busy_loop() as proc:
        raise RuntimeError("the test failed")
    assert _group(proc.pid) == []


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("1", True)])
def test_wanted_reads_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("CODER_LSP_TEST_CPU_LOAD", value)
    assert wanted() is expected
