"""Peak extra memory of one statement over what was allocated before it.

CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()`` minus
``torch.cuda.memory_allocated()`` before. CPU: one repetition under ``torch.profiler`` with
``profile_memory=True``; the allocator's allocation and free records (every c10 CPU
allocation, whichever op or kernel makes it) are replayed in time order and the peak of the
running sum is reported. Memory that does not go through the PyTorch allocator (a kernel's
small per-thread ``std::vector``, OpenCV's buffers) is not seen; on CUDA the naive DIM
contender's CPU-built masks are not counted either. Tensors kept after the statement (the loss
and its graph in ``forward``; ``pred.grad`` in ``backward``/``full``) count: they are alive at
the peak.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys

import torch

from .timing import synchronize

_TIMED_MARK = "bench::timed_statement"


def memory_method(device) -> str:
    if device.type == "cuda":
        return "cuda max_memory_allocated - memory_allocated before"
    return "torch.profiler profile_memory: peak running sum of CPU allocator records"


@contextlib.contextmanager
def _quiet_fds():
    """Silence the C++ profiler's start/stop lines written straight to fd 1/2."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def cpu_peak_bytes(run, setup) -> tuple[int, object, object]:
    """Peak extra CPU memory of ``run(setup())`` from the profiler's allocator records.

    ``setup`` runs inside the profiled region too (so that frees of what it allocated are
    matched) and ``run`` is marked with a ``record_function`` range: the peak is the largest
    running sum of the records inside that range minus the running sum at its start.
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_fds():
        prof.__enter__()
    try:
        state = setup()
        with record_function(_TIMED_MARK):
            result = run(state)
    finally:
        with _quiet_fds():
            prof.__exit__(None, None, None)
    events = prof.profiler.kineto_results.events()
    marks = [e for e in events if e.name() == _TIMED_MARK]
    start, end = marks[0].start_ns(), marks[0].end_ns()
    records = sorted(
        (e.start_ns(), e.nbytes())
        for e in events
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    )
    running, baseline, peak = 0, 0, 0
    for stamp, nbytes in records:
        if stamp > end:
            break
        running += nbytes
        if stamp < start:
            baseline = running
        else:
            peak = max(peak, running - baseline)
    return peak, result, state


def peak_bytes(run, setup, device) -> int:
    """Peak extra memory of one ``run(setup())`` over what was allocated before ``run``."""
    gc.collect()
    if device.type == "cuda":
        state = setup()
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = run(state)
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        peak, result, state = cpu_peak_bytes(run, setup)
    del result, state
    return int(peak)
