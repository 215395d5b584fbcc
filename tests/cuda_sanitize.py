#!/usr/bin/env python
"""Every CUDA kernel variant, called once with small inputs: the program that
scripts/gpu_check.sh runs under compute-sanitizer (memcheck, racecheck,
initcheck, synccheck), and its determinism check.

Each case builds its inputs on the CPU from a fixed seed, runs on the device
and returns the tensors to compare (loss, gradients, ...). The driver runs it
on the device and on the CPU and compares the two (same math through the
shared headers: tight tolerances, exact for integer outputs); with --repeat N
it runs it N times on the device and requires bitwise-equal results.

    python tests/cuda_sanitize.py                 # each case once on CUDA, compared with the CPU
    python tests/cuda_sanitize.py --repeat 20     # and bitwise determinism over 20 calls
    python tests/cuda_sanitize.py --device cpu    # dry run on a machine with no GPU
    python tests/cuda_sanitize.py --list          # the cases;  -k WORD selects by name
    python tests/cuda_sanitize.py --large         # also the >2^31-element case (~11 GB GPU, ~25 GB RAM)

Adding an op: write one function ``def case_xxx(device) -> dict[str, Tensor]`` and
decorate it with ``@case(needs=("mattingloss::op_name",))``. A case whose op is
not built (no kernel for the device) is skipped with a message, not failed.
Keep each case cheap: racecheck multiplies its cost by 10-100.
Not collected by pytest (no test_ prefix); timing belongs in benchmarks/.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root

import torch  # noqa: E402

import mattingloss  # noqa: E402
from mattingloss import dim_loss  # noqa: E402
from mattingloss.trimap import make_trimap  # noqa: E402

Outputs = Dict[str, torch.Tensor]


@dataclass
class Case:
    name: str
    fn: Callable[[str], Outputs]
    needs: tuple = ()  # "mattingloss::op" names or "mattingloss.attr" Python names
    large: bool = False  # only with --large (big memory, not under a sanitizer)
    rtol: dict = field(default_factory=dict)  # dtype -> tolerance, overrides TOLERANCE


CASES: list[Case] = []


def case(fn=None, *, needs=("mattingloss::dim_loss_forward",), large=False, rtol=None):
    """Registers ``fn(device) -> {name: tensor}`` as a case (usable with or without arguments)."""
    def register(f):
        CASES.append(Case(f.__name__.removeprefix("case_"), f, tuple(needs), large, dict(rtol or {})))
        return f
    return register(fn) if fn is not None else register


def missing(needs, device: str) -> str | None:
    """Why a case cannot run here (its op or function is not built), or None."""
    for need in needs:
        if "::" in need:
            ns, op = need.split("::", 1)
            if not hasattr(getattr(torch.ops, ns), op):
                return f"op {need} is not registered (not built?)"
            key = "CUDA" if device == "cuda" else "CPU"
            if not torch._C._dispatch_has_kernel_for_dispatch_key(need, key):
                return f"op {need} has no {key} kernel in this build"
        else:
            obj = sys.modules["mattingloss"]
            for part in need.split(".")[1:]:
                if not hasattr(obj, part):
                    return f"{need} does not exist (not built?)"
                obj = getattr(obj, part)
    return None


# --------------------------------------------------------------------------- inputs

PRED_DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}


def generator(*key) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def away_from_integers(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Integers in 0..255, each at least 0.3 from x (a float64 tensor on the 0..255 scale).

    sqrt(d^2 + eps^2) has a derivative that float rounding decides where |d| is
    below about eps^(2/3); keeping every residual far from 0 makes the CPU and
    CUDA gradients comparable elementwise with tight tolerances.
    """
    n = x.round()
    close = (x - n).abs() < 0.3
    step = torch.where(n < 128, 1.0, -1.0) * torch.randint(1, 4, x.shape, generator=g)
    return torch.where(close, n + step, n).clamp(0, 255)


