#!/usr/bin/env python
"""Benchmark of the Deep Image Matting loss: fused kernels against plain PyTorch.

Contenders (all compute the same loss and its gradient w.r.t. ``pred_alpha``):

* ``naive``    -- the seed's code as written (:func:`mattingloss.reference.seed_total_loss`):
  masks built on the CPU and copied to the device on every call.
* ``eager``    -- the on-device eager oracle (:func:`mattingloss.reference.dim_loss_reference`).
* ``compiled`` -- ``torch.compile(dim_loss_reference, dynamic=False)``, compiled once per
  (size, dtype) before timing (the compile time is printed, not timed).
* ``fused``    -- :func:`mattingloss.dim_loss`, the hand-written kernels (the forward also
  writes the gradient; the backward only scales it).

The grid follows Liger-Kernel's benchmarks: (forward, backward, full) x (speed, memory), for
every size, dtype row and contender, plus a ``copy`` row per case (the bandwidth yardstick)
and a trimap-generation row (``make_trimap`` on a batch against a per-sample OpenCV loop).

Modes
    forward   the loss alone, with ``pred_alpha`` requiring grad as in training.
    backward  ``loss.backward()`` alone; the forward runs untimed before every repetition.
    full      forward + backward.

Figures per row
    time       median and 20th/80th percentiles of individually timed repetitions
               (``time.perf_counter_ns`` on the CPU, CUDA events on the GPU), after warm-up.
               Each repetition gets its own untimed setup (``pred_alpha.grad = None``, and
               for ``backward`` the forward), which ``torch.utils.benchmark.Timer`` cannot do
               since its ``setup`` runs once per measurement. Repetitions continue until
               ``--min-time`` seconds are spent (at least ``min_reps``, at most ``max_reps``).
               The rows of one case (copy and every contender x mode) take turns in
               ``--rounds`` rounds (default 5), each with a share of the repetitions, so that
               a drift of a shared machine's memory bandwidth or clocks during the run hits
               every row alike instead of whichever row was timing then.
    memory     peak extra memory over what was allocated before the timed statement (the
               inputs, and for ``backward`` the graph the forward built):
               CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``
               minus ``torch.cuda.memory_allocated()`` before. CPU: one repetition under
               ``torch.profiler`` with ``profile_memory=True``; the allocator's allocation and
               free records (every ``c10`` CPU allocation, whichever op or kernel makes it) are
               replayed in time order and the peak of the running sum is reported. Memory that
               does not go through the PyTorch allocator (e.g. a kernel's small per-thread
               ``std::vector``) is not seen; on CUDA the naive contender's CPU-built masks are
               not counted either. Tensors kept after the statement (the loss and its graph in
               ``forward``; ``pred_alpha.grad`` in ``backward``/``full``) count, since they are
               alive at the peak.
    bandwidth  bytes the loss must move / median time. ``forward`` and ``full``: every input
               read once in its real dtype (pred_alpha, alpha, trimap, image, fg, bg) plus the
               gradient written once in pred_alpha's dtype. ``backward``: the gradient read
               once and written once (2 x its size). The fraction is of the copy bandwidth
               measured in the same run on the same device: ``dst.copy_(src)`` with ``src`` as
               large as the forward/full traffic, bandwidth = 2 x bytes / median time.

Before anything is timed, every contender's loss and gradient are checked against ``fused``
(a mismatch raises and the script exits non-zero). float32: loss rtol 1e-4, atol 1e-6;
gradient rtol 1e-4, atol 1e-5 x max|grad| (the gradient is O(1/N), N = unknown pixels), plus,
at the few pixels where a residual is within float32 rounding of zero and the sqrt-epsilon
derivative is decided by rounding, the analytic bound on that term (see ``rounding_slack``).
bf16+uint8: every contender gets the same bfloat16 ``pred_alpha`` and uint8 tensors; eager and
compiled compute in float32 like fused, so the loss keeps the float32 tolerance and the bfloat16
gradient gets bfloat16 tolerance (rtol 1.6e-2, one bf16 rounding step). naive computes the
composite in bfloat16 (``bf16 * uint8`` stays bfloat16), so for it the loss is compared with
rtol 1e-2 and the gradient by its relative L2 error (<= 0.1): elementwise agreement is not
meaningful where a bfloat16 rounding flips the sign of ``comp - image``.

Outputs under ``--out`` (default ``benchmarks/results``), named after the device
(e.g. ``cpu-amd-epyc-2threads.csv``; ``--quick`` runs add ``-quick``): a CSV and a JSON of all rows
(with device name, torch version, threads, date), and a PNG chart of the full mode (time and
bandwidth per size per contender) when matplotlib is installed. A progress line per row goes
to stderr; the table, the fused ratios and the project's targets (marked PASS/FAIL, not
enforced) go to stdout.

    python benchmarks/bench.py                 # full grid, ~10-15 min on a 2-core CPU
    python benchmarks/bench.py --quick         # one size, no compiled, < 1 min
    python benchmarks/bench.py --sizes 16x320x320 --dtypes float32 --contenders eager,fused
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import gc
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep the profiler's log lines off stderr

import torch
import torch.nn.functional as F

try:
    import mattingloss
except ImportError:  # run from a checkout that is not installed: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import mattingloss
from mattingloss.reference import dim_loss_reference, seed_total_loss

CONTENDERS = ("naive", "eager", "compiled", "fused")
MODES = ("forward", "backward", "full")
DTYPES = ("float32", "bf16+uint8")
DEFAULT_SIZES = "16x320x320,8x512x512,4x1024x1024,1x2048x2048"
QUICK_SIZES = "16x320x320"
QUICK_CONTENDERS = ("naive", "eager", "fused")
WL, EPS = 0.5, 1e-6
UNKNOWN_FRACTION = 0.3  # share of pixels the trimap marks unknown
TRIMAP_KERNEL = 15  # erode/dilate size of the trimap row
RESULTS_DIR = Path(__file__).resolve().parent / "results"

CSV_COLUMNS = (
    "device_type", "device_name", "torch_version", "threads", "date",
    "contender", "mode", "size", "batch", "height", "width", "dtype",
    "median_ms", "p20_ms", "p80_ms", "reps",
    "peak_extra_bytes", "peak_extra_mb", "grad_bytes", "peak_over_grad",
    "traffic_bytes", "bandwidth_gbs", "copy_bandwidth_gbs", "copy_fraction",
    "memory_method",
)


# --------------------------------------------------------------------------- inputs


@dataclass
class Case:
    """One (size, dtype row) of the grid with its input tensors."""

    batch: int
    height: int
    width: int
    dtype_name: str
    pred: torch.Tensor
    alpha: torch.Tensor
    trimap: torch.Tensor
    image: torch.Tensor
    fg: torch.Tensor
    bg: torch.Tensor

    @property
    def size(self) -> str:
        return f"{self.batch}x{self.height}x{self.width}"

    @property
    def label(self) -> str:
        return f"{self.size} {self.dtype_name}"

    @property
    def inputs(self) -> tuple[torch.Tensor, ...]:
        return (self.pred, self.alpha, self.trimap, self.image, self.fg, self.bg)

    @property
    def grad_bytes(self) -> int:
        return self.pred.numel() * self.pred.element_size()

    @property
    def input_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.inputs)

    def traffic_bytes(self, mode: str) -> int:
        """Bytes the loss must move in ``mode`` (see the module docstring)."""
        if mode == "backward":
            return 2 * self.grad_bytes
        return self.input_bytes + self.grad_bytes


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    sizes = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", item)
        if not match:
            raise argparse.ArgumentTypeError(f"size {item!r} is not BxHxW")
        sizes.append(tuple(int(v) for v in match.groups()))
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given")
    return sizes


def parse_choices(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{what}: {bad or text!r} not in {', '.join(allowed)}")
    return [s for s in allowed if s in items]  # canonical order, no duplicates


def make_alpha_and_trimap(batch, height, width, generator):
    """Blurred random blobs: an alpha 0..255 with a soft band and a 0/128/255 trimap.

    A smooth random field (low-resolution noise, bicubic upsampling) is thresholded at zero;
    the trimap's unknown band is ``|field| < t`` with ``t`` chosen so that UNKNOWN_FRACTION of
    each sample is unknown; alpha ramps from 0 to 1 across the inner 60 % of that band and is
    exactly 0 or 1 elsewhere, so the unknown region also holds some definite pixels, like a
    dilated trimap does. Returns float32 CPU tensors (alpha rounded to integers).
    """
    cell = 40
    low = torch.randn(batch, 1, height // cell + 2, width // cell + 2, generator=generator)
    field_ = F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)
    flat = field_.abs().reshape(batch, -1)
    k = max(1, int(UNKNOWN_FRACTION * flat.shape[1]))
    band = flat.kthvalue(k, dim=1).values.view(batch, 1, 1, 1)
    alpha = (0.5 + 0.5 * field_ / (0.6 * band)).clamp(0.0, 1.0)
    alpha255 = (alpha * 255.0).round()
    trimap = torch.where(field_.abs() < band, 128.0, torch.where(field_ > 0, 255.0, 0.0))
    return alpha255, trimap


def make_case(batch, height, width, dtype_name, device, seed=0) -> Case:
    """Realistic inputs (see :func:`make_alpha_and_trimap`), generated on the CPU then moved."""
    gen = torch.Generator().manual_seed(seed)
    alpha255, trimap = make_alpha_and_trimap(batch, height, width, gen)
    fg = torch.randint(0, 256, (batch, 3, height, width), generator=gen).float()
    bg = torch.randint(0, 256, (batch, 3, height, width), generator=gen).float()
    a = alpha255 / 255.0
    image = (a * fg + (1.0 - a) * bg).round().clamp(0, 255)
    noise = 0.05 * torch.randn(batch, 1, height, width, generator=gen)
    pred = (a + noise).clamp(0.0, 1.0)
    if dtype_name == "float32":
        pred_dtype, data_dtype = torch.float32, torch.float32
    elif dtype_name == "bf16+uint8":
        pred_dtype, data_dtype = torch.bfloat16, torch.uint8
    else:
        raise ValueError(f"dtype row {dtype_name!r}")

    def put(t, dtype):
        return t.to(dtype).to(device).contiguous()

    pred = put(pred, pred_dtype).requires_grad_(True)
    return Case(batch, height, width, dtype_name, pred, put(alpha255, data_dtype),
                put(trimap, data_dtype), put(image, data_dtype), put(fg, data_dtype),
                put(bg, data_dtype))


# --------------------------------------------------------------------------- contenders


_COMPILED_CACHE: dict[tuple, Callable] = {}


def compiled_reference(case: Case) -> Callable:
    """``torch.compile(dim_loss_reference, dynamic=False)``, one per (size, dtype row, device)."""
    key = (case.size, case.dtype_name, case.pred.device.type)
    if key not in _COMPILED_CACHE:
        # Every (size, dtype) is one more specialisation of the same code object: raise the
        # recompile limit so dynamo never silently falls back to eager.
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), 256))
        _COMPILED_CACHE[key] = torch.compile(dim_loss_reference, dynamic=False)
    return _COMPILED_CACHE[key]


def make_loss_fn(contender: str, case: Case) -> Callable[[], torch.Tensor]:
    """A no-argument callable computing ``contender``'s loss on ``case`` (graph attached)."""
    p, a, t, img, fg, bg = case.inputs
    if contender == "naive":
        return lambda: seed_total_loss(img, a, fg, bg, t, p, wl=WL)
    if contender == "eager":
        return lambda: dim_loss_reference(p, a, t, img, fg, bg, wl=WL, eps=EPS)
    if contender == "compiled":
        fn = compiled_reference(case)
        return lambda: fn(p, a, t, img, fg, bg, wl=WL, eps=EPS)
    if contender == "fused":
        return lambda: mattingloss.dim_loss(p, a, t, img, fg, bg, wl=WL, eps=EPS)
    raise ValueError(contender)


