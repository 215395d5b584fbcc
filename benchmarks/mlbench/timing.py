"""Timing: single repetitions with an untimed setup each, in rounds that interleave a case's rows.

A statement is ``run(setup())``; only ``run`` is timed. Each repetition gets its own setup
(``pred.grad = None``, and for ``backward`` the forward that builds the graph), which
``torch.utils.benchmark.Timer`` and ``triton.testing.do_bench`` cannot give (their setup runs
once per measurement, and do_bench's ``grad_to_none`` covers only the first). So the clock is
``time.perf_counter_ns`` on the CPU and a pair of CUDA events per repetition on the GPU (with
a synchronize before the start so that the setup's kernels are not counted).
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    times_s: list[float]

    def percentile(self, q: float) -> float:
        xs = sorted(self.times_s)
        pos = (len(xs) - 1) * q
        lo, hi = math.floor(pos), math.ceil(pos)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    @property
    def median(self) -> float:
        return self.percentile(0.5)

    def fill(self, row: dict):
        row.update(median_ms=self.median * 1e3, p20_ms=self.percentile(0.2) * 1e3,
                   p80_ms=self.percentile(0.8) * 1e3, reps=len(self.times_s))


@dataclass
class TimingPolicy:
    min_time: float  # seconds of timed repetitions per row, over all rounds
    min_reps: int
    max_reps: int
    warmup: int
    rounds: int = 1  # the rows of a case take turns this many times (see interleaved)

    def per_round(self) -> "TimingPolicy":
        return TimingPolicy(self.min_time / self.rounds, -(-self.min_reps // self.rounds),
                            max(1, self.max_reps // self.rounds), self.warmup)


QUICK = TimingPolicy(min_time=0.2, min_reps=3, max_reps=50, warmup=1, rounds=1)
DEFAULT = TimingPolicy(min_time=0.5, min_reps=5, max_reps=100, warmup=1, rounds=5)
FULL = TimingPolicy(min_time=1.0, min_reps=5, max_reps=200, warmup=2, rounds=5)
POLICIES = {"quick": QUICK, "default": DEFAULT, "full": FULL}


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_statement(run, setup, device: torch.device, policy: TimingPolicy) -> Timing:
    """Time ``run(setup())`` repetition by repetition; ``setup`` is never timed."""
    warm_spent = 0.0  # warm-up: policy.warmup calls, fewer when one call is slow
    for _ in range(policy.warmup):
        state = setup()
        synchronize(device)
        t0 = time.perf_counter()
        result = run(state)
        synchronize(device)
        warm_spent += time.perf_counter() - t0
        del result, state
        if warm_spent > policy.min_time / 2:
            break
    times: list[float] = []
    spent = 0.0
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(times) < policy.max_reps and (len(times) < policy.min_reps or spent < policy.min_time):
            state = setup()
            synchronize(device)
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                result = run(state)
                end.record()
                end.synchronize()
                elapsed = start.elapsed_time(end) / 1e3
            else:
                t0 = time.perf_counter_ns()
                result = run(state)
                elapsed = (time.perf_counter_ns() - t0) / 1e9
            del result, state  # freed outside the timed region
            times.append(elapsed)
            spent += elapsed
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(times)


def interleaved(statements: dict, device, policy: TimingPolicy, after_each=None, note=None) -> dict:
    """Time every ``key: (setup, run)`` of ``statements`` in ``policy.rounds`` rounds.

    Each round gives every statement ``1/rounds`` of its repetitions, so a slow drift of the
    machine (another tenant's memory traffic on a shared host, CPU clocks) falls on every row
    alike and the ratios between rows stay fair. Returns ``key: Timing`` over all rounds."""
    times = {key: [] for key in statements}
    per_round = policy.per_round()
    warm = TimingPolicy(per_round.min_time, per_round.min_reps, per_round.max_reps, warmup=0)
    for r in range(policy.rounds):
        if note:
            note(f"timing round {r + 1}/{policy.rounds}")
        for key, (setup, run) in statements.items():
            # A row whose one call outlasts a round's time budget was warmed up in round 1
            # and its every repetition sweeps its whole working set through the caches: a
            # warm-up call in each later round would cost as much as the repetition itself.
            slow = r > 0 and bool(times[key]) and min(times[key]) >= per_round.min_time
            times[key] += time_statement(run, setup, device, warm if slow else per_round).times_s
            if after_each:
                after_each()
    return {key: Timing(ts) for key, ts in times.items()}