def dim_inputs(B, H, W, pred_dtype, target, *, comp=True, mask="equal", key=()):
    """CPU inputs in the seed's conventions (pred in [0, 1], targets 0..255), every residual
    (alpha and composite) well away from 0 after pred is rounded to its dtype."""
    g = generator(B, H, W, str(pred_dtype), target, comp, mask, *key)
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64).to(pred_dtype)
    p = pred.double()
    alpha = away_from_integers(p * 255, g)
    if mask == "equal":
        m = torch.tensor([0.0, 128.0, 255.0])[torch.randint(0, 3, (B, 1, H, W), generator=g)]
    elif mask == "range":  # unknown where 85 < m < 170
        m = torch.tensor([0.0, 85.0, 100.0, 128.0, 169.0, 170.0, 255.0])[torch.randint(0, 7, (B, 1, H, W), generator=g)]
    else:  # soft weights, some zero
        m = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64) * (torch.rand(B, 1, H, W, generator=g) > 0.3)
    x = {"pred_alpha": pred, "alpha": alpha, ("weight" if mask == "weight" else "trimap"): m}
    if comp:
        fg = torch.randint(0, 256, (B, 3, H, W), generator=g).double()
        bg = torch.randint(0, 256, (B, 3, H, W), generator=g).double()
        x.update(image=away_from_integers(p * fg + (1 - p) * bg, g), fg=fg, bg=bg)
    tdt = torch.uint8 if target == "uint8" else pred_dtype
    for k in x:
        if k != "pred_alpha":  # soft weights stay float32 next to uint8 targets
            x[k] = x[k].to(torch.float32 if k == "weight" and tdt == torch.uint8 else tdt)
    return x


def to_device(x: dict, device: str, *, offset=0, offset_only=None, channels_last=False) -> dict:
    """Copies to ``device``; offset > 0 gives views that start ``offset`` elements into their
    storage (contiguous but not aligned to a vector: the kernels' non-vector path), for every
    input or only for ``offset_only``."""
    out = {}
    for k, t in x.items():
        if offset and (offset_only is None or k == offset_only):
            buf = torch.empty(t.numel() + offset, dtype=t.dtype, device=device)
            view = buf[offset:].view(t.shape)
            view.copy_(t)
            out[k] = view
        elif channels_last:
            out[k] = t.to(device).contiguous(memory_format=torch.channels_last)
        else:
            out[k] = t.to(device)
    return out


def run_dim(device, B, H, W, pred="f32", target="same", *, comp=True, mask="equal", reduction="mean",
            grads=("pred",), offset=0, offset_only=None, channels_last=False, components=False, grad_scale=0.75,
            **options):
    """dim_loss forward + backward; returns the loss, components and requested gradients."""
    pred_dtype = PRED_DTYPES[pred]
    x = to_device(dim_inputs(B, H, W, pred_dtype, target, comp=comp, mask=mask,
                             key=(reduction, grads, offset)), device, offset=offset, offset_only=offset_only,
                  channels_last=channels_last)
    wanted = {"pred": "pred_alpha", "fg": "fg", "bg": "bg"}
    inputs = [x[wanted[k]].requires_grad_() for k in grads]
    if mask == "range":
        options["unknown_range"] = (85.0, 170.0)
    out = dim_loss(**x, reduction=reduction, return_components=components, **options)
    loss, *parts = out if components else (out,)
    result = {"loss": loss.detach()}
    result.update({f"component{i}": c for i, c in enumerate(parts)})
    if inputs:
        g = generator(B, H, W, "grad_output")
        grad_out = (torch.rand(loss.shape, generator=g, dtype=torch.float64) + 0.5).to(loss.dtype).to(device)
        if loss.dim() == 0:
            grad_out = torch.full_like(loss, grad_scale)
        got = torch.autograd.grad(loss, inputs, grad_out)  # no retain_graph: the in-place backward path
        result.update({f"grad_{k}": v for k, v in zip(grads, got)})
    return result


# --------------------------------------------------------------------------- cases: DIM loss

# Every prediction dtype x target kind (uint8, float of pred's dtype) x with/without comp, on
# a (2,1,33,64) batch (H*W % 4 == 0: the vector path), rotating masks and reductions.
_MASKS = ("equal", "range", "weight")
_REDUCTIONS = ("mean", "sample", "sum", "none")


def _dtype_case(i, pred, target, comp):
    def fn(device):
        return run_dim(device, 2, 33, 64, pred, target, comp=comp, mask=_MASKS[i % 3], reduction=_REDUCTIONS[i % 4])
    fn.__name__ = f"case_dim_{pred}_{target}_{'comp' if comp else 'alpha'}_{_MASKS[i % 3]}_{_REDUCTIONS[i % 4]}"
    return fn


_i = 0
for _pred in PRED_DTYPES:
    for _target in ("uint8", "same"):
        for _comp in (True, False):
            case(_dtype_case(_i, _pred, _target, _comp))
            _i += 1