def loss_and_grad(loss_fn, pred) -> tuple[torch.Tensor, torch.Tensor]:
    pred.grad = None
    loss = loss_fn()
    loss.backward()
    grad = pred.grad.detach().clone()
    pred.grad = None
    return loss.detach().clone(), grad


class MismatchError(AssertionError):
    pass


def rounding_slack(case: Case) -> torch.Tensor:
    """Per pixel, how far two correct float32 gradients may differ through rounding alone.

    ``d/dx sqrt(x^2 + eps^2) = x / sqrt(x^2 + eps^2)`` swings from -1 to 1 within a few eps
    (1e-6) of ``x = 0``. Where a residual is within float32 rounding of zero -- ``|p - alpha/255|
    < 2e-5``, or ``|p*fg + (1-p)*bg - image| < 1e-3`` for a channel (float32 resolves 0..255
    data to 1.5e-5, and implementations order the composite differently) -- that term's
    derivative is decided by rounding, and two correct kernels may disagree by up to twice the
    term's weight: ``2*wl`` for the alpha term, ``2*(1-wl)*|fg-bg|/(3*255)`` per channel, times
    1/N. Where ``p`` is exactly 0 or 1 every ordering of the arithmetic is exact (a residual
    there is exactly zero or far from it), so those pixels get no slack. Elsewhere the slack is
    0: about one pixel in a thousand of the unknown region carries some.
    """
    p = case.pred.detach().double()
    a = case.alpha.double() / 255.0
    fg, bg, image = case.fg.double(), case.bg.double(), case.image.double()
    unknown = ((case.trimap == 128) & (p != 0) & (p != 1)).double()
    near_alpha = ((p - a).abs() < 2e-5).double()
    near_comp = ((p * fg + (1.0 - p) * bg - image).abs() < 1e-3).double()
    slack = 2 * WL * near_alpha + 2 * (1 - WL) / (3 * 255.0) * ((fg - bg).abs() * near_comp).sum(1, keepdim=True)
    n = (case.trimap == 128).sum().clamp(min=1).double()
    return slack * unknown / n


