"""The thread policies' decisions, driven with made-up timings (nothing here is timed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_server.backends.threads import (
    AdaptiveThreads,
    FixedThreads,
    RequestTiming,
    available_cpus,
    policy_for,
    quiet_openmp,
)


def timing(threads: int, decode_ms: float, generated: int = 11) -> RequestTiming:
    """A request that decoded ``generated`` tokens at ``decode_ms`` each (no prompt)."""
    return RequestTiming(threads, 0, 0.05, generated, decode_ms / 1000 * (generated - 1))


def drive(policy: AdaptiveThreads, speed: dict[int, float], n: int) -> list[int]:
    """Run ``n`` requests where ``speed[threads]`` is the decode ms per token; the counts used."""
    used = []
    for _ in range(n):
        threads = policy.next_threads()
        used.append(threads)
        policy.record(timing(threads, speed[threads]))
    return used


def test_fixed_threads_never_change() -> None:
    policy = FixedThreads(3)
    assert policy.max_threads == 3
    for _ in range(5):
        assert policy.next_threads() == 3
        policy.record(timing(3, 500.0))
    assert FixedThreads(0).next_threads() == 1


def test_user_setting_wins_over_adapting() -> None:
    assert isinstance(policy_for(5), FixedThreads)
    assert policy_for(5).next_threads() == 5
    default = policy_for(None)
    assert isinstance(default, AdaptiveThreads)
    assert default.max_threads == min(available_cpus(), 8)


def test_candidates_are_powers_of_two_and_the_maximum() -> None:
    assert AdaptiveThreads(1).candidates == (1,)
    assert AdaptiveThreads(2).candidates == (1, 2)
    assert AdaptiveThreads(6).candidates == (1, 2, 4, 6)
    assert AdaptiveThreads(8).candidates == (1, 2, 4, 8)


def test_one_cpu_always_uses_one_thread() -> None:
    policy = AdaptiveThreads(1)
    assert drive(policy, {1: 30.0}, 40) == [1] * 40


def test_idle_machine_keeps_all_cores_after_one_probe() -> None:
    policy = AdaptiveThreads(2, reprobe_every=24)
    used = drive(policy, {1: 40.0, 2: 25.0}, 20)
    # Starts at all cores, probes one thread once, finds it slower and stays.
    assert used[:2] == [2, 1]
    assert used.count(1) == 1


def test_busy_machine_moves_to_fewer_threads() -> None:
    policy = AdaptiveThreads(2, reprobe_every=24)
    used = drive(policy, {1: 40.0, 2: 300.0}, 20)
    # One slow request at all cores, the probe, then one thread.
    assert used[:2] == [2, 1]
    assert used[2:] == [1] * 18


def test_load_arriving_later_is_noticed() -> None:
    policy = AdaptiveThreads(2, reprobe_every=24)
    drive(policy, {1: 40.0, 2: 25.0}, 30)
    assert policy.current == 2
    # A build starts: two threads collapse. The stale one-thread estimate is re-probed.
    used = drive(policy, {1: 45.0, 2: 400.0}, 30)
    assert used[0] == 2  # the first slow request …
    assert used[1:].count(1) >= 28  # … and from then on one thread (a re-probe at most)


def test_load_going_away_brings_the_cores_back() -> None:
    policy = AdaptiveThreads(2, reprobe_every=10)
    drive(policy, {1: 45.0, 2: 400.0}, 20)
    assert policy.current == 1
    used = drive(policy, {1: 40.0, 2: 25.0}, 25)
    # Within one re-probe interval it tries two threads again, and keeps them.
    assert 2 in used[:11]
    assert used[-10:].count(2) >= 9


def test_reprobes_stay_rare() -> None:
    policy = AdaptiveThreads(2, reprobe_every=24)
    used = drive(policy, {1: 40.0, 2: 25.0}, 100)
    # One probe of the other count every ~24 requests, no more.
    assert 3 <= used.count(1) <= 5


def test_small_differences_do_not_flap() -> None:
    policy = AdaptiveThreads(2, reprobe_every=24, margin=0.1)
    used = drive(policy, {1: 30.0, 2: 29.0}, 12)
    # Start at 2, probe 1 (a little slower): stays at 2.
    assert used.count(1) == 1
    policy2 = AdaptiveThreads(2, start=1, reprobe_every=24, margin=0.1)
    used2 = drive(policy2, {1: 30.0, 2: 29.0}, 12)
    # Start at 1, probe 2 (only 3% faster): not worth leaving 1 for.
    assert used2.count(2) == 1


def test_many_cores_walk_to_the_fastest_count() -> None:
    policy = AdaptiveThreads(8, reprobe_every=24)
    speed = {1: 100.0, 2: 60.0, 4: 35.0, 8: 200.0}  # half the cores are busy elsewhere
    used = drive(policy, speed, 30)
    # 8, its neighbour 4 (faster: moves there), then 4's neighbour 2 (slower): 4 from then on,
    # apart from one re-probe of each neighbour.
    assert used[:4] == [8, 4, 4, 2]
    assert used[4:].count(4) >= len(used[4:]) - 2


def test_short_requests_teach_nothing_but_do_not_break_it() -> None:
    policy = AdaptiveThreads(2)
    for _ in range(10):
        n = policy.next_threads()
        policy.record(RequestTiming(n, 2, 0.01, 1, 0.0))  # a cache-like answer
    assert policy.next_threads() in (1, 2)


def test_prompt_rate_decides_when_nothing_was_decoded() -> None:
    policy = AdaptiveThreads(2, reprobe_every=24)
    for _ in range(10):
        n = policy.next_threads()
        per_token = 0.002 if n == 1 else 0.02  # 2 threads: ten times slower prompts
        policy.record(RequestTiming(n, 200, 200 * per_token, 1, 0.0))
    assert policy.current == 1


def test_unknown_thread_counts_are_ignored() -> None:
    policy = AdaptiveThreads(2)
    policy.record(timing(7, 10.0))
    assert policy.next_threads() in (1, 2)


@pytest.mark.parametrize("start", [1, 3, 100])
def test_start_is_snapped_to_a_candidate(start: int) -> None:
    policy = AdaptiveThreads(4, start=start)
    assert policy.current in policy.candidates


class ScriptedPolicy:
    """Asks for the given counts in turn and keeps what the backend reports."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.seen: list[RequestTiming] = []

    @property
    def max_threads(self) -> int:
        return max(self.counts)

    def next_threads(self) -> int:
        return self.counts[len(self.seen) % len(self.counts)]

    def record(self, timing: RequestTiming) -> None:
        self.seen.append(timing)