# Every mask x reduction, float32, non-vector path (H*W = 17*19, odd).
def _mask_case(mask, reduction):
    def fn(device):
        return run_dim(device, 3, 17, 19, "f32", "same", comp=True, mask=mask, reduction=reduction)
    fn.__name__ = f"case_dim_f32_{mask}_{reduction}_nonvec"
    return fn


for _mask in _MASKS:
    for _reduction in _REDUCTIONS:
        case(_mask_case(_mask, _reduction))


@case
def case_dim_large_sample_block_reduce_vec(device):
    # 512x516 pixels = 258 chunks per sample >= 256 threads: the whole-block final reduction.
    return run_dim(device, 2, 512, 516, "f32", "uint8", comp=True, reduction="mean")


@case
def case_dim_large_sample_block_reduce_nonvec_b1(device):
    # B = 1, H*W % 4 == 3, half precision, weights, sum, no comp.
    return run_dim(device, 1, 513, 515, "f16", "same", comp=False, mask="weight", reduction="sum")


@case
def case_dim_f64_large_sample_block_reduce(device):
    return run_dim(device, 1, 512, 520, "f64", "same", comp=True, mask="range", reduction="sample",
                   grads=("pred", "fg", "bg"))


@case
def case_dim_many_samples_warp_reduce(device):
    # 300 samples > 256 threads (the per-sample scale loop strides) and > 8 warps.
    return run_dim(device, 300, 5, 7, "f32", "same", comp=True, reduction="sample")


@case
def case_dim_many_samples_bf16_vec(device):
    return run_dim(device, 40, 32, 32, "bf16", "uint8", comp=True, reduction="mean")


@case
def case_dim_b1_single_pixel_f64(device):
    return run_dim(device, 1, 1, 1, "f64", "same", comp=True, reduction="mean", grads=("pred", "fg", "bg"))


@case
def case_dim_b1_3x3_f32_none(device):
    return run_dim(device, 1, 3, 3, "f32", "uint8", comp=True, reduction="none")


@case
def case_dim_unaligned_views_f32(device):
    # Every input a view at storage offset 1 (4-byte aligned, not 16): H*W % 4 == 0 but no vector loads.
    return run_dim(device, 2, 16, 16, "f32", "same", comp=True, reduction="mean", offset=1,
                   grads=("pred", "fg", "bg"))


@case
def case_dim_unaligned_views_f16_uint8(device):
    return run_dim(device, 2, 16, 16, "f16", "uint8", comp=True, mask="range", reduction="sum", offset=1)


@case
def case_dim_unaligned_views_bf16_alpha_only(device):
    return run_dim(device, 3, 8, 8, "bf16", "same", comp=False, reduction="none", offset=3)


@case
def case_dim_unaligned_views_f64_16_bytes(device):
    # float64 vectors are 32 bytes: an offset of 2 elements is 16-byte aligned, still not enough.
    return run_dim(device, 2, 12, 12, "f64", "same", comp=True, reduction="sample", offset=2)


@case
def case_dim_one_unaligned_input(device):
    # Only fg is a view at an odd offset: every input must take the non-vector path with it.
    return run_dim(device, 2, 16, 24, "f32", "same", comp=True, reduction="mean", offset=1, offset_only="fg",
                   grads=("pred", "fg", "bg"))


@case
def case_dim_fg_bg_grads_none_f32(device):
    return run_dim(device, 2, 24, 40, "f32", "same", comp=True, reduction="none", grads=("pred", "fg", "bg"))


@case
def case_dim_fg_bg_grads_only_half(device):
    # fg/bg gradients without the pred gradient, in float16 buffers.
    return run_dim(device, 2, 20, 20, "f16", "same", comp=True, reduction="mean", grads=("fg", "bg"))


@case
def case_dim_components_f32(device):
    return run_dim(device, 2, 32, 32, "f32", "uint8", comp=True, reduction="mean", components=True)


@case
def case_dim_forward_only(device):
    # No gradient requested: the kernels write no gradient buffer.
    with torch.no_grad():
        return run_dim(device, 2, 32, 30, "f32", "uint8", comp=True, reduction="sum", grads=())


@case
def case_dim_no_unknown_pixel(device):
    x = to_device(dim_inputs(2, 16, 16, torch.float32, "uint8"), device)
    x["trimap"].zero_()  # N = 0: loss and gradients 0
    pred = x["pred_alpha"].requires_grad_()
    loss = dim_loss(**x)
    (grad,) = torch.autograd.grad(loss, [pred])
    return {"loss": loss.detach(), "grad_pred": grad}


