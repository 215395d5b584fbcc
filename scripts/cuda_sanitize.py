#!/usr/bin/env python
"""Every CUDA kernel variant, called once with small inputs: the program that
scripts/gpu_check.sh runs under compute-sanitizer (memcheck, racecheck,
initcheck, synccheck), and its determinism check.

Each case builds its inputs on the CPU from a fixed seed, runs on the device
and returns the tensors to compare (loss, gradients, ...). The driver runs it
on the device and on the CPU and compares the two (same math through the
shared headers: tight tolerances, exact for integer outputs); with --repeat N
it runs it N times on the device and requires bitwise-equal results.

    python scripts/cuda_sanitize.py                 # each case once on CUDA, compared with the CPU
    python scripts/cuda_sanitize.py --repeat 20     # and bitwise determinism over 20 calls
    python scripts/cuda_sanitize.py --device cpu    # dry run on a machine with no GPU
    python scripts/cuda_sanitize.py --list          # the cases;  -k WORD selects by name
    python scripts/cuda_sanitize.py --large         # also the >2^31-element case (~11 GB GPU, ~25 GB RAM)

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
            has = torch._C._dispatch_has_kernel_for_dispatch_key
            if not (has(need, key) or has(need, "CompositeExplicitAutograd")):  # a composite runs on both
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


# --------------------------------------------------------------------------- helpers for the other ops

def _grads(out: torch.Tensor, inputs: dict, device: str, *key) -> Outputs:
    """d out / d inputs for a seeded grad_output (0.75 for a scalar); inputs: {name: tensor}."""
    result = {"loss": out.detach()}
    if not inputs or not out.requires_grad:
        return result
    if out.dim() == 0:
        grad_out = torch.full_like(out, 0.75)
    else:
        g = generator("grad_output", *key)
        grad_out = (torch.rand(out.shape, generator=g, dtype=torch.float64) + 0.5).to(out.dtype).to(device)
    got = torch.autograd.grad(out, list(inputs.values()), grad_out)  # no retain_graph: in-place backward
    result.update({f"grad_{k}": v for k, v in zip(inputs, got)})
    return result


def _trio_8bit(x, device):
    """ViTMatte's three terms on 8-bit data (trimap 128 unknown) and pred's gradient."""
    p = x["pred_alpha"].requires_grad_()
    total, unknown, known, penalty = mattingloss.vitmatte_alpha_losses(p, x["alpha"], x["trimap"], alpha_scale=255.0,
                                                                       unknown_value=128.0)
    result = _grads(total, {"pred": p}, device)
    result.update(unknown=unknown.detach(), known=known.detach(), penalty=penalty.detach())
    return result


def _terms(out: dict, inputs: dict, device: str, *key) -> Outputs:
    """A dict of 0-dim terms with a "total" (presets, video_matting_losses): the terms and the
    total's gradients."""
    result = _grads(out["total"], inputs, device, *key)
    result.update({f"term_{k}": v.detach() for k, v in out.items() if k != "total"})
    return result


def _mask_args(x: dict, mask: str) -> dict:
    """The trimap/weight keyword arguments of dim_inputs' masks, or none ("all": every pixel)."""
    if mask == "equal":
        return {"trimap": x["trimap"]}
    if mask == "range":
        return {"trimap": x["trimap"], "unknown_range": (85.0, 170.0)}
    if mask == "weight":
        return {"weight": x["weight"]}
    return {}


# --------------------------------------------------------------------------- cases: composition loss
# csrc/common/cuda_pointwise.cuh (DIM's driver too): one block per 1024 pixels of one sample
# (vector path where H*W % 4 == 0 and every pointer is 16-byte aligned), then the last block's finish: a block
# per sample when a sample has >= 256 chunks, else a warp per sample (striding past 8 samples).
# kAllPixels (no mask) writes the weights from the shape; rho is a template parameter.

COMP = ("mattingloss::composition_loss_forward",)
_COMP_MASKS = ("equal", "range", "weight", "all")
_COMP_REDUCTIONS = ("mean", "sample", "sum", "none")
_RHOS = ("l1", "charbonnier", "l2")


def run_comp(device, B, H, W, pred="f32", target="same", *, mask="equal", rho="l1", reduction="mean",
             grads=("pred",), offset=0, offset_only=None, **options):
    pred_dtype = PRED_DTYPES[pred]
    x = dim_inputs(B, H, W, pred_dtype, target, comp=True, mask="weight" if mask == "weight" else
                   ("range" if mask == "range" else "equal"), key=("comp", rho, reduction, offset))
    x = to_device(x, device, offset=offset, offset_only=offset_only)
    names = {"pred": "pred_alpha", "fg": "fg", "bg": "bg"}
    inputs = {k: x[names[k]].requires_grad_() for k in grads}
    loss = mattingloss.composition_loss(x["pred_alpha"], x["image"], x["fg"], x["bg"], **_mask_args(x, mask),
                                        rho=rho, reduction=reduction, **options)
    return _grads(loss, inputs, device, B, H, W, "comp")