def check_against_fused(case: Case, contender: str, loss_fn, expected) -> str:
    """Raise MismatchError unless ``contender`` matches fused's loss and gradient.

    Returns a short description of the tolerance used (see the module docstring).
    """
    exp_loss, exp_grad = expected
    loss, grad = loss_and_grad(loss_fn, case.pred)
    bf16 = case.pred.dtype == torch.bfloat16
    try:
        if bf16 and contender == "naive":
            torch.testing.assert_close(loss.double(), exp_loss.double(), rtol=1e-2, atol=1e-6)
            rel = ((grad.double() - exp_grad.double()).norm() / exp_grad.double().norm()).item()
            if not rel <= 0.1:
                raise AssertionError(f"gradient relative L2 error {rel:.3g} > 0.1")
            return f"bf16 compute: loss rtol 1e-2, grad rel-L2 {rel:.2g} <= 0.1"
        torch.testing.assert_close(loss.double(), exp_loss.double(), rtol=1e-4, atol=1e-6)
        if grad.dtype != exp_grad.dtype:
            raise AssertionError(f"gradient dtype {grad.dtype} != {exp_grad.dtype}")
        rtol = 1.6e-2 if bf16 else 1e-4
        want = exp_grad.double()
        atol = 1e-5 * (want.abs().max().item() or 1.0)
        slack = rounding_slack(case)
        diff = (grad.double() - want).abs()
        tight = atol + rtol * want.abs()
        if bf16:  # the float32 slack, plus its bfloat16 rounding
            slack = slack * (1 + rtol)
        bad = diff > tight + slack
        if bad.any():
            i = tuple(int(v) for v in torch.nonzero(bad)[0])
            raise AssertionError(
                f"gradient: {int(bad.sum())} of {bad.numel()} elements differ beyond rtol {rtol:g}, "
                f"atol {atol:.3g} and the rounding slack; first at {i}: {grad[i].item():.9g} vs "
                f"fused {exp_grad[i].item():.9g} (slack {slack[i].item():.3g})")
        loose = int((diff > tight).sum())
        return (f"loss rtol 1e-4, grad rtol {rtol:g} ({loose} of {int((slack > 0).sum())} "
                f"rounding-sensitive pixels used their slack)")
    except AssertionError as err:
        raise MismatchError(
            f"{contender} does not match fused on {case.label}: {err}") from None