@case
def case_dim_channels_last_weight_unchecked(device):
    return run_dim(device, 2, 16, 12, "f32", "same", comp=True, mask="weight", reduction="mean",
                   channels_last=True, check_weight=False)


@case
def case_dim_options_wl_eps_scales(device):
    x = to_device(dim_inputs(2, 20, 24, torch.float32, "same"), device)
    for k in ("alpha", "image", "fg", "bg"):
        x[k] = x[k] / 255.0
    x["trimap"] = (x["trimap"] / 255.0).float()
    pred = x["pred_alpha"].requires_grad_()
    loss = dim_loss(**x, wl=0.3, eps=1e-3, alpha_scale=1.0, color_scale=1.0, unknown_value=128 / 255.0)
    (grad,) = torch.autograd.grad(loss, [pred])
    return {"loss": loss.detach(), "grad_pred": grad}


# --------------------------------------------------------------------------- cases: make_trimap

def _alpha_batch(B, H, W, dtype=torch.uint8):
    g = generator("alpha", B, H, W)
    a = torch.randint(0, 256, (B, 1, H // 4 + 1, W // 4 + 1), generator=g).double()
    a = torch.nn.functional.interpolate(a, size=(H, W), mode="bilinear", align_corners=False)
    a = torch.where(a > 200, 255.0, torch.where(a < 60, 0.0, a)).round()  # opaque, clear and soft regions
    return a.to(dtype)


@case(needs=())
def case_trimap_ellipse_fixed(device):
    return {"trimap": make_trimap(_alpha_batch(3, 37, 45).to(device), 5, 9, shape="ellipse")}


@case(needs=())
def case_trimap_rect_iterations_float(device):
    a = (_alpha_batch(2, 40, 33).float() / 255).to(device)
    return {"trimap": make_trimap(a, 4, 6, shape="rect", iterations=2, alpha_scale=1.0)}


@case(needs=())
def case_trimap_random_sizes(device):
    t, es, ds = make_trimap(_alpha_batch(4, 32, 48).to(device), (1, 12), (2, 20),
                            generator=torch.Generator().manual_seed(7), return_sizes=True)
    return {"trimap": t, "sizes": torch.tensor(es + ds)}


# --------------------------------------------------------------------------- cases: large

@case(large=True)
def case_dim_large_more_than_2_31_elements(device):
    """64-bit offsets: image/fg/bg hold 3*26800^2 > 2^31 elements; only the last pixel differs."""
    H = W = 26800
    pred = torch.full((1, 1, H, W), 0.5, dtype=torch.float16, device=device, requires_grad=True)
    alpha = torch.zeros(1, 1, H, W, dtype=torch.uint8, device=device)
    trimap = torch.full((1, 1, H, W), 128, dtype=torch.uint8, device=device)
    image = torch.zeros(1, 3, H, W, dtype=torch.uint8, device=device)
    image[0, 2, -1, -1] = 255
    fg = torch.full((1, 3, H, W), 255, dtype=torch.uint8, device=device)
    bg = torch.zeros(1, 3, H, W, dtype=torch.uint8, device=device)
    loss = dim_loss(pred, alpha, trimap, image, fg, bg, reduction="sum")
    (grad,) = torch.autograd.grad(loss, [pred])
    del image, fg, bg, alpha, trimap
    return {"loss": loss.detach(), "grad_corners": grad[0, 0, [0, -1, -1], [0, -1, -2]],
            "grad_sum": grad.double().sum()}


# --------------------------------------------------------------------------- driver

# Tolerance relative to max|expected| per output dtype (CUDA against the CPU kernel on the same
# inputs). Residuals are kept far from zero, so only rounding and summation order differ:
# float64/float32 a few ulp of the largest value, float16/bfloat16 two ulp of it (plus two
# subnormal steps: float16 gradients of O(1/N) are subnormal). Measured on the CPU against float64
# math on the same inputs: float32 <= 2e-6, float16 <= 6e-4, bfloat16 <= 5e-3 of max.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 2 * 2**-10, torch.bfloat16: 2 * 2**-7}


def compare(got: Outputs, expected: Outputs, rtol_override: dict) -> list[str]:
    problems = []
    for key in expected:
        e, g = expected[key], got.get(key)
        if g is None:
            problems.append(f"{key}: missing on the device")
            continue
        g = g.detach().cpu()
        e = e.detach().cpu()
        if g.shape != e.shape or g.dtype != e.dtype:
            problems.append(f"{key}: {tuple(g.shape)} {g.dtype} on the device, {tuple(e.shape)} {e.dtype} on the CPU")
            continue
        if not (e.is_floating_point() or e.is_complex()):
            if not torch.equal(g, e):
                problems.append(f"{key}: {int((g != e).sum())} of {e.numel()} elements differ (exact expected)")
            continue
        gd, ed = g.double(), e.double()
        if not torch.equal(torch.isnan(gd), torch.isnan(ed)):
            problems.append(f"{key}: NaN in different places")
            continue
        gd, ed = gd.nan_to_num(0.0), ed.nan_to_num(0.0)
        scale = ed.abs().max().item() if ed.numel() else 0.0
        err = (gd - ed).abs().max().item() if ed.numel() else 0.0
        rtol = rtol_override.get(e.dtype, TOLERANCE.get(e.dtype, 1e-5))
        info = torch.finfo(e.dtype)
        atol = 2 * info.smallest_normal * info.eps  # two subnormal steps (float16 gradients of O(1/N))
        if err > rtol * scale + atol:
            problems.append(f"{key}: max |device - cpu| = {err:.3g} > {rtol:g} x max|cpu| + {atol:.2g} "
                            f"= {rtol * scale + atol:.3g}")
    return problems


def bitwise_equal(a: Outputs, b: Outputs) -> list[str]:
    diff = []
    for key in a:
        x, y = a[key].detach().contiguous().reshape(-1), b[key].detach().contiguous().reshape(-1)
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x.view(torch.uint8), y.view(torch.uint8)):
            diff.append(key)
    return diff


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--repeat", type=int, default=1, help="calls per case; all must be bitwise equal")
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison with the CPU")
    parser.add_argument("--large", action="store_true", help="include the large cases (at most 2 calls each)")
    parser.add_argument("-k", dest="select", default="", help="only cases whose name contains this")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--json", help="write a machine-readable report here")
    args = parser.parse_args(argv)

    cases = [c for c in CASES if args.select in c.name and (args.large or not c.large)]
    if args.list:
        print("\n".join(f"{c.name}{'  (large)' if c.large else ''}" for c in cases))
        return 0
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("cuda_sanitize: no CUDA device is visible (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    compare_cpu = device != "cpu" and not args.no_compare
    report = {"device": device, "repeat": args.repeat, "cases": [], "ran": 0, "skipped": 0,
              "mismatched": 0, "nondeterministic": 0, "errors": 0}
    started = time.perf_counter()
    for c in cases:
        entry = {"name": c.name, "status": "ok", "detail": ""}
        report["cases"].append(entry)
        why = missing(c.needs, device)
        if why:
            entry.update(status="skipped", detail=why)
            report["skipped"] += 1
            print(f"SKIP     {c.name}: {why}", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            first = c.fn(device)
            problems = []
            repeats = min(args.repeat, 2) if c.large else args.repeat
            for _ in range(repeats - 1):
                again = c.fn(device)
                differing = bitwise_equal(first, again)
                if differing:
                    problems.append(f"not bitwise reproducible: {', '.join(differing)}")
                    report["nondeterministic"] += 1
                    entry["status"] = "nondeterministic"
                    break
            if compare_cpu:
                mismatch = compare(first, c.fn("cpu"), c.rtol)
                if mismatch:
                    problems += mismatch
                    report["mismatched"] += 1
                    entry["status"] = "mismatch" if entry["status"] == "ok" else entry["status"] + "+mismatch"
            if device == "cuda":
                torch.cuda.synchronize()
        except Exception as error:  # report every case, then fail
            problems = [f"{type(error).__name__}: {error}"]
            entry["status"] = "error"
            report["errors"] += 1
        report["ran"] += 1
        entry["detail"] = "; ".join(problems)
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        label = "ok" if not problems else entry["status"].upper()
        print(f"{label:<8} {c.name}" + (f": {entry['detail']}" if problems else ""), flush=True)
    report["seconds"] = round(time.perf_counter() - started, 2)
    bad = report["mismatched"] + report["nondeterministic"] + report["errors"]
    checks = (["bitwise over %d calls" % args.repeat] if args.repeat > 1 else []) + (["against the CPU"] if compare_cpu else [])
    print(f"cuda_sanitize: {report['ran']} cases ran on {device} ({', '.join(checks) or 'no comparison'}), "
          f"{report['skipped']} skipped, {report['mismatched']} mismatched, {report['nondeterministic']} "
          f"nondeterministic, {report['errors']} raised, {report['seconds']:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
