"""Launches and host time of one call, measured on any device by what PyTorch dispatches.

``ops(setup, run)``: every aten and mattingloss op one call dispatches (a TorchDispatchMode
records them; ops an op's own kernel calls are not seen). On CUDA each one that is not a
view is at least one kernel launch, so the count bounds the launches from below and is
deterministic: tests/test_launches.py holds each loss to its budget with it.

``host_us(fn)``: the Python path from the call to its first op, median over repetitions,
less what the measurement itself adds (the same clock around a call whose first statement
is an op). At small sizes this is the whole cost of a call on a GPU.

``cuda_kernels(setup, run)``: on CUDA, the launches the profiler records (every kernel,
memset and copy, including those an op's own code makes) and their summed device time:
the bench's ``cuda_launches`` and ``kernel_ms`` columns, beside the whole-call time the
events on the current stream give (timing.py).
"""
from __future__ import annotations

import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Ops that make a view or an alias: no kernel on any device.
VIEWS = frozenset({"view", "select", "unbind", "detach", "alias", "as_strided", "slice", "expand", "unsqueeze",
                   "squeeze", "t", "transpose", "permute", "_reshape_alias", "split"})


class _Record(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []
        self.first = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.first is None:
            self.first = time.perf_counter_ns()
        self.names.append(f"{func.namespace}.{func._opname}")
        return func(*args, **(kwargs or {}))


def ops(setup, run) -> list[str]:
    """The ops ``run(setup())`` dispatches, in order ("aten.add", "mattingloss.dim_loss_forward")."""
    state = setup()
    with _Record() as record:
        run(state)
    return record.names


def launches(names) -> int:
    """The ops of ``names`` that launch a kernel on CUDA (every one but views)."""
    return sum(1 for name in names if name.split(".", 1)[1] not in VIEWS)


def _first_op_us(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        record = _Record()
        with record:
            start = time.perf_counter_ns()
            fn()
        if record.first is not None:
            times.append((record.first - start) / 1e3)
    return statistics.median(times) if times else float("nan")


def host_us(fn, reps: int = 200) -> float:
    """Microseconds from calling ``fn()`` to its first op, less the measurement's own."""
    fn()  # once-per-process work (imports, the trimap convention check) stays out
    x = torch.zeros(())
    baseline = _first_op_us(lambda: torch.ops.aten.add.Tensor(x, x), reps)
    return max(0.0, _first_op_us(fn, reps) - baseline)


def cuda_kernels(setup, run) -> tuple[int, float]:
    """On CUDA, what the profiler sees of ``run(setup())``: (kernel launches, milliseconds
    the kernels ran, summed). Memsets and copies count as launches (each is one on the
    stream); their time is included."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    state = setup()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run(state)
        torch.cuda.synchronize()
    device = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    return len(device), sum(e.time_range.elapsed_us() for e in device) / 1e3