# --------------------------------------------------------------------------- measuring


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


@dataclass
class TimingPolicy:
    min_time: float  # seconds of timed repetitions per row
    min_reps: int
    max_reps: int
    warmup: int
    rounds: int = 1  # the rows of a case take turns this many times (see bench_case)

    def per_round(self) -> "TimingPolicy":
        return TimingPolicy(self.min_time / self.rounds, -(-self.min_reps // self.rounds),
                            max(1, self.max_reps // self.rounds), self.warmup)


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_statement(run, setup, device, policy: TimingPolicy) -> Timing:
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


_TIMED_MARK = "bench::timed_statement"


def cpu_peak_bytes(run, setup) -> tuple[int, object, object]:
    """Peak extra CPU memory of ``run(setup())`` from the profiler's allocator records.

    The profiler records every allocation and free of the c10 CPU allocator with a timestamp.
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


def measure_peak_bytes(run, setup, device) -> int:
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


def memory_method(device) -> str:
    if device.type == "cuda":
        return "cuda max_memory_allocated - memory_allocated before"
    return "torch.profiler profile_memory: peak running sum of CPU allocator records"


def mode_statement(loss_fn, pred, mode):
    """``(setup, run)`` for ``mode``: ``run(setup())`` is the timed statement."""

    def clear_grad():
        pred.grad = None

    if mode == "forward":
        return clear_grad, lambda _: loss_fn()
    if mode == "backward":
        def forward_untimed():
            clear_grad()
            return loss_fn()
        return forward_untimed, lambda loss: loss.backward()
    if mode == "full":
        return clear_grad, lambda _: loss_fn().backward()
    raise ValueError(mode)


# --------------------------------------------------------------------------- the grid


@dataclass
class Environment:
    device: torch.device
    device_type: str
    device_name: str
    torch_version: str
    threads: int
    date: str
    mattingloss_version: str = ""
    git_commit: str = ""

    @property
    def slug(self) -> str:
        name = re.sub(r"[^a-z0-9]+", "-", self.device_name.lower()).strip("-") or "unknown"
        if self.device_type == "cpu":
            return f"cpu-{name}-{self.threads}threads"
        return f"cuda-{name}"

    def meta(self) -> dict:
        return {
            "device_type": self.device_type,
            "device_name": self.device_name,
            "torch_version": self.torch_version,
            "threads": self.threads,
            "date": self.date,
        }


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def detect_environment(choice: str) -> Environment:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench.py: --device cuda but CUDA is not available")
    device = torch.device(choice)
    name = torch.cuda.get_device_name(device) if choice == "cuda" else cpu_model_name()
    return Environment(device, choice, name, torch.__version__, torch.get_num_threads(),
                       datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                       getattr(mattingloss, "__version__", ""), git_commit())


def git_commit() -> str:
    """The checkout's commit (with "+dirty" when it has changes), or "" outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("+dirty" if commit and dirty else "")


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def other_cpu_use(seconds: float = 0.5) -> float | None:
    """Busy share of all CPUs over ``seconds`` while this process sleeps (Linux /proc/stat).

    Everything busy then is another process: a CPU benchmark run beside it is noisy.
    """
    def sample():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]), idle  # guest time is already in user

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return None if total <= 0 else 1.0 - (idle1 - idle0) / total


class Progress:
    def __init__(self, total: int):
        self.total, self.done = total, 0

    def __call__(self, text: str):
        self.done += 1
        print(f"[{self.done}/{self.total}] {text} ...", file=sys.stderr, flush=True)

    @staticmethod
    def note(text: str):
        print(f"    {text}", file=sys.stderr, flush=True)


def base_row(env: Environment, case_size, batch, height, width, dtype, contender, mode) -> dict:
    row = {c: "" for c in CSV_COLUMNS}
    row.update(env.meta())
    row.update(contender=contender, mode=mode, size=case_size, batch=batch, height=height,
               width=width, dtype=dtype)
    return row


def fill_timing(row: dict, timing: Timing):
    row.update(median_ms=timing.median * 1e3, p20_ms=timing.percentile(0.2) * 1e3,
               p80_ms=timing.percentile(0.8) * 1e3, reps=len(timing.times_s))


def copy_statement(case: Case, device):
    """The bandwidth yardstick: ``dst.copy_(src)`` with src as large as the loss's traffic.

    Returns ``(setup, run, bytes moved)``."""
    nbytes = case.traffic_bytes("full")
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return (lambda: None), (lambda _: dst.copy_(src)), 2 * src.numel() * src.element_size()


def check_case(case: Case, contenders, progress) -> dict[str, Callable]:
    """Check every contender's loss and gradient against fused; returns their loss functions."""
    loss_fns = {name: make_loss_fn(name, case) for name in contenders}
    expected = loss_and_grad(make_loss_fn("fused", case), case.pred)
    for contender in contenders:
        if contender == "fused":
            continue
        t0 = time.perf_counter()
        how = check_against_fused(case, contender, loss_fns[contender], expected)
        extra = f" (compiled + checked in {time.perf_counter() - t0:.1f} s)" if contender == "compiled" else ""
        progress.note(f"check {contender} == fused on {case.label}: ok, {how}{extra}")
    return loss_fns


def bench_case(env, case: Case, contenders, modes, policy, progress) -> list[dict]:
    """Check every contender against fused, then the (mode x speed, memory) grid.

    The copy yardstick and every (contender, mode) take turns: ``policy.rounds`` rounds, each
    giving every row ``1/rounds`` of its repetitions, so a slow drift of the machine (another
    tenant's memory traffic on a shared host, CPU clocks) falls on every row alike and the
    ratios between rows stay fair. The figures are over all repetitions of all rounds."""
    loss_fns = check_case(case, contenders, progress)
    copy_setup, copy_run, moved = copy_statement(case, env.device)
    statements = {("copy", "copy"): (copy_setup, copy_run)}
    for contender in contenders:
        for mode in modes:
            statements[(contender, mode)] = mode_statement(loss_fns[contender], case.pred, mode)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in statements}
    per_round = policy.per_round()
    for r in range(policy.rounds):
        progress.note(f"timing round {r + 1}/{policy.rounds} of {case.label}")
        for (contender, mode), (setup, run) in statements.items():
            times[(contender, mode)] += time_statement(run, setup, env.device, per_round).times_s
            case.pred.grad = None

    del statements[("copy", "copy")], copy_setup, copy_run  # free its buffers before measuring memory
    copy_timing = Timing(times[("copy", "copy")])
    copy_bw = moved / copy_timing.median / 1e9
    row = base_row(env, case.size, case.batch, case.height, case.width, case.dtype_name, "copy", "copy")
    fill_timing(row, copy_timing)
    row.update(traffic_bytes=moved, bandwidth_gbs=copy_bw, copy_bandwidth_gbs=copy_bw, copy_fraction=1.0)
    rows = [row]
    progress(f"copy {case.label}")
    for contender in contenders:
        for mode in modes:
            progress(f"{contender} {mode} {case.label}")
            setup, run = statements[(contender, mode)]
            timing = Timing(times[(contender, mode)])
            peak = measure_peak_bytes(run, setup, env.device)
            case.pred.grad = None
            row = base_row(env, case.size, case.batch, case.height, case.width, case.dtype_name,
                           contender, mode)
            fill_timing(row, timing)
            traffic = case.traffic_bytes(mode)
            bandwidth = traffic / timing.median / 1e9
            row.update(
                peak_extra_bytes=peak, peak_extra_mb=peak / 2**20, grad_bytes=case.grad_bytes,
                peak_over_grad=peak / case.grad_bytes, traffic_bytes=traffic,
                bandwidth_gbs=bandwidth, copy_bandwidth_gbs=copy_bw,
                copy_fraction=bandwidth / copy_bw, memory_method=memory_method(env.device),
            )
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- trimap row


