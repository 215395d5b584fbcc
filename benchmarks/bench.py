#!/usr/bin/env python
"""Benchmark of every mattingloss loss: fused kernels against plain PyTorch.

Per loss (benchmarks/mlbench/losses/, one file each) the contenders compute the same loss and
gradient: ``naive`` (code as it is found in the wild, where there is one), ``eager`` (the
code base's formula with the same torch ops, mattingloss.reference), ``compiled``
(``torch.compile`` of eager) and ``fused`` (mattingloss). Every contender is checked against
fused before anything is timed; one that does not match is reported and not timed, the
other rows still run, and the run exits non-zero.

Per case (size x dtype row) the copy yardstick and every (contender x mode) take turns in
interleaved rounds, so a drift of a shared machine hits every row alike; per row: median and
p20/p80 of single repetitions, peak extra memory, and GB/s as a share of the copy's.
Modes: forward, backward (the forward untimed before each repetition), full (both).

    python benchmarks/bench.py                  # representative subset, every loss, <= 3 min on 2 cores
    python benchmarks/bench.py --full           # the whole grid (what benchmarks/results/ commits)
    python benchmarks/bench.py --quick          # one size per loss, no compiled: < 1 min (CI)
    python benchmarks/bench.py --loss dim --sizes 16x320x320 --dtypes float32 --contenders eager

Outputs under ``--out`` (default benchmarks/results/), named after the device, ``-quick`` or
``-full`` appended for those presets: ``<device>.csv`` / ``.json`` / ``.txt`` (the printed
report; ``<device>-<losses>.*`` for a ``--loss`` subset, so that it never overwrites the whole
grid's) and ``<device>-<loss>.png`` per loss, e.g. ``cpu-amd-epyc-2threads-full-dim.png``.
Progress goes to stderr, the report to stdout. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep the profiler's log lines off stderr

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the mlbench package beside this file
try:
    import mattingloss  # noqa: F401
except ImportError:  # a checkout that is not installed: use the repository root
    sys.path.insert(1, str(HERE.parent))
    import mattingloss  # noqa: F401

from mlbench import cases as cases_mod
from mlbench import check, report, runner, timing
from mlbench.environment import Progress, detect_environment, load_average, other_cpu_use
from mlbench.losses import LOSSES
from mlbench.memory import memory_method

SLOW_TO_BUILD = ("compiled",)  # left out of --quick unless --contenders names them
RESULTS_DIR = HERE / "results"


def names_list(text: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty list {text!r}")
    return list(dict.fromkeys(items))


def choices(allowed):
    def parse(text):
        items = names_list(text)
        bad = [s for s in items if s not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"{', '.join(bad)} not in {', '.join(allowed)}")
        return items
    return parse


def build_parser() -> argparse.ArgumentParser:
    all_modes = list(dict.fromkeys(m for loss in LOSSES.values() for m in loss.modes))
    all_contenders = list(dict.fromkeys(c for loss in LOSSES.values() for c in loss.contenders))
    all_dtypes = list(dict.fromkeys(d for loss in LOSSES.values() for d in loss.dtypes))
    p = argparse.ArgumentParser(description="Benchmark mattingloss's fused losses against naive, "
                                "eager and compiled PyTorch (see benchmarks/README.md).")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="one size per loss, fewer repetitions, no compiled: < 1 min (CI)")
    preset.add_argument("--full", action="store_true", help="the whole grid of every loss")
    p.add_argument("--loss", type=choices(list(LOSSES)), default=list(LOSSES),
                   help=f"comma-separated losses (default all: {','.join(LOSSES)})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--sizes", type=cases_mod.parse_sizes, default=None,
                   help="comma-separated BxHxW replacing every loss's preset sizes")
    p.add_argument("--dtypes", type=choices(all_dtypes), default=None,
                   help=f"keep these dtype rows ({','.join(all_dtypes)}); a loss with none is skipped")
    p.add_argument("--contenders", type=choices(all_contenders), default=None,
                   help=f"subset of {','.join(all_contenders)} (each loss's fused one always runs; "
                   "default all, --quick all but compiled)")
    p.add_argument("--modes", type=choices(all_modes), default=None,
                   help="subset of forward,backward,full (default all a loss has)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds of timed repetitions per row (default 0.5; --quick 0.2; --full 1.0)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds in which a case's rows take turns (default 5, --quick 1)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--check-only", action="store_true",
                   help="only check every contender against fused (no timing, no files)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default %(default)s)")
    return p


def plan(args, preset: str, device_type: str):
    """``[(loss, [(size, dtype)], contenders, modes)]`` for the selected losses."""
    out = []
    for name in args.loss:
        loss = LOSSES[name]
        grid = loss.cases_for(preset, device_type)
        if args.sizes:
            dtypes = list(dict.fromkeys(d for _, d in grid))
            grid = [(cases_mod.size_str(s), d) for s in args.sizes for d in dtypes]
        if args.dtypes:
            grid = [(s, d) for s, d in grid if d in args.dtypes]
        modes = [m for m in loss.modes if args.modes is None or m in args.modes]
        if args.contenders is not None:
            names = [c for c in loss.contenders if c in args.contenders or c == loss.fused]
        else:
            skip = set(loss.leave_out.get(preset, ())) | set(SLOW_TO_BUILD if preset == "quick" else ())
            names = [c for c in loss.contenders if c not in skip]
        if not grid or not modes:
            print(f"bench.py: {name}: no {'dtype row' if not grid else 'mode'} left to run, skipped",
                  file=sys.stderr)
            continue
        out.append((loss, grid, names, modes))
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = "quick" if args.quick else "full" if args.full else "default"
    env = detect_environment(args.device)
    base = timing.POLICIES[preset]
    policy = timing.TimingPolicy(args.min_time or base.min_time, base.min_reps, base.max_reps,
                                 base.warmup, args.rounds or base.rounds)
    work = plan(args, preset, env.device_type)
    print(f"bench.py: {preset} run on {env.device_type} ({env.device_name}), torch {env.torch_version}, "
          f"{env.threads} threads", file=sys.stderr)
    for loss, grid, names, modes in work:
        print(f"  {loss.name}: {', '.join(f'{s} {d}' for s, d in grid)}; {', '.join(names)}; "
              f"{', '.join(modes)}", file=sys.stderr)
    if preset == "quick" and args.contenders is None:
        print("  (--quick leaves out compiled: torch.compile builds C++ per shape and dtype; "
              "--contenders names it back)", file=sys.stderr)
    left_out = [loss.name for loss, *_ in work if loss.leave_out.get(preset)]
    if preset != "quick" and left_out and args.contenders is None:
        print(f"  ({', '.join(left_out)}: {preset} leaves out what takes minutes to build or run "
              "on 2 cores, see each loss's file; --full or --contenders runs it)", file=sys.stderr)

    if args.check_only:
        progress = Progress(sum(len(grid) for _, grid, _, _ in work))
        mismatches: list[str] = []
        for loss, grid, names, _ in work:
            for size, dtype in grid:
                progress(f"check {loss.name} {size} {dtype}")
                runner.check_case(loss, loss.make_case(size, dtype, env.device), names, progress, mismatches)
        if mismatches:
            print("\n".join(f"bench.py: MISMATCH: {m}" for m in mismatches), file=sys.stderr)
            return 1
        print(f"bench.py: every contender matches the fused one on every case of "
              f"{', '.join(loss.name for loss, *_ in work)}")
        return 0

    load_before, busy_before = load_average(), other_cpu_use()
    if env.device_type == "cpu" and busy_before is not None and busy_before > 0.1:
        print(f"bench.py: warning: other processes use {busy_before:.0%} of the CPUs; the CPU "
              "timings will be noisy (a parallel op waits for a busy core)", file=sys.stderr)
    progress = Progress(sum(len(grid) * (1 + len(names) * len(modes)) for _, grid, names, modes in work))
    started = time.perf_counter()
    rows: list[dict] = []
    mismatches: list[str] = []  # contenders that did not match fused: reported, not timed
    args.out.mkdir(parents=True, exist_ok=True)
    stem = env.slug + ("" if preset == "default" else f"-{preset}")
    # a subset of the losses never overwrites the whole grid's tables (its charts are per loss)
    table = stem if set(args.loss) == set(LOSSES) else stem + "-" + "-".join(args.loss)
    paths = {ext: args.out / f"{table}.{ext}" for ext in ("csv", "json", "txt")}
    for loss, grid, names, modes in work:
        for size, dtype in grid:
            case = loss.make_case(size, dtype, env.device)
            rows += runner.bench_case(env, loss, case, names, modes, policy, progress, mismatches)
            report.write_csv(paths["csv"], rows)  # so far: what a run cut short leaves
            del case
    elapsed = time.perf_counter() - started
    load_after, busy_after = load_average(), other_cpu_use()

    losses = [loss for loss, *_ in work]
    summary = {loss.name: report.summarize(loss, rows) for loss in losses}
    targets = [t for loss in losses if loss.targets for t in loss.targets(env.device_type, summary[loss.name])]
    text = "\n".join([
        f"mattingloss benchmark ({preset}): {env.device_type} {env.device_name}, torch "
        f"{env.torch_version}, {env.threads} threads, {env.date}, {elapsed:.0f} s",
        f"mattingloss {env.mattingloss_version} ({env.git_commit or 'no git'}); CPU use by other "
        f"processes {report.fmt_share(busy_before)} before, {report.fmt_share(busy_after)} after; "
        f"1-minute load average {report.fmt(load_before, '.2f')} before, "
        f"{report.fmt(load_after, '.2f')} after (includes this run)",
        f"memory: {memory_method(env.device)}",
        "bandwidth: forward/full = inputs read + gradient written; backward = gradient read + "
        "written; % copy = of dst.copy_(src) on the same traffic, timed in the same rounds",
        "", report.format_table(rows), "",
        *([report.format_targets(targets), ""] if targets else []),
        *(report.format_summary(loss, summary[loss.name]) + "\n" for loss in losses),
        *(f"MISMATCH (not timed): {m}" for m in mismatches),
    ])
    print(text)

    report.write_csv(paths["csv"], rows)
    meta = {**env.meta(), "preset": preset, "elapsed_s": elapsed,
            "mattingloss_version": env.mattingloss_version, "git_commit": env.git_commit,
            "load_average_1min": {"before": load_before, "after": load_after},
            "other_cpu_use": {"before": busy_before, "after": busy_after},
            "memory_method": memory_method(env.device),
            "timing": vars(policy) | {"statistic": "median, p20, p80 of single repetitions"},
            "command": sys.argv, "mismatches": mismatches}
    report.write_json(paths["json"], meta, rows, summary, targets)
    paths["txt"].write_text(text + "\n")
    written = list(paths.values())
    for loss in losses:
        png = args.out / f"{stem}-{loss.name}.png"
        if report.write_chart(png, loss, rows, env):
            written.append(png)
    if len(written) == 3:
        print("bench.py: matplotlib is not installed, no chart written", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written))
    if mismatches:
        print(f"bench.py: {len(mismatches)} contender(s) did not match fused (see MISMATCH above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