def _comp_dtype_case(i, pred, target):
    mask, rho, red = _COMP_MASKS[i % 4], _RHOS[i % 3], _COMP_REDUCTIONS[(i // 2) % 4]
    grads = ("pred",) if target == "uint8" else ("pred", "fg", "bg")

    def fn(device):
        return run_comp(device, 2, 33, 64, pred, target, mask=mask, rho=rho, reduction=red, grads=grads,
                        color_scale=255.0)
    fn.__name__ = f"case_comp_{pred}_{target}_{mask}_{rho}_{red}_vec"
    return fn


_i = 0
for _pred in PRED_DTYPES:
    for _target in ("uint8", "same"):
        case(_comp_dtype_case(_i, _pred, _target), needs=COMP)
        _i += 1


@case(needs=COMP)
def case_comp_f32_odd_all_pixels_charbonnier_sample_nonvec(device):
    return run_comp(device, 3, 17, 19, "f32", "same", mask="all", rho="charbonnier", reduction="sample",
                    grads=("pred", "fg", "bg"), eps=1e-3)


@case(needs=COMP)
def case_comp_f16_uint8_unaligned_l2_sum(device):
    return run_comp(device, 2, 16, 16, "f16", "uint8", mask="range", rho="l2", reduction="sum", offset=1,
                    color_scale=(255.0, 200.0, 300.0))


@case(needs=COMP)
def case_comp_f32_one_unaligned_bg_weight_mean(device):
    # Only bg at an odd offset: every input takes the non-vector path with it.
    return run_comp(device, 2, 16, 24, "f32", "same", mask="weight", reduction="mean", offset=1, offset_only="bg",
                    grads=("pred", "fg", "bg"), count_channels=False, guard=1e-8, check_weight=False)


@case(needs=COMP)
def case_comp_large_sample_block_finish_nonvec(device):
    # 513*515 pixels = 259 chunks >= 256: finish's whole-block path; odd H*W: non-vector tail.
    return run_comp(device, 1, 513, 515, "f32", "uint8", mask="equal", rho="l1", reduction="mean")


@case(needs=COMP)
def case_comp_bf16_large_sample_block_finish_all_pixels_vec(device):
    # 512*512 pixels = exactly 256 chunks: the whole-block path, vector loads, no mask.
    return run_comp(device, 1, 512, 512, "bf16", "same", mask="all", rho="l2", reduction="sample",
                    grads=("pred", "fg", "bg"), color_scale=255.0)


@case(needs=COMP)
def case_comp_many_samples_warp_finish(device):
    # 300 samples: a warp per sample, each warp striding over 8+ samples; per-sample scales stride.
    return run_comp(device, 300, 5, 7, "f64", "same", mask="equal", rho="charbonnier", reduction="sample",
                    grads=("pred", "fg", "bg"))


@case(needs=COMP)
def case_comp_forward_only_map(device):
    with torch.no_grad():
        return run_comp(device, 2, 20, 24, "f32", "uint8", mask="weight", reduction="none", grads=())


@case(needs=COMP)
def case_comp_empty_mask(device):
    x = to_device(dim_inputs(2, 16, 16, torch.float32, "uint8", key=("comp-empty",)), device)
    x["trimap"].zero_()
    pred = x["pred_alpha"].requires_grad_()
    loss = mattingloss.composition_loss(pred, x["image"], x["fg"], x["bg"], x["trimap"])
    return _grads(loss, {"pred": pred}, device)


# --------------------------------------------------------------------------- cases: Laplacian loss
# csrc/cuda/laplacian_kernel.cu: three launches (level 0 tiled down; levels >= 1 as a work queue of
# 256-sample items; level 0 tiled gradient, the last block summing the partials in order: ordered_sum's
# thread t takes partials t, t + 256, ...: > 256 items or tiles per level make it stride).
# Weights: none (rvm), per level after the filter (mgmatting), mask before (sdmatte).
# Odd levels are cropped (crop_to_even), replicate padding lets the coarsest level reach 1 pixel.

LAP = ("mattingloss::laplacian_loss_forward",)


def lap_inputs(shape, pred_dtype, target, *, weight=None, key=()):
    g = generator("lap", shape, str(pred_dtype), target, weight, *key)
    pred = torch.rand(shape, generator=g, dtype=torch.float64).to(pred_dtype)
    gt = torch.rand(shape, generator=g, dtype=torch.float64)
    x = {"pred": pred}
    if target == "uint8":
        x["gt"] = (gt * 255).round().to(torch.uint8)
    else:
        x["gt"] = gt.to(pred_dtype)
    if weight == "soft":
        x["weight"] = (torch.rand(shape, generator=g, dtype=torch.float64) *
                       (torch.rand(shape, generator=g) > 0.3)).to(pred_dtype)
    elif weight == "binary":
        x["weight"] = (torch.rand(shape, generator=g) > 0.5).to(pred_dtype)
    elif weight == "empty":
        x["weight"] = torch.zeros(shape, dtype=pred_dtype)
    return x


def run_lap(device, shape, pred="f32", target="same", *, weight=None, offset=0, grad=True, **options):
    x = to_device(lap_inputs(shape, PRED_DTYPES[pred], target, weight=weight, key=(offset,)), device, offset=offset)
    if target == "uint8":
        options["gt_scale"] = 255.0
    inputs = {"pred": x["pred"].requires_grad_()} if grad else {}
    loss = mattingloss.laplacian_loss(x["pred"], x["gt"], x.get("weight"), **options)
    return _grads(loss, inputs, device)


_LAP_VARIANTS = (  # (convention, weight, shape, options): every one valid for its shape
    ("rvm", None, (2, 1, 67, 70), {}),  # 5 levels, reflect, odd levels cropped
    ("mgmatting", "soft", (2, 1, 64, 96), {}),  # weights after the filter, per level
    ("sdmatte", "binary", (2, 1, 66, 64), {}),  # mask before, global B*size^2/sum(mask)
    ("rvm", None, (1, 3, 33, 35), {"padding": "replicate"}),  # coarsest level 2x2 -> x_5 is 1x1
)


def _lap_dtype_case(i, pred, target):
    convention, weight, shape, options = _LAP_VARIANTS[i % 4]

    def fn(device):
        return run_lap(device, shape, pred, target, weight=weight, convention=convention, **options)
    fn.__name__ = f"case_lap_{pred}_{target}_{convention}_{options.get('padding', 'reflect')}"
    return fn


_i = 0
for _pred in PRED_DTYPES:
    for _target in ("uint8", "same"):
        case(_lap_dtype_case(_i, _pred, _target), needs=LAP)
        _i += 1


@case(needs=LAP)
def case_lap_replicate_tiny_levels_mgmatting_weight(device):
    # No cropping, H = W = 32 with 5 levels: 32 16 8 4 2 -> 1x1 at the coarsest; weights per level.
    return run_lap(device, (3, 2, 32, 32), "f32", "same", weight="soft", convention="mgmatting",
                   padding="replicate")


@case(needs=LAP)
def case_lap_one_level_reflect_odd(device):
    return run_lap(device, (2, 1, 5, 9), "f64", "same", levels=1, level_weights=[0.7])


@case(needs=LAP)
def case_lap_many_blocks_strided_sums(device):
    # 257*290 pixels at level 0 (> 65536: 292 partials, ordered_sum strides), cropped to even.
    return run_lap(device, (1, 1, 257, 290), "f32", "uint8", convention="rvm")


@case(needs=LAP)
def case_lap_many_blocks_mgmatting_weights(device):
    # The per-level weight partials of level 0 also exceed 256 blocks.
    return run_lap(device, (1, 1, 256, 288), "bf16", "same", weight="soft", convention="mgmatting")


@case(needs=LAP)
def case_lap_sdmatte_soft_mask_unaligned_multichannel(device):
    return run_lap(device, (2, 3, 16, 18), "f16", "same", weight="soft", convention="sdmatte", offset=1,
                   levels=2)


@case(needs=LAP)
def case_lap_sdmatte_empty_mask(device):
    return run_lap(device, (2, 1, 16, 16), "f32", "uint8", weight="empty", convention="sdmatte", levels=2)


@case(needs=LAP)
def case_lap_forward_only(device):
    with torch.no_grad():
        return run_lap(device, (2, 1, 40, 36), "f32", "same", grad=False, levels=3)


# The tiled kernels (csrc/cuda/laplacian_kernel.cu): level-0 tiles of 32 x 64 pixels (16 x 32
# samples of x_1) with halos of up to 4 pixels, borders through the tap lists; levels >= 1 as a
# work queue in one launch. Sizes below are not tile multiples (last tiles of 1-3 rows/cols, odd
# sizes cropped, the cropped row/column in the gradient and in the mask's sum), reach 1-pixel
# coarse levels, and cover both paddings, every weight mode, the folded base and no gradient.

@case(needs=LAP)
def case_lap_tiles_odd_rvm_reflect(device):
    # 71 x 135: h = 70, x_1 35 x 67 -> 3 x 3 tiles, the last 3 rows and 3 columns; 5 levels.
    return run_lap(device, (1, 2, 71, 135), "f32", "same", convention="rvm")


@case(needs=LAP)
def case_lap_tiles_exact_replicate(device):
    # x_1 exactly 2 x 2 tiles (32 x 64), replicate padding, 6 levels: x_6 is 1 x 2.
    return run_lap(device, (2, 1, 64, 128), "f64", "same", levels=6, level_weights=[1.0] * 6,
                   padding="replicate")


@case(needs=LAP)
def case_lap_tiles_one_pixel_levels_replicate(device):
    # 34 x 66 -> 17 x 33 (cropped 16 x 32) -> ... -> 2 x 4 -> x_5 1 x 2; and 2 x 3 (cropped 2 x 2)
    # with one level: x_1 is 1 x 1 (a single tile, every sample a border sample).
    a = run_lap(device, (1, 3, 34, 66), "f32", "uint8", levels=5, padding="replicate")
    b = run_lap(device, (2, 1, 2, 3), "f64", "same", levels=1, level_weights=[0.5], padding="replicate",
                offset=1)
    return {**a, **{f"tiny_{k}": v for k, v in b.items()}}


@case(needs=LAP)
def case_lap_tiles_reflect_smallest(device):
    # Reflect's least level (4 x 4 after cropping) as the coarsest of 3: 17 x 19 -> 16 x 18 -> 8 x 8 -> 4 x 4.
    return run_lap(device, (2, 1, 17, 19), "f64", "uint8", levels=3, level_weights=[1.0, 0.5, 0.25])


@case(needs=LAP)
def case_lap_tiles_mgmatting_weights_multi_tile(device):
    # Weights after the filter: 72 x 200 -> x_1 36 x 100 (3 x 4 tiles), per-level weight sums per tile.
    return run_lap(device, (2, 1, 72, 200), "f32", "same", weight="soft", convention="mgmatting", levels=3)


@case(needs=LAP)
def case_lap_tiles_sdmatte_odd_mask(device):
    # Mask before: the mask's sum covers the cropped last row and column (69 x 131), multi-tile.
    return run_lap(device, (1, 2, 69, 131), "bf16", "same", weight="soft", convention="sdmatte")


@case(needs=LAP)
def case_lap_tiles_forward_only_weights(device):
    with torch.no_grad():
        return run_lap(device, (1, 1, 70, 134), "f32", "same", weight="soft", convention="mgmatting", levels=1,
                       level_weights=[1.0])


@case(needs=LAP)
def case_lap_tiles_grad_base(device):
    # The raw op with a folded base over an odd, multi-tile image (the cropped row and column get
    # only the base), float16 pred.
    shape = (1, 2, 67, 131)
    x = to_device(lap_inputs(shape, torch.float16, "same", key=("bases",)), device)
    g = generator("lap-bases")
    base = torch.randn(shape, generator=g, dtype=torch.float64).to(torch.float16).to(device)
    loss, levels, grad = torch.ops.mattingloss.laplacian_loss_forward(
        x["pred"], x["gt"], None, 4, [1.0, 0.5, 0.25, 0.125], 0, True, 0, 1.0, 0.0, True, base, 0.75)
    return {"loss": loss, "level_losses": levels, "grad_pred": grad}


# --------------------------------------------------------------------------- cases: alpha and gradient
# csrc/cuda/alpha_sobel_kernel.cu: one block per 120x64 tile of one sample (row strips in
# registers, zero outside the image; "cases: the trio's strips" below), Sobel none / difference /
# magnitude as a template parameter, up to 3 gradient maps (groups), the last block's per-sample
# sums striding over the tiles (> 128 tiles per sample). Odd sizes test the element path.

# Every alpha case but reduction "none" also runs alpha_sobel_compose (one thread, the losses from the
# sums) and, with a gradient, alpha_sobel_weights (the weight sums first, for the factors) and the
# forward with those factors (one prescaled map), all four from alpha_sobel_prescaled (a composite
# op on the CPU: it calls them; on CUDA two kernels whose last blocks run the composes,
# case_prescaled_fused_equals_four_ops); backward is scale_gradient_ (that map times
# grad_output, 0.75 here: every loss's backward of a stored gradient runs it; vector path on 16-byte
# aligned storage, element path for the tail and unaligned views).
AG = ("mattingloss::alpha_sobel_forward", "mattingloss::alpha_sobel_weights",
      "mattingloss::alpha_sobel_compose", "mattingloss::alpha_sobel_prescaled", "mattingloss::scale_gradient_")


def ag_inputs(B, H, W, pred, target, mask, key=()):
    """dim_inputs' pred, alpha (0..255, each residual >= 0.3/255 from pred) and mask, with
    alpha_scale 255 for both target kinds."""
    x = dim_inputs(B, H, W, PRED_DTYPES[pred], target, comp=False,
                   mask=mask if mask in ("equal", "range", "weight") else "equal", key=("ag",) + key)
    return x


def run_alpha(device, B, H, W, pred="f32", target="same", *, mask="equal", offset=0, grad=True, fn="alpha",
              **options):
    x = to_device(ag_inputs(B, H, W, pred, target, mask, key=(fn, offset) + tuple(sorted(options))), device,
                  offset=offset)
    p = x["pred_alpha"].requires_grad_(grad)
    args = _mask_args(x, mask)
    if fn == "alpha":
        out = mattingloss.alpha_loss(p, x["alpha"], alpha_scale=255.0, **args, **options)
        return _grads(out, {"pred": p} if grad else {}, device, B, H, W)
    if fn == "gradient":
        if "trimap" in args and "unknown_range" not in args:
            args["unknown_value"] = 128.0
        out = mattingloss.gradient_loss(p, x["alpha"], alpha_scale=255.0, **args, **options)
        return _grads(out, {"pred": p} if grad else {}, device, B, H, W)
    if "trimap" in args and "unknown_range" not in args:
        args["unknown_value"] = 128.0
    total, unknown, known, penalty = mattingloss.vitmatte_alpha_losses(p, x["alpha"], alpha_scale=255.0, **args,
                                                                       **options)
    result = _grads(total, {"pred": p} if grad else {}, device, B, H, W)
    result.update(unknown=unknown.detach(), known=known.detach(), penalty=penalty.detach())
    return result


# Charbonnier with eps 1e-8 rather than GCA's 1e-6: with residuals >= 0.3/255 its derivative
# d / sqrt(d^2 + eps) then barely moves when d moves by an ulp of pred (CUDA may fuse
# p*w - g*w into an FMA), so the comparison keeps float32's tolerance.
_ALPHA_VARIANTS = (  # (mask, options) for alpha_loss
    ("equal", dict(region="unknown", rho="l1", reduction="mean")),
    ("range", dict(region="known", rho="charbonnier", eps=1e-8, reduction="sample", guard=1e-8)),
    ("weight", dict(region="unknown", rho="charbonnier", eps=1e-8, reduction="sum", mask_in_diff=True)),
    ("all", dict(region="all", rho="l1", reduction="numel")),
    ("equal", dict(region="known", rho="l1", reduction="vitmatte", mask_in_diff=True)),
)
_SOBEL_STYLES = ("vitmatte", "mmagic", "gca")


def _alpha_dtype_case(i, pred, target):
    mask, options = _ALPHA_VARIANTS[i % 5]

    def fn(device):
        return run_alpha(device, 2, 33, 64, pred, target, mask=mask, **options)
    fn.__name__ = (f"case_alpha_{pred}_{target}_{options['region']}_{mask}_{options['rho']}_"
                   f"{options['reduction']}{'_in_diff' if options.get('mask_in_diff') else ''}")
    return fn


def _gradient_dtype_case(i, pred, target):
    style = _SOBEL_STYLES[i % 3]
    mask = ("equal", "weight", "all", "range")[i % 4]

    def fn(device):
        return run_alpha(device, 2, 37, 45, pred, target, mask=mask, fn="gradient", style=style)
    fn.__name__ = f"case_gradient_{pred}_{target}_{style}_{mask}_odd"
    return fn


_i = 0
for _pred in PRED_DTYPES:
    for _target in ("uint8", "same"):
        case(_alpha_dtype_case(_i, _pred, _target), needs=AG)
        case(_gradient_dtype_case(_i, _pred, _target), needs=AG)
        _i += 1


@case(needs=AG)
def case_vitmatte_trio_f32_three_groups(device):
    # Three gradient maps (unknown L1, known L1, Sobel penalty), ViTMatte's 512^2 scaling.
    return run_alpha(device, 2, 40, 70, "f32", "uint8", mask="equal", fn="vitmatte", weights=(1.0, 0.5, 2.0))


@case(needs=AG)
def case_vitmatte_trio_f16_weight_own_size(device):
    return run_alpha(device, 3, 17, 33, "f16", "same", mask="weight", fn="vitmatte", crop_size=None)


@case(needs=AG)
def case_gradient_gca_many_tiles_strided_finish(device):
    # 272x520: 5x5 tiles of 120x64, several per sample (the finish's stride: strip_many_tiles_strided_finish).
    return run_alpha(device, 1, 272, 520, "f32", "same", mask="weight", fn="gradient", style="gca")


@case(needs=AG)
def case_vitmatte_trio_many_tiles_bf16(device):
    return run_alpha(device, 1, 257, 513, "bf16", "uint8", mask="equal", fn="vitmatte")


@case(needs=AG)
def case_gradient_single_pixel_and_row(device):
    # 1x1 (every neighbour outside) and 1xW images: the halo is all zero padding.
    out = run_alpha(device, 2, 1, 1, "f64", "same", mask="all", fn="gradient", style="mmagic")
    row = run_alpha(device, 1, 1, 70, "f32", "uint8", mask="equal", fn="gradient", style="vitmatte")
    return {**out, **{f"row_{k}": v for k, v in row.items()}}


@case(needs=AG)
def case_alpha_unaligned_views_mmagic_sample(device):
    return run_alpha(device, 2, 16, 17, "f32", "same", mask="weight", offset=1, rho="charbonnier", eps=1e-12,
                     guard=1e-12, reduction="sample")


@case(needs=AG)
def case_alpha_none_maps(device):
    # reduction "none": the kernel writes the per-pixel values; backward multiplies the
    # stored derivative by a grad_output map.
    soft = run_alpha(device, 2, 19, 37, "bf16", "uint8", mask="weight", rho="charbonnier", eps=1e-8,
                     reduction="none")
    known = run_alpha(device, 1, 33, 70, "f32", "same", mask="equal", region="known", mask_in_diff=True,
                      reduction="none")
    return {**soft, **{f"known_{k}": v for k, v in known.items()}}


@case(needs=AG)
def case_gradient_forward_only(device):
    with torch.no_grad():
        return run_alpha(device, 2, 20, 40, "f32", "uint8", mask="equal", fn="gradient", style="gca", grad=False)


@case(needs=AG)
def case_alpha_empty_region(device):
    x = to_device(ag_inputs(2, 16, 16, "f32", "uint8", "equal", key=("empty",)), device)
    x["trimap"].zero_()  # no unknown pixel: unknown terms 0, known terms everywhere
    return _trio_8bit(x, device)


# --------------------------------------------------------------------------- cases: the trio's strips
# csrc/cuda/alpha_sobel_kernel.cu is a register-blocked stencil: 120x64 tiles, each warp 16 rows
# walked downward, each lane 4 consecutive pixels (lanes 0 and 31 the halo), neighbours by warp
# shuffles. Vector loads/stores of 4 elements where every pointer is aligned to 4 elements and
# W % 4 == 0, element loads otherwise; instances: float32 pred and alpha with ViTMatte's/GCA's
# parameters (L1 in the difference, 0/1 region: "fast"), any other float case, float64. These
# cases put tile, warp and lane edges inside the image (H, W not multiples of 64, 16, 120 or 4).


@case(needs=AG)
def case_strip_fast_vec_tile_edges(device):
    # float32 pred and alpha, W % 4 == 0: the fast instance, vector path; 3x3 tiles, last ones partial
    # (W = 244: a 4-column last tile; H = 130: warps with 2, 0 and full rows).
    return run_alpha(device, 2, 130, 244, "f32", "same", mask="equal", fn="vitmatte", weights=(1.0, 0.5, 2.0))


@case(needs=AG)
def case_strip_fast_vec_gca_range(device):
    return run_alpha(device, 1, 67, 128, "f32", "same", mask="range", fn="gradient", style="gca")


@case(needs=AG)
def case_strip_fast_scalar_odd_width(device):
    # W % 4 == 3: element loads, a 3-column strip at the right edge, in the fast instance.
    return run_alpha(device, 2, 17, 123, "f32", "same", mask="equal", fn="vitmatte")


@case(needs=AG)
def case_strip_vec_offset_aligned_views(device):
    # Views 4 elements into their storage: 16-byte aligned for float32, so still the vector path.
    return run_alpha(device, 2, 20, 64, "f32", "same", mask="equal", offset=4, fn="vitmatte")


@case(needs=AG)
def case_strip_unaligned_views_w_multiple_of_4(device):
    # W % 4 == 0 but every view 1 element off: the element path on a shape the vector path would take.
    return run_alpha(device, 2, 18, 128, "f32", "same", mask="equal", offset=1, fn="gradient", style="vitmatte")


@case(needs=AG)
def case_strip_one_unaligned_mask(device):
    # Only the trimap unaligned: the whole launch takes the element path.
    x = to_device(ag_inputs(1, 16, 64, "f32", "same", "equal", key=("strip_mask",)), device, offset=1,
                  offset_only="trimap")
    return _trio_8bit(x, device)


@case(needs=AG)
def case_strip_generic_f32_mmagic_weight_vec(device):
    # float32 but not the fast parameters (weight, w * |p - g|): the generic instance, vector path.
    return run_alpha(device, 2, 33, 132, "f32", "same", mask="weight", fn="gradient", style="mmagic")


@case(needs=AG)
def case_strip_bf16_uint8_vec_and_f16_odd(device):
    # Dyn loads: 2-byte pred, 1-byte alpha and trimap (8- and 4-byte vectors), then an odd width.
    vec = run_alpha(device, 1, 40, 248, "bf16", "uint8", mask="equal", fn="vitmatte")
    odd = run_alpha(device, 1, 19, 37, "f16", "uint8", mask="range", fn="gradient", style="gca")
    return {**vec, **{f"odd_{k}": v for k, v in odd.items()}}


@case(needs=AG)
def case_strip_f64_vec_all_pixels(device):
    # float64: 32-byte vectors (two 16-byte accesses); no mask (every pixel).
    return run_alpha(device, 1, 21, 124, "f64", "same", mask="all", fn="gradient", style="vitmatte")


@case(needs=AG)
def case_strip_thin_images(device):
    # 1x4 (one lane, vector path), 2x1, 5x2 and 1x121 (a second tile of one column): halos all padding.
    out = {}
    for H, W in ((1, 4), (2, 1), (5, 2), (1, 121)):
        r = run_alpha(device, 2, H, W, "f32", "same", mask="equal", fn="vitmatte")
        out.update({f"{H}x{W}_{k}": v for k, v in r.items()})
    return out


@case(needs=AG)
def case_strip_many_tiles_strided_finish(device):
    # 9 x 16 = 144 tiles of one sample > 128 threads: the last block's per-sample sums stride.
    return run_alpha(device, 1, 520, 1804, "f32", "same", mask="equal", fn="vitmatte")


@case(needs=AG)
def case_strip_alpha_none_vec(device):
    # Sobel off, reduction "none": per-pixel values stored 4 at a time.
    return run_alpha(device, 2, 24, 64, "f32", "same", mask="equal", rho="l1", reduction="none")


# The vector-only instances (float32 pred and alpha, ViTMatte's parameters, Sobel difference, every
# pointer aligned and W % 4 == 0, one gradient map or none): one per trimap dtype (float32 or none, uint8) and alpha_scale (1: no
# division, else divided), 4 rows per loop iteration; any other trimap dtype, an unaligned view or an
# odd width takes the fast instance with the element path. Each case below names the instance it hits.

def _trio_vec(device, B, H, W, *, trimap=torch.float32, unit=False, mask="equal", offset=0, offset_only=None,
              weights=None, key=()):
    """vitmatte_alpha_losses on float32 pred and alpha with the trimap in `trimap`'s dtype; unit:
    alpha / 255 and alpha_scale 1 (the trimap keeps 0/128/255)."""
    x = ag_inputs(B, H, W, "f32", "same", mask, key=("vec", str(trimap), unit) + key)
    if unit:
        x["alpha"] = x["alpha"] / 255
    x["trimap"] = x["trimap"].to(trimap)
    x = to_device(x, device, offset=offset, offset_only=offset_only)
    p = x["pred_alpha"].requires_grad_()
    args = {} if mask == "all" else {"trimap": x["trimap"]}
    if mask == "range":
        args["unknown_range"] = (85.0, 170.0)
    elif mask == "equal":
        args["unknown_value"] = 128.0
    scale = 1.0 if unit else 255.0
    if mask == "all":  # vitmatte_alpha_losses needs a trimap: the gradient loss, ViTMatte's style
        return _grads(mattingloss.gradient_loss(p, x["alpha"], alpha_scale=scale, style="vitmatte"), {"pred": p},
                      device, B, H, W)
    extra = {} if weights is None else {"weights": weights}
    total, unknown, known, penalty = mattingloss.vitmatte_alpha_losses(
        p, x["alpha"], alpha_scale=scale, **args, **extra)
    result = _grads(total, {"pred": p}, device, B, H, W)
    result.update(unknown=unknown.detach(), known=known.detach(), penalty=penalty.detach())
    return result


@case(needs=AG)
def case_vec_f32_trimap_unit_scale(device):
    # <float trimap, alpha_scale 1>: the benchmark's float32 row; 3x3 tiles, partial last ones, warps of
    # 2 rows (not a multiple of the 4-row unroll), three weighted terms in the one prescaled map.
    return _trio_vec(device, 2, 130, 244, unit=True, weights=(1.0, 0.5, 2.0))


@case(needs=AG)
def case_vec_f32_trimap_divided_range(device):
    # <float trimap, divided>, unknown as a range; H = 67: warps of 16, 3 and 0 rows.
    return _trio_vec(device, 1, 67, 128, mask="range")


@case(needs=AG)
def case_vec_uint8_trimap_unit_scale(device):
    # <uint8 trimap, alpha_scale 1>: 4-byte trimap loads; W = 4 (one lane) and a 16-row warp.
    wide = _trio_vec(device, 2, 35, 252, trimap=torch.uint8, unit=True)
    thin = _trio_vec(device, 1, 17, 4, trimap=torch.uint8, unit=True, key=("thin",))
    return {**wide, **{f"thin_{k}": v for k, v in thin.items()}}


@case(needs=AG)
def case_vec_uint8_trimap_divided(device):
    # <uint8 trimap, divided>; rows 1..5 of a warp: every exit point of the unrolled loop.
    out = {}
    for H in (1, 2, 3, 4, 5, 18):
        r = _trio_vec(device, 1, H, 124, trimap=torch.uint8, key=(H,))
        out.update({f"{H}_{k}": v for k, v in r.items()})
    return out


@case(needs=AG)
def case_vec_no_trimap_both_scales(device):
    # No trimap (gradient_loss, ViTMatte's style, every pixel): the float instance, the mask never
    # read; both scales.
    unit = _trio_vec(device, 1, 40, 128, mask="all", unit=True)
    div = _trio_vec(device, 1, 40, 128, mask="all", key=("div",))
    return {**unit, **{f"div_{k}": v for k, v in div.items()}}


@case(needs=AG)
def case_vec_other_trimap_dtypes_fall_back(device):
    # float16 / bfloat16 trimaps: no vector-only instance, the fast one with its element path. (A
    # float64 trimap with float32 pred becomes a 0/1 uint8 mask in Python: the uint8 instance.)
    out = {}
    for dt in (torch.float16, torch.float64, torch.bfloat16):
        r = _trio_vec(device, 1, 20, 128, trimap=dt, unit=True, key=(str(dt),))
        out.update({f"{str(dt)[6:]}_{k}": v for k, v in r.items()})
    return out


@case(needs=AG)
def case_vec_unaligned_and_odd_fall_back(device):
    # The same inputs, unaligned views (offset 1) or W % 4 != 0: the fast instance's element path.
    unaligned = _trio_vec(device, 2, 18, 128, trimap=torch.uint8, unit=True, offset=1)
    odd = _trio_vec(device, 1, 19, 127, unit=True, key=("odd",))
    return {**unaligned, **{f"odd_{k}": v for k, v in odd.items()}}


@case(needs=AG)
def case_vec_uint8_mask_alignment(device):
    # The uint8 mask's own alignment check: offset 2 (not 4-byte aligned) falls back to the fast
    # instance, offset 4 keeps the vector-only one.
    out = {}
    for offset in (2, 4):
        r = _trio_vec(device, 1, 18, 128, trimap=torch.uint8, unit=True, offset=offset, offset_only="trimap",
                      key=("mask", offset))
        out.update({f"offset{offset}_{k}": v for k, v in r.items()})
    return out


@case(needs=AG)
def case_vec_bitwise_equals_fast_instance(device):
    # The vector-only instances must give the fast instance's bits: the same inputs as aligned
    # views (vector-only) and as offset-1 views (the fast instance, same tiling), both scales,
    # both typed trimaps. The CPU comparison allows a tolerance; this does not.
    out = {}
    for trimap in (torch.float32, torch.uint8):
        for unit in (True, False):
            key = ("cross", str(trimap), unit)
            vec = _trio_vec(device, 2, 18, 128, trimap=trimap, unit=unit, key=key)
            fast = _trio_vec(device, 2, 18, 128, trimap=trimap, unit=unit, offset=1, key=key)
            assert_bitwise(vec, fast, f"trimap {trimap}, unit scale {unit}: vector-only and fast instances")
            out.update({f"{str(trimap)[6:]}_{unit}_{k}": v for k, v in vec.items()})
    return out


def _vec_against_fast(x: dict, device: str, label: str, forward) -> Outputs:
    """forward(inputs) on aligned views (a vector-only instance where one applies) and on
    views offset by one element (the fast instance), bitwise equal; the aligned run's
    sums and maps, keyed by label, for the driver to compare with the CPU."""
    runs = [dict(zip(("sums", "maps"), forward(to_device(x, device, offset=offset))[:2])) for offset in (0, 1)]
    assert_bitwise(*runs, f"{label}: aligned and offset views")
    return {f"{label.split()[-1]}_{k}": v for k, v in runs[0].items()}


@case(needs=AG)
def case_vec_maps_and_forward_only(device):
    # alpha_sobel_forward called directly: one map without factors (the vector-only instance, its
    # gradient bitwise the fast instance's on offset-1 views), two and three maps (the fast instance:
    # the vector-only ones write one map), three groups forward only (no map: vector-only); a float32
    # and a uint8 trimap, both scales.
    ops = torch.ops.mattingloss
    out = {}
    for i, (trimap, scale, group, groups, grad) in enumerate((
            (torch.float32, 1.0, [0, 0, 0], 1, True), (torch.uint8, 255.0, [0, 0, 0], 1, True),
            (torch.float32, 255.0, [0, 1, 0], 2, True), (torch.uint8, 1.0, [0, 1, 2], 3, True),
            (torch.float32, 1.0, [0, 1, 2], 3, False))):
        x = ag_inputs(2, 18, 128, "f32", "same", "equal", key=("maps", i))
        if scale == 1.0:
            x["alpha"] = x["alpha"] / 255
        x["trimap"] = x["trimap"].to(trimap)
        out.update(_vec_against_fast(x, device, f"config {i}", lambda y: ops.alpha_sobel_forward(
            y["pred_alpha"], y["alpha"], y["trimap"], 0, 128.0, 128.0, scale, 0, 0.0, True, True, True, 1, 1e-6,
            [1.0, 0.5, 2.0, 0.02], group, groups, grad, False, None)))
    return out


@case(needs=AG)
def case_vec_region_bounds_exact(device):
    # The vector-only instances test the region as lo_in <= t <= hi_in (range: the floats next to
    # lo and hi): a float32 trimap of edge values (signed zeros, the smallest subnormals, values one
    # ulp from the bounds, infinities, NaN) under range and equal bounds at those edges, bitwise the
    # fast instance's (offset-1 views: mode tests as written) and, by the driver, the CPU's.
    ops = torch.ops.mattingloss
    tiny = 2.0 ** -149
    values = torch.tensor([0.0, -0.0, tiny, 2 * tiny, -tiny, 128.0, 128.0 + 2 ** -16, 128.0 - 2 ** -16, 85.0, 170.0,
                           float("inf"), float("-inf"), float("nan"), 255.0])
    out = {}
    bounds = ((1, 0.0, 128.0), (1, -0.0, float("inf")), (1, float("-inf"), tiny), (1, 128.0 - 2 ** -16, 128.0 + 2 ** -16),
              (1, float("inf"), float("inf")), (1, float("nan"), 200.0), (1, 85.0, float("nan")), (0, -0.0, -0.0),
              (0, float("inf"), float("inf")), (0, tiny, tiny))
    x = ag_inputs(1, 18, 128, "f32", "same", "equal", key=("bounds",))
    x["alpha"] = x["alpha"] / 255
    x["trimap"] = values[torch.randint(0, len(values), x["trimap"].shape, generator=generator("bounds"))]
    for i, (mode, lo, hi) in enumerate(bounds):
        out.update(_vec_against_fast(x, device, f"bounds {i}", lambda y: ops.alpha_sobel_forward(
            y["pred_alpha"], y["alpha"], y["trimap"], mode, lo, hi, 1.0, 0, 0.0, True, True, True, 1, 1e-6,
            [1.0, 0.5, 2.0, 0.02], [0, 0, 0], 1, True, False, None)))
    return out


@case(needs=AG)
def case_vec_f64_unchanged(device):
    # float64 pred: its own instance (no vector-only one); W % 4 == 0, alpha_scale 1.
    x = to_device(ag_inputs(1, 21, 124, "f64", "same", "equal", key=("vec64",)), device)
    x["alpha"] = x["alpha"] / 255
    p = x["pred_alpha"].requires_grad_()
    total, *_ = mattingloss.vitmatte_alpha_losses(p, x["alpha"], x["trimap"], alpha_scale=1.0, unknown_value=128.0)
    return _grads(total, {"pred": p}, device)


def _prescaled_four_ops(pred, gt, mask, mode, lo, hi, scale, rho, eps, in_diff, sobel, coef, group, groups, norm,
                        guard, crop, penalty, weights):
    """alpha_sobel_prescaled and the four ops it stands for (weights, compose, forward with the
    factors, compose), called one by one: on CUDA the op is two kernels whose last blocks run
    the composes (LastBlockCompose), which must give the four launches' bits."""
    ops = torch.ops.mattingloss
    args = (pred, gt, mask, mode, lo, hi, scale, rho, eps, in_diff, True, True, sobel, 1e-6, coef, group, groups)
    pixels = pred.shape[2] * pred.shape[3]

    def compose(sums):
        return ops.alpha_sobel_compose(sums, pixels, norm, guard, crop, penalty, weights, group, groups, mode == 3)

    factors = compose(ops.alpha_sobel_weights(pred, mask, mode, lo, hi))[2]
    sums, maps, _ = ops.alpha_sobel_forward(*args, True, False, factors)
    total, components, _ = compose(sums)
    fused = ops.alpha_sobel_prescaled(*args, norm, guard, crop, penalty, weights)
    return dict(zip(("total", "components", "grad"), fused)), {"total": total, "components": components,
                                                                "grad": maps[0]}


@case(needs=AG)
def case_prescaled_fused_equals_four_ops(device):
    # The prescaled op (CUDA: the weights kernel's last block composes the factors, the forward's the
    # losses) against its four ops, bitwise, then (the driver) against the CPU op: the vector-only
    # instance with ViTMatte's norms (two samples, 3x3 tiles), the generic one with a weight map,
    # mean/sample norms and guards (two factor groups), float64 with no mask (count_all), bf16 on
    # an odd width with three groups and GCA's magnitude, and 144 tiles (the strided finish).
    out = {}
    configs = (  # (B, H, W, pred, mask, mode, rho, in_diff, sobel, group, groups, norm, guard, crop)
        (2, 130, 244, "f32", "equal", 0, 0, True, 1, [0, 1, 0], 2, [4, 4, 4], [0.0] * 3, 262144),
        (2, 33, 64, "f32", "weight", 2, 1, False, 1, [0, 1, 0], 2, [0, 1, 0], [1e-8, 1e-12, 1e-8], 0),
        (1, 21, 124, "f64", "all", 3, 0, True, 1, [0, 0, 0], 1, [3, 2, 0], [0.0, 0.0, 1e-8], 0),
        (3, 19, 37, "bf16", "range", 1, 0, True, 2, [0, 1, 2], 3, [4, 4, 4], [0.0] * 3, 0),
        (1, 520, 1804, "f32", "equal", 0, 0, True, 1, [0, 1, 0], 2, [4, 4, 4], [0.0] * 3, 262144),
    )
    for i, (B, H, W, pred, mask, mode, rho, in_diff, sobel, group, groups, norm, guard, crop) in enumerate(configs):
        x = to_device(ag_inputs(B, H, W, pred, "same", mask, key=("prescaled", i)), device)
        m = None if mode == 3 else x["weight" if mode == 2 else "trimap"]
        lo, hi = {0: (128.0, 128.0), 1: (85.0, 170.0)}.get(mode, (0.0, 0.0))
        fused, four = _prescaled_four_ops(x["pred_alpha"], x["alpha"], m, mode, lo, hi, 255.0, rho, 1e-8, in_diff,
                                          sobel, [1.0, 0.5, 2.0, 0.02], group, groups, norm, guard, crop, 0.01,
                                          [1.0, 0.5, 2.0])
        assert_bitwise(fused, four, f"config {i}: alpha_sobel_prescaled and its four ops")
        out.update({f"{i}_{k}": v for k, v in fused.items()})
    return out


# --------------------------------------------------------------------------- cases: temporal (RVM)
# csrc/cuda/temporal_kernel.cu: one block (128 threads) per 512 pixels of one sample, each thread
# walking its 4 pixels through the T frames (vector path where H*W % 4 == 0 and aligned); the
# last block sums every block's partials (thread j: j, j + 128, ...: > 128 blocks make it stride).

TEMPORAL = ("mattingloss::temporal_loss_forward",)


def video_inputs(B, T, H, W, pred_dtype, target, key=()):
    g = generator("video", B, T, H, W, str(pred_dtype), target, *key)
    x = {}
    for name, ch in (("pha", 1), ("fgr", 3)):
        p = torch.rand(B, T, ch, H, W, generator=g, dtype=torch.float64).to(pred_dtype)
        t = away_from_integers(p.double() * 255, g)  # every L1 residual >= 0.3/255
        if name == "pha":  # transparent pixels: the foreground mask (true_pha > 0) is 0 there
            t = torch.where((torch.rand(t.shape, generator=g) < 0.3) & (p.double() * 255 > 1), 0.0, t)
        x[f"pred_{name}"] = p
        x[f"true_{name}"] = t.to(torch.uint8) if target == "uint8" else (t / 255).to(pred_dtype)
    return x


def run_video(device, B, T, H, W, pred="f32", target="same", *, grads=("pha", "fgr"), offset=0, **weights):
    x = to_device(video_inputs(B, T, H, W, PRED_DTYPES[pred], target, key=(offset,)), device, offset=offset)
    inputs = {k: x[f"pred_{k}"].requires_grad_() for k in grads}
    scales = {"true_pha_scale": 255.0, "true_fgr_scale": 255.0} if target == "uint8" else {}
    out = mattingloss.video_matting_losses(x["pred_fgr"], x["pred_pha"], x["true_fgr"], x["true_pha"], **scales,
                                           **weights)
    return _terms(out, inputs, device, B, T, H, W)


def _video_dtype_case(i, pred, target):
    T = (3, 1, 2, 4)[i % 4]

    def fn(device):
        return run_video(device, 2, T, 24, 32, pred, target)
    fn.__name__ = f"case_video_{pred}_{target}_T{T}_vec"
    return fn


_i = 0
for _pred in PRED_DTYPES:
    for _target in ("uint8", "same"):
        case(_video_dtype_case(_i, _pred, _target), needs=TEMPORAL)
        _i += 1


@case(needs=TEMPORAL)
def case_video_odd_pixels_nonvec_weights(device):
    return run_video(device, 2, 3, 17, 19, "f32", "same", pha_l1_weight=0.5, fgr_coherence_weight=2.0)


@case(needs=TEMPORAL)
def case_video_unaligned_views_f16(device):
    return run_video(device, 1, 3, 16, 16, "f16", "uint8", offset=1)


@case(needs=TEMPORAL)
def case_video_many_blocks_strided_finish(device):
    # 2 samples x 144*256 pixels = 144 blocks > 128 threads: the final sum strides.
    return run_video(device, 2, 2, 144, 256, "f32", "uint8")


@case(needs=TEMPORAL)
def case_video_pha_grad_only_t1(device):
    return run_video(device, 3, 1, 9, 10, "bf16", "same", grads=("pha",))


@case(needs=TEMPORAL)
def case_video_fgr_grad_only(device):
    return run_video(device, 1, 5, 8, 12, "f64", "same", grads=("fgr",))


@case(needs=TEMPORAL)
def case_video_forward_only(device):
    with torch.no_grad():
        return run_video(device, 2, 3, 12, 16, "f32", "uint8", grads=())


# --------------------------------------------------------------------------- cases: presets
# Each preset combines the ops above in one call (several kernels on the same inputs).

@case(needs=("mattingloss::alpha_sobel_forward", "mattingloss::laplacian_loss_forward"))
def case_preset_vitmatte(device):
    x = ag_inputs(2, 64, 70, "f32", "same", "equal", key=("vitmatte",))
    p = x["pred_alpha"].to(device).requires_grad_()
    trimap = (x["trimap"] / 255.0).round(decimals=1).to(device)  # 0 / 0.5 / 1 as ViTMatte's model sees it
    out = mattingloss.presets.vitmatte()(p, (x["alpha"] / 255.0).to(device), trimap)
    return _terms(out, {"pred": p}, device, "vitmatte")


@case(needs=("mattingloss::temporal_loss_forward", "mattingloss::laplacian_loss_forward"))
def case_preset_rvm(device):
    x = to_device(video_inputs(1, 3, 64, 66, torch.float32, "uint8", key=("rvm",)), device)
    inputs = {k: x[f"pred_{k}"].requires_grad_() for k in ("pha", "fgr")}
    out = mattingloss.presets.rvm(true_pha_scale=255.0, true_fgr_scale=255.0)(
        x["pred_fgr"], x["pred_pha"], x["true_fgr"], x["true_pha"])
    return _terms(out, inputs, device, "rvm")


@case(needs=("mattingloss::alpha_sobel_forward", "mattingloss::composition_loss_forward",
             "mattingloss::laplacian_loss_forward"))
def case_preset_matteformer(device):
    x = dim_inputs(2, 64, 64, torch.float32, "same", comp=True, mask="weight", key=("matteformer",))
    x = to_device(x, device)
    p = x["pred_alpha"].requires_grad_()
    fg = x["fg"].requires_grad_()
    out = mattingloss.presets.matteformer()(p, x["alpha"] / 255.0, x["weight"], x["image"] / 255.0, fg / 255.0,
                                            x["bg"] / 255.0)
    return _terms(out, {"pred": p, "fg": fg}, device, "matteformer")


@case(needs=("mattingloss::alpha_sobel_forward", "mattingloss::composition_loss_forward"))
def case_preset_gca_every_term(device):
    x = dim_inputs(2, 40, 52, torch.float16, "same", comp=True, mask="weight", key=("gca",))
    x = to_device(x, device)
    p = x["pred_alpha"].requires_grad_()
    crit = mattingloss.presets.gca(comp_weight=0.5, smooth_l1_weight=0.25, grad_weight=2.0)
    out = crit(p, x["alpha"] / 255.0, x["weight"], x["image"] / 255.0, x["fg"] / 255.0, x["bg"] / 255.0)
    return _terms(out, {"pred": p}, device, "gca")


# --------------------------------------------------------------------------- cases: metrics

def _metrics_inputs(B, H, W, key):
    """uint8 mattes with large flat regions, holes and thin lines (the connectivity
    cases), a prediction near them and a 0/128/255 trimap."""
    g = generator(B, H, W, *key)
    gt = (torch.rand(B, 1, H // 4 + 1, W // 4 + 1, generator=g) * 3).floor().mul(127.5).round()
    gt = torch.nn.functional.interpolate(gt, size=(H, W), mode="nearest")
    gt[..., ::7, :] = 255.0  # thin lines
    pred = (gt + torch.randint(-40, 41, gt.shape, generator=g)).clamp(0, 255)
    trimap = torch.tensor([0.0, 128.0, 255.0])[torch.randint(0, 3, (B, 1, H, W), generator=g)]
    return pred.to(torch.uint8), gt.to(torch.uint8), trimap.to(torch.uint8)


def _metrics_case(convention, dtype, B, H, W):
    def run(device):
        pred, gt, trimap = (t.to(device) for t in _metrics_inputs(B, H, W, (convention, str(dtype))))
        if dtype != torch.uint8:
            pred, gt = pred.to(dtype) / 255, gt.to(dtype) / 255
        # p3m evaluates whole images only
        where = {"region": "all"} if convention == "p3m" else {}
        trimap = None if where else trimap
        out = mattingloss.metrics.matting_metrics(pred, gt, trimap, convention, **where)
        out["levels"] = mattingloss.metrics.connectivity_levels(pred, gt, trimap, convention, **where)
        return out
    run.__name__ = f"case_metrics_{convention}_{str(dtype).split('.')[-1]}_{B}x{H}x{W}"
    return run


_METRICS_DTYPES = (torch.uint8, torch.float64, torch.float32, torch.uint8, torch.float64)
for _i, _conv in enumerate(("dim_matlab", "mmagic", "gca", "rvm", "p3m")):
    case(_metrics_case(_conv, _METRICS_DTYPES[_i], 2, 37 + 8 * _i, 61 - 5 * _i),
         needs=("mattingloss::matting_metrics",))


@case(needs=("mattingloss::matting_metrics",))
def case_metrics_launch_variants(device):
    """The other launch sequences and shapes: region="all" (RVM's whole frames), mixed
    dtypes, a trimap with no unknown pixel, 1x1 / 1xN / Nx1 images, and the single
    metrics (SAD/MSE alone: no filter and no Connectivity scratch; Gradient alone;
    Connectivity alone)."""
    M = mattingloss.metrics
    pred, gt, trimap = (t.to(device) for t in _metrics_inputs(3, 19, 23, ("variants",)))
    out = {}
    r = M.matting_metrics(pred.float() / 255, gt, None, "rvm", region="all")
    out.update({f"rvm_all_{k}": v for k, v in r.items()})
    r = M.matting_metrics(pred, gt.double(), torch.zeros_like(trimap), "dim_matlab", gt_scale=255)
    out.update({f"empty_{k}": v for k, v in r.items()})
    for H, W in ((1, 1), (1, 9), (9, 1)):
        p, g, t = pred[:, :, :H, :W].contiguous(), gt[:, :, :H, :W].contiguous(), trimap[:, :, :H, :W].contiguous()
        for conv in ("mmagic", "p3m"):
            where = {"region": "all"} if conv == "p3m" else {}
            r = M.matting_metrics(p, g, None if where else t, conv, **where)
            out.update({f"{conv}_{H}x{W}_{k}": v for k, v in r.items()})
            out[f"{conv}_{H}x{W}_levels"] = M.connectivity_levels(p, g, None if where else t, conv, **where)
    out["sad_alone"] = M.sad(pred, gt, trimap, "gca")
    out["grad_alone"] = M.gradient_error(pred, gt, trimap, "gca")
    out["conn_alone"] = M.connectivity_error(pred, gt, trimap, "gca")
    out["p3m_grad_alone"] = M.gradient_error(pred, gt, None, "p3m", region="all")
    return out


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


def assert_bitwise(a: Outputs, b: Outputs, what: str) -> None:
    """Raises, naming the outputs, unless a and b are bitwise equal (a case's own check
    of two paths that must agree to the bit)."""
    differing = bitwise_equal(a, b)
    if differing:
        raise AssertionError(f"{what} differ in {', '.join(differing)}")


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