def cv2_trimap_loop(alpha_u8: torch.Tensor, erode_size: int, dilate_size: int):
    """Per-sample OpenCV erode/dilate, the usual data-loader code (None without cv2)."""
    try:
        import cv2
    except ImportError:
        return None
    import numpy as np

    erode_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (erode_size, erode_size))
    dilate_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (dilate_size, dilate_size))

    def run(_):
        device = alpha_u8.device
        batch = alpha_u8.cpu().numpy()
        out = np.empty_like(batch)
        for i, a in enumerate(batch[:, 0]):
            fg = cv2.erode((a == 255).astype(np.uint8), erode_k, iterations=1)
            unknown = cv2.dilate((a != 0).astype(np.uint8), dilate_k, iterations=1)
            out[i, 0] = np.where(fg > 0, 255, np.where(unknown > 0, 128, 0))
        return torch.from_numpy(out).to(device)

    return run


def bench_trimap(env, size, policy, progress) -> list[dict]:
    """``make_trimap`` on a uint8 batch vs the per-sample cv2 loop (same erode/dilate size)."""
    batch, height, width = size
    label = f"{batch}x{height}x{width} uint8"
    alpha255, _ = make_alpha_and_trimap(batch, height, width, torch.Generator().manual_seed(1))
    alpha_u8 = alpha255.to(torch.uint8).to(env.device)
    rows = []
    try:
        from mattingloss.trimap import make_trimap
    except ImportError as err:
        progress(f"make_trimap trimap {label}")
        progress.note(f"skipping the trimap row: mattingloss.trimap is not importable ({err})")
        return rows
    statements = {"make_trimap": lambda _: make_trimap(alpha_u8, TRIMAP_KERNEL, TRIMAP_KERNEL,
                                                       shape="ellipse")}
    loop = cv2_trimap_loop(alpha_u8, TRIMAP_KERNEL, TRIMAP_KERNEL)
    if loop is None:
        print("bench.py: cv2 is not importable, the trimap row has no cv2_loop contender",
              file=sys.stderr)
    else:
        statements["cv2_loop"] = loop
        ours, theirs = statements["make_trimap"](None), loop(None)
        if not torch.equal(ours.cpu(), theirs.cpu()):
            differ = (ours.cpu() != theirs.cpu()).sum().item()
            raise MismatchError(f"make_trimap differs from the cv2 loop on {label} at {differ} pixels")
        progress.note(f"check make_trimap == cv2 loop on {label}: ok, bit-for-bit")
    for name, run in statements.items():
        progress(f"{name} trimap {label}")
        timing = time_statement(run, lambda: None, env.device, policy)
        row = base_row(env, f"{batch}x{height}x{width}", batch, height, width, "uint8", name, "trimap")
        fill_timing(row, timing)
        traffic = 2 * alpha_u8.numel()  # alpha read + trimap written, uint8
        peak = measure_peak_bytes(run, lambda: None, env.device)
        row.update(traffic_bytes=traffic, bandwidth_gbs=traffic / timing.median / 1e9,
                   peak_extra_bytes=peak, peak_extra_mb=peak / 2**20,
                   memory_method=memory_method(env.device))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- reporting


