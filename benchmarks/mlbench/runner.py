"""One case of one loss: check every contender against fused, then time and measure the
(contender x mode) grid with the copy yardstick in the same interleaved rounds."""
from __future__ import annotations

import gc
import sys
import time

import torch

from . import check, launches, memory
from .cases import Case
from .spec import LossBench
from .timing import interleaved

CSV_COLUMNS = (
    "device_type", "device_name", "torch_version", "threads", "date",
    "loss", "contender", "mode", "size", "batch", "height", "width", "dtype",
    "median_ms", "p20_ms", "p80_ms", "reps",
    "peak_extra_bytes", "peak_extra_mb", "grad_bytes", "peak_over_grad",
    "traffic_bytes", "bandwidth_gbs", "copy_bandwidth_gbs", "copy_fraction",
    "memory_method", "launches", "host_us", "cuda_launches", "kernel_ms",
)


def base_row(env, case: Case, contender: str, mode: str) -> dict:
    row = {c: "" for c in CSV_COLUMNS}
    row.update(env.meta())
    row.update(loss=case.loss, contender=contender, mode=mode, size=case.size, batch=case.batch,
               height=case.height, width=case.width, dtype=case.dtype_name)
    return row


def copy_statement(nbytes: int, device):
    """The bandwidth yardstick: ``dst.copy_(src)`` with ``src`` as large as the loss's traffic.

    Returns ``(setup, run, bytes moved)``: the copy reads and writes, 2 x ``nbytes``."""
    src = torch.ones(max(1, nbytes // 4), dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return (lambda: None), (lambda _: dst.copy_(src)), 2 * src.numel() * src.element_size()


def mode_statement(fn, case: Case, mode: str):
    """``(setup, run)`` for ``mode``; ``run(setup())`` is the timed statement.

    forward   the loss alone, with ``pred`` requiring grad as in training (an op: the call)
    backward  ``loss.backward()`` alone; the forward runs untimed before every repetition
    full      forward + backward
    """
    pred = case.pred

    def clear_grad():
        if pred is not None:
            pred.grad = None

    if mode == "forward":
        return clear_grad, lambda _: fn()
    if mode == "backward":
        def forward_untimed():
            clear_grad()
            return fn()
        return forward_untimed, lambda loss: loss.backward()
    if mode == "full":
        return clear_grad, lambda _: fn().backward()
    raise ValueError(mode)


def check_case(loss: LossBench, case: Case, names, progress, mismatches: list) -> dict:
    """Check every contender's output (and gradient) against fused; returns the callables of
    those that match. A contender that does not is reported, appended to ``mismatches`` and
    left out of the timing (a faster wrong answer is not a result); the other rows still run."""
    fns = {}
    for name in names:
        try:
            fns[name] = loss.contenders[name](case)
        except ImportError as err:  # e.g. OpenCV missing: report it, time the others
            if name == loss.fused:
                raise
            print(f"bench.py: warning: {loss.name} contender {name} skipped: {err}", file=sys.stderr)
    with check.ieee_float32():
        expected = check.outputs(fns[loss.fused], case)
    failed = set()
    for name in fns:
        if name == loss.fused:
            continue
        t0 = time.perf_counter()
        try:
            with check.ieee_float32():
                got = check.outputs(fns[name], case)
            how = loss.check(case, name, got, expected)
        except check.MismatchError as err:
            progress.note(f"MISMATCH: {err}")
            mismatches.append(str(err))
            failed.add(name)
            continue
        spent = time.perf_counter() - t0
        extra = f" (compiled + checked in {spent:.1f} s)" if spent > 2 else ""
        progress.note(f"check {name} == {loss.fused} on {case.label}: ok, {how}{extra}")
    return {name: fn for name, fn in fns.items() if name not in failed}


def bench_case(env, loss: LossBench, case: Case, names, modes, policy, progress, mismatches: list) -> list[dict]:
    """The rows of one case: copy first, then every (contender, mode) that matched fused."""
    fns = check_case(loss, case, names, progress, mismatches)
    progress.total -= (len(names) - len(fns)) * len(modes)  # contenders that could not load or did not match
    # A gc.collect() runs before every timed row and memory probe; each would walk every
    # object that torch, dynamo and the compiled graphs keep alive (~0.3 s on 2 cores, a third
    # of the default run). Collect once and freeze the survivors: later collects see only what
    # the rows make. The timed repetitions still run with the collector off.
    gc.collect()
    gc.freeze()
    try:
        return time_case(env, loss, case, fns, modes, policy, progress)
    finally:
        gc.unfreeze()


def time_case(env, loss: LossBench, case: Case, fns: dict, modes, policy, progress) -> list[dict]:
    copy_setup, copy_run, moved = copy_statement(loss.bytes_moved(case, loss.summary_mode), env.device)
    statements = {("copy", "copy"): (copy_setup, copy_run)}
    for name in fns:
        for mode in modes:
            statements[(name, mode)] = mode_statement(fns[name], case, mode)

    def clear_grad():
        if case.pred is not None:
            case.pred.grad = None

    timings = interleaved(statements, env.device, policy, after_each=clear_grad,
                          note=lambda text: progress.note(f"{text} of {case.label}"))
    del statements[("copy", "copy")], copy_setup, copy_run  # free its buffers before measuring memory

    copy_bw = moved / timings[("copy", "copy")].median / 1e9
    row = base_row(env, case, "copy", "copy")
    timings[("copy", "copy")].fill(row)
    row.update(traffic_bytes=moved, bandwidth_gbs=copy_bw, copy_bandwidth_gbs=copy_bw, copy_fraction=1.0)
    rows = [row]
    progress(f"copy {case.label}")
    host = {}
    for (name, mode), (setup, run) in statements.items():
        progress(f"{name} {mode} {case.label}")
        peak = memory.peak_bytes(run, setup, env.device)
        clear_grad()
        row = base_row(env, case, name, mode)
        timings[(name, mode)].fill(row)
        traffic = loss.bytes_moved(case, mode)
        bandwidth = traffic / timings[(name, mode)].median / 1e9
        row.update(peak_extra_bytes=peak, peak_extra_mb=peak / 2**20, traffic_bytes=traffic,
                   bandwidth_gbs=bandwidth, copy_bandwidth_gbs=copy_bw,
                   copy_fraction=bandwidth / copy_bw, memory_method=memory.memory_method(env.device))
        if case.grad_bytes:
            row.update(grad_bytes=case.grad_bytes, peak_over_grad=peak / case.grad_bytes)
        if "compiled" not in name:  # a dispatch mode around a compiled graph would recompile it
            row.update(launches=launches.launches(launches.ops(setup, run)))
            clear_grad()
            if name not in host:  # the call's path to its first op: the same in every mode
                call = timings[(name, modes[0])].median
                host[name] = launches.host_us(fns[name], reps=int(min(200, max(5, 0.2 / max(call, 1e-9)))))
                clear_grad()
            row.update(host_us=host[name])
        if env.device.type == "cuda":  # the launches themselves and the kernels' own time
            count, kernel_ms = launches.cuda_kernels(setup, run)
            clear_grad()
            row.update(cuda_launches=count, kernel_ms=kernel_ms)
        rows.append(row)
    return rows