def test_backend_runs_each_generation_at_the_policys_count(tiny_model_path: Path) -> None:
    import llama_cpp

    from lsp_server.backends.base import CancelToken, GenerationRequest
    from lsp_server.backends.llama_cpp import LlamaCppBackend
    from lsp_server.completion.prompt import render_fim_prompt
    from lsp_server.core import FimContext

    default = LlamaCppBackend.load(tiny_model_path, n_ctx=256)
    try:
        assert isinstance(default.threads, AdaptiveThreads)  # nThreads unset: adapts
    finally:
        default.close()
    b = LlamaCppBackend.load(tiny_model_path, n_ctx=256, n_threads=2)
    try:
        assert isinstance(b.threads, FixedThreads)  # nThreads set: the user's count
        policy = ScriptedPolicy([1, 2, 1])
        b.threads = policy
        prompt = render_fim_prompt(
            b.info.template, FimContext(prefix="def add(a, b):\n    ", suffix="\n")
        )
        counts = []
        for _ in range(3):
            b._llama.reset()  # evaluate the whole prompt each time
            gen = b.generate(GenerationRequest(prompt, max_tokens=8), CancelToken())
            assert gen.text
            counts.append(llama_cpp.llama_n_threads(b._llama.ctx))
        assert counts == [1, 2, 1]
        assert [t.threads for t in policy.seen] == [1, 2, 1]
        assert all(t.generated_tokens > 0 and t.evaluated_tokens > 0 for t in policy.seen)
    finally:
        b.close()


def test_openmp_threads_sleep_unless_the_user_chose() -> None:
    env: dict[str, str] = {}
    assert quiet_openmp(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not quiet_openmp(mine)
    assert mine == {"OMP_WAIT_POLICY": "ACTIVE"}
    spins = {"GOMP_SPINCOUNT": "10000"}
    assert not quiet_openmp(spins)
    assert "OMP_WAIT_POLICY" not in spins


def test_the_server_process_sets_it_before_llama_cpp_loads() -> None:
    import subprocess
    import sys

    code = (
        "import os, sys; import lsp_server.backends.llama_cpp; "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'llama_cpp' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["PASSIVE", "True"]