def fmt(value, spec=".3g", empty="-"):
    if value == "" or value is None:
        return empty
    if isinstance(value, float) and not math.isfinite(value):
        return empty
    return format(value, spec)


def fmt_share(value):
    return "-" if value is None else f"{value:.0%}"


def fmt_percent(value):
    if value == "":
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def format_table(rows: list[dict]) -> str:
    header = ("contender", "mode", "size", "dtype", "median ms", "p20 ms", "p80 ms", "reps",
              "peak MB", "peak/grad", "GB/s", "% copy")
    lines = [header]
    for r in rows:
        pct = "" if r["copy_fraction"] == "" else 100 * r["copy_fraction"]
        lines.append((r["contender"], r["mode"], r["size"], r["dtype"], fmt(r["median_ms"]),
                      fmt(r["p20_ms"]), fmt(r["p80_ms"]), str(r["reps"]),
                      fmt(r["peak_extra_mb"], ".1f"), fmt(r["peak_over_grad"], ".2f"),
                      fmt(r["bandwidth_gbs"], ".3g"), fmt_percent(pct)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if j < 4 else cell.rjust(w)
                             for j, (cell, w) in enumerate(zip(line, widths))))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def fused_ratios(rows: list[dict]) -> list[dict]:
    """Per (size, dtype): fused full-mode speed-ups and its bandwidth/memory figures."""
    full = {(r["size"], r["dtype"], r["contender"]): r for r in rows if r["mode"] == "full"}
    ratios = []
    for (size, dtype, contender), fused in full.items():
        if contender != "fused":
            continue
        entry = {"size": size, "dtype": dtype, "pixels": fused["batch"] * fused["height"] * fused["width"],
                 "copy_fraction": fused["copy_fraction"], "peak_over_grad": fused["peak_over_grad"]}
        for other in ("naive", "eager", "compiled"):
            o = full.get((size, dtype, other))
            entry[f"speedup_vs_{other}"] = o["median_ms"] / fused["median_ms"] if o else None
        ratios.append(entry)
    return ratios


def format_ratios(ratios: list[dict]) -> str:
    lines = ["fused, full mode (forward + backward):",
             f"  {'size':<14}{'dtype':<12}{'vs naive':>10}{'vs eager':>10}{'vs compiled':>13}"
             f"{'% copy bw':>11}{'peak/grad':>11}"]
    for e in ratios:
        def x(v):
            return "-" if v is None else f"{v:.2f}x"
        lines.append(f"  {e['size']:<14}{e['dtype']:<12}{x(e['speedup_vs_naive']):>10}"
                     f"{x(e['speedup_vs_eager']):>10}{x(e['speedup_vs_compiled']):>13}"
                     f"{100 * e['copy_fraction']:>10.0f}%{e['peak_over_grad']:>11.2f}")
    return "\n".join(lines)


def evaluate_targets(device_type: str, ratios: list[dict]) -> list[dict]:
    """The project's targets, evaluated (not enforced) on the rows that exist."""
    targets = []

    def add(name, entries, key, threshold, higher_is_better=True):
        values = [e[key] for e in entries if e.get(key) is not None]
        if not values:
            targets.append({"target": name, "value": None, "threshold": threshold, "status": "n/a"})
            return
        worst = min(values) if higher_is_better else max(values)
        ok = worst >= threshold if higher_is_better else worst <= threshold
        targets.append({"target": name, "value": worst, "threshold": threshold,
                        "status": "PASS" if ok else "FAIL"})

    if device_type == "cpu":
        sel = [e for e in ratios if e["size"] == "16x320x320" and e["dtype"] == "float32"]
        add("CPU 16x320x320 float32 full: fused >= 10x eager", sel, "speedup_vs_eager", 10.0)
        add("CPU 16x320x320 float32 full: fused >= 5x compiled", sel, "speedup_vs_compiled", 5.0)
        add("CPU 16x320x320 float32 full: fused >= 50% copy bandwidth", sel, "copy_fraction", 0.5)
        add("CPU 16x320x320 float32 full: peak extra memory <= 1.5x gradient", sel,
            "peak_over_grad", 1.5, higher_is_better=False)
    else:
        big = [e for e in ratios if e["pixels"] >= 4 * 2**20 and e["dtype"] == "float32"]
        add("GPU float32 >= 4M pixels full: fused >= 85% copy bandwidth", big, "copy_fraction", 0.85)
        add("GPU float32 >= 4M pixels full: fused >= 3x compiled", big, "speedup_vs_compiled", 3.0)
        add("GPU float32 >= 4M pixels full: fused >= 30x naive", big, "speedup_vs_naive", 30.0)
    return targets


def format_targets(targets: list[dict]) -> str:
    lines = ["targets (worst case over the matching rows; reported, not enforced):"]
    for t in targets:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        lines.append(f"  [{t['status']:>4}] {t['target']}  (measured {value}, threshold {t['threshold']:g})")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def write_chart(path: Path, rows: list[dict], env: Environment) -> bool:
    """Full-mode time and bandwidth per size per contender; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    full = [r for r in rows if r["mode"] == "full"]
    dtypes = [d for d in DTYPES if any(r["dtype"] == d for r in full)]
    if not dtypes:
        return False
    contenders = [c for c in CONTENDERS if any(r["contender"] == c for r in full)]
    fig, axes = plt.subplots(len(dtypes), 2, figsize=(12, 4 * len(dtypes)), squeeze=False)
    width = 0.8 / max(1, len(contenders))
    for i, dtype in enumerate(dtypes):
        sizes = list(dict.fromkeys(r["size"] for r in full if r["dtype"] == dtype))
        copy = {r["size"]: r["bandwidth_gbs"] for r in rows if r["mode"] == "copy" and r["dtype"] == dtype}
        for j, (key, ylabel, log) in enumerate((("median_ms", "median time, ms (log)", True),
                                                ("bandwidth_gbs", "achieved GB/s", False))):
            ax = axes[i][j]
            for k, contender in enumerate(contenders):
                by_size = {r["size"]: r for r in full if r["dtype"] == dtype and r["contender"] == contender}
                xs = [s + (k - (len(contenders) - 1) / 2) * width for s in range(len(sizes))]
                ys = [by_size[s][key] if s in by_size else float("nan") for s in sizes]
                ax.bar(xs, ys, width, label=contender)
            if key == "bandwidth_gbs" and copy:
                ax.plot(range(len(sizes)), [copy.get(s, float("nan")) for s in sizes], "k_",
                        markersize=30, mew=2, label="copy")
            if log:
                ax.set_yscale("log")
            ax.set_xticks(range(len(sizes)), sizes)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{dtype}, full (forward + backward)")
            ax.legend(fontsize=8)
    fig.suptitle(f"mattingloss DIM loss, {env.device_name} ({env.device_type}, "
                 f"{env.threads} threads), torch {env.torch_version}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark mattingloss.dim_loss against naive, eager and compiled PyTorch.")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--sizes", type=parse_sizes, default=None,
                        help=f"comma-separated BxHxW (default {DEFAULT_SIZES}; --quick: {QUICK_SIZES})")
    parser.add_argument("--dtypes", type=lambda s: parse_choices(s, DTYPES, "--dtypes"),
                        default=list(DTYPES), help="float32,bf16+uint8 (default both)")
    parser.add_argument("--contenders", type=lambda s: parse_choices(s, CONTENDERS, "--contenders"),
                        default=None, help="subset of naive,eager,compiled,fused "
                        "(default all; --quick: naive,eager,fused)")
    parser.add_argument("--modes", type=lambda s: parse_choices(s, MODES, "--modes"),
                        default=list(MODES), help="subset of forward,backward,full")
    parser.add_argument("--quick", action="store_true",
                        help="one small size, fewer repetitions, no compiled: under a minute")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds of timed repetitions per row (default 1.0; --quick 0.2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds in which a case's rows take turns (default 5, --quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--check-only", action="store_true",
                        help="only check every contender against fused (no timing, no files)")
    parser.add_argument("--no-trimap", action="store_true", help="skip the trimap row")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = detect_environment(args.device)
    sizes = args.sizes or parse_sizes(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.contenders is None:
        contenders = list(QUICK_CONTENDERS if args.quick else CONTENDERS)
        if args.quick:
            print("bench.py: --quick skips the compiled contender (torch.compile builds C++ per "
                  "shape and dtype); add --contenders naive,eager,compiled,fused to include it",
                  file=sys.stderr)
    else:
        contenders = args.contenders
    if args.quick:
        policy = TimingPolicy(min_time=args.min_time or 0.2, min_reps=3, max_reps=50, warmup=1,
                              rounds=args.rounds or 1)
    else:
        policy = TimingPolicy(min_time=args.min_time or 1.0, min_reps=5, max_reps=200, warmup=2,
                              rounds=args.rounds or 5)

    print(f"bench.py: {env.device_type} ({env.device_name}), torch {env.torch_version}, "
          f"{env.threads} threads, sizes {','.join('x'.join(map(str, s)) for s in sizes)}, "
          f"dtypes {','.join(args.dtypes)}, contenders {','.join(contenders)}", file=sys.stderr)
    if "fused" not in contenders:
        contenders = contenders + ["fused"]  # the oracle of the check; timed too
    if not hasattr(mattingloss, "dim_loss"):
        raise SystemExit("bench.py: mattingloss.dim_loss is missing (is the extension built?)")
    load_before, busy_before = load_average(), other_cpu_use()
    if env.device_type == "cpu" and busy_before is not None and busy_before > 0.1:
        print(f"bench.py: warning: other processes use {busy_before:.0%} of the CPUs; the CPU "
              "timings will be noisy (a parallel op waits for a busy core)", file=sys.stderr)

    cases = [(s, d) for s in sizes for d in args.dtypes]
    if args.check_only:
        for (batch, height, width), dtype_name in cases:
            check_case(make_case(batch, height, width, dtype_name, env.device), contenders,
                       Progress(len(cases)))
        print(f"bench.py: {', '.join(contenders)} match fused on every size and dtype")
        return 0
    total = len(cases) * (1 + len(contenders) * len(args.modes)) + (0 if args.no_trimap else 2)
    progress = Progress(total)
    started = time.perf_counter()
    rows: list[dict] = []
    for (batch, height, width), dtype_name in cases:
        case = make_case(batch, height, width, dtype_name, env.device)
        rows += bench_case(env, case, contenders, args.modes, policy, progress)
        del case
    if not args.no_trimap:
        rows += bench_trimap(env, sizes[0], policy, progress)
    elapsed = time.perf_counter() - started
    load_after, busy_after = load_average(), other_cpu_use()

    ratios = fused_ratios(rows)
    targets = evaluate_targets(env.device_type, ratios)
    print(f"\nmattingloss benchmark: {env.device_type} {env.device_name}, torch {env.torch_version}, "
          f"{env.threads} threads, {env.date}, {elapsed:.0f} s")
    print(f"mattingloss {env.mattingloss_version} ({env.git_commit or 'no git'}); CPU use by other "
          f"processes {fmt_share(busy_before)} before, {fmt_share(busy_after)} after; 1-minute load "
          f"average {fmt(load_before, '.2f')} before, {fmt(load_after, '.2f')} after (includes this run)")
    print(f"memory: {memory_method(env.device)}")
    print("bandwidth: forward/full = inputs read + gradient written; backward = gradient read + "
          "written; % copy = of dst.copy_(src) on the same traffic\n")
    print(format_table(rows))
    print()
    print(format_ratios(ratios))
    print()
    print(format_targets(targets))

    args.out.mkdir(parents=True, exist_ok=True)
    stem = env.slug + ("-quick" if args.quick else "")
    csv_path, json_path, png_path = (args.out / f"{stem}.{ext}" for ext in ("csv", "json", "png"))
    write_csv(csv_path, rows)
    with open(json_path, "w") as fh:
        json.dump({"meta": {**env.meta(), "quick": args.quick, "elapsed_s": elapsed,
                            "mattingloss_version": env.mattingloss_version,
                            "git_commit": env.git_commit,
                            "load_average_1min": {"before": load_before, "after": load_after},
                            "other_cpu_use": {"before": busy_before, "after": busy_after},
                            "memory_method": memory_method(env.device),
                            "timing": vars(policy) | {"statistic": "median, p20, p80 of single repetitions"},
                            "command": sys.argv},
                   "rows": rows, "fused_ratios": ratios, "targets": targets}, fh, indent=1)
    written = [csv_path, json_path]
    if write_chart(png_path, rows, env):
        written.append(png_path)
    else:
        print("bench.py: matplotlib is not installed, no chart written", file=sys.stderr)
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MismatchError as err:
        print(f"bench.py: MISMATCH: {err}", file=sys.stderr)
        sys.exit(1)
