"""Every argument check of the public API, in one place.

Bad input gets a ValueError or TypeError that names the argument, what it got
and what was expected, before any kernel runs. Nothing here reads tensor
values except the optional negative-weight check (see `check_weight`).
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass

import torch

from . import _ops

PRED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Read by the kernels as stored; other real dtypes are converted once to float32.
NATIVE_DTYPES = (torch.uint8,) + PRED_DTYPES


def _describe(t: torch.Tensor) -> str:
    return f"shape {tuple(t.shape)}, dtype {t.dtype}, device {t.device}"


def _number(name, value, *, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name}: expected {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name}: expected <= {high}, got {value}")
    return value


@dataclass(frozen=True)
class Config:
    """The loss's options, checked once (DIMLoss checks them at construction)."""

    wl: float
    eps: float
    reduction: int
    alpha_scale: float
    color_scale: float
    mask_mode: int
    mask_lo: float
    mask_hi: float


def region_options(unknown_value, unknown_range, uses_weight, default_value=128.0) -> tuple[int, float, float]:
    """(mask mode, lo, hi) from the options that say how a trimap is read (or weights)."""
    if uses_weight and (unknown_value is not None or unknown_range is not None):
        raise ValueError("unknown_value/unknown_range: they describe a trimap, but weight= was given; "
                         "pass a trimap instead, or drop them")
    if unknown_value is not None and unknown_range is not None:
        raise ValueError(f"unknown_value and unknown_range: give one, got both ({unknown_value!r}, "
                         f"{unknown_range!r})")
    if uses_weight:
        return _ops.MASK_WEIGHT, 0.0, 0.0
    if unknown_range is not None:
        if not isinstance(unknown_range, (tuple, list)) or len(unknown_range) != 2:
            raise ValueError(f"unknown_range: expected (lo, hi), got {unknown_range!r}")
        lo = _number("unknown_range[0]", unknown_range[0])
        hi = _number("unknown_range[1]", unknown_range[1])
        if not lo < hi:
            raise ValueError(f"unknown_range: expected lo < hi, got ({lo}, {hi})")
        return _ops.MASK_RANGE, lo, hi
    lo = _number("unknown_value", default_value if unknown_value is None else unknown_value)
    return _ops.MASK_EQUAL, lo, lo


def make_config(*, wl, eps, reduction, alpha_scale, color_scale, unknown_value, unknown_range,
                uses_weight) -> Config:
    wl = _number("wl", wl, low=0.0, high=1.0)
    eps = _number("eps", eps, low=0.0, low_open=True)
    if not isinstance(reduction, str) or reduction not in _ops.REDUCTIONS:
        raise ValueError(f"reduction: expected one of {sorted(_ops.REDUCTIONS)}, got {reduction!r}")
    alpha_scale = _number("alpha_scale", alpha_scale, low=0.0, low_open=True)
    color_scale = _number("color_scale", color_scale, low=0.0, low_open=True)
    mode, lo, hi = region_options(unknown_value, unknown_range, uses_weight)
    return Config(wl, eps, _ops.REDUCTIONS[reduction], alpha_scale, color_scale, mode, lo, hi)


def _check_map(name, t, pred, channels, *, allow_grad=False, loss="DIMLoss", grads="pred_alpha, fg and bg"):
    """Raises unless t is a real (B, C, H, W) tensor matching pred_alpha."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    B, _, H, W = pred.shape
    if t.dim() != 4 or tuple(t.shape) != (B, channels, H, W):
        raise ValueError(f"{name}: expected shape ({B}, {channels}, {H}, {W}) to match pred_alpha, got {_describe(t)}")
    if t.device != pred.device:
        raise ValueError(f"{name}: expected device {pred.device} (pred_alpha's), got {_describe(t)}")
    if t.is_complex():
        raise TypeError(f"{name}: expected a real dtype (uint8 or floating), got {_describe(t)}")
    if t.requires_grad and not allow_grad and torch.is_grad_enabled():
        raise ValueError(f"{name}: requires grad, but {loss} differentiates {grads} only; "
                         f"pass {name}.detach()")


def _map(name, t, pred, channels, *, allow_grad=False, loss="DIMLoss", grads="pred_alpha, fg and bg"):
    """A (B, C, H, W) input matching pred_alpha, made contiguous and of a dtype the kernels read."""
    _check_map(name, t, pred, channels, allow_grad=allow_grad, loss=loss, grads=grads)
    if t.dtype == torch.bool:
        t = t.view(torch.uint8) if t.is_contiguous() else t.to(torch.uint8)
    elif t.dtype not in NATIVE_DTYPES:
        t = t.to(torch.float32)  # int16/int32/int64 mattes or weights: one converted copy
    return t.contiguous()  # non-contiguous or channels_last: one copy


def check_inputs(config: Config, pred_alpha, alpha, trimap, image, fg, bg, weight, check_weight=True):
    """Returns what the op reads: (pred, alpha, region, image, fg, bg)."""
    pred = check_pred(pred_alpha)
    alpha = _map("alpha", alpha, pred, 1)

    if (trimap is None) == (weight is None):
        raise ValueError("trimap/weight: expected exactly one of them, got "
                         + ("both" if trimap is not None else "neither"))
    region = read_region(trimap, weight, pred, config.mask_mode, config.mask_lo, config.mask_hi, check_weight)

    given = [name for name, t in (("image", image), ("fg", fg), ("bg", bg)) if t is not None]
    if given and len(given) != 3:
        missing = sorted({"image", "fg", "bg"} - set(given))
        raise ValueError(f"image/fg/bg: the compositional loss needs all three, got {given}, missing {missing}")
    if given:
        image = _map("image", image, pred, 3)
        fg = _map("fg", fg, pred, 3, allow_grad=True)
        bg = _map("bg", bg, pred, 3, allow_grad=True)
    return pred, alpha, region, image, fg, bg


@dataclass(frozen=True)
class Region:
    """The region as the kernels read it: `mask` with a mode and bounds (see csrc/dim_loss.h)."""

    mask: torch.Tensor
    mode: int
    lo: float
    hi: float


def _comparison_dtype(trimap: torch.Tensor, bounds) -> torch.dtype | None:
    """The dtype PyTorch compares `trimap == bound` in (torch.result_type with a
    Python scalar); None where every dtype gives the same answer."""
    if trimap.is_floating_point():
        return trimap.dtype
    if all(float(b).is_integer() for b in bounds):
        return None
    return torch.get_default_dtype()


def read_region(trimap, weight, pred, mode, lo, hi, check_weight=True, loss="DIMLoss",
                grads="pred_alpha, fg and bg") -> Region:
    """The region the kernels read from a trimap or from weights (one of them given):
    weights checked non-negative (optional; see `check_weight`), a trimap compared as
    PyTorch compares it (`trimap_region`), and the first call's convention check."""
    if weight is not None:
        mask = _map("weight", weight, pred, 1, loss=loss, grads=grads)
        if check_weight and _may_read_values(mask) and bool((mask < 0).any()):
            raise ValueError(f"weight: expected non-negative weights, got a minimum of {mask.min().item()}")
        return Region(mask, _ops.MASK_WEIGHT, 0.0, 0.0)
    _check_map("trimap", trimap, pred, 1, loss=loss, grads=grads)
    region = trimap_region(trimap, pred, mode, lo, hi)
    check_trimap_convention(trimap, mode, lo, hi)
    return region


def trimap_region(trimap: torch.Tensor, pred: torch.Tensor, mode: int, lo: float, hi: float) -> Region:
    """`trimap == lo` (or `lo < trimap < hi`) exactly as PyTorch computes it for
    this trimap, whatever its dtype and pred_alpha's.

    The kernels compare in their accumulation type (float32, or float64 for a
    float64 pred_alpha) with the bounds rounded to the trimap's comparison dtype
    (csrc/common/host_tensors.h, comparison_bound): exact wherever the trimap's
    values are exact in the accumulation type. Where they are not (a float64
    comparison in float32; integer dtypes the kernels don't read), the comparison
    is made here with torch's own operators, into a 0/1 uint8 mask: one pass
    over the trimap, in place of the converted copy those dtypes needed anyway.
    """
    cmp = _comparison_dtype(trimap, (lo, hi))
    native = trimap.dtype in NATIVE_DTYPES or trimap.dtype == torch.bool
    exact = native and (cmp != torch.float64 or (trimap.dtype == pred.dtype == torch.float64))
    if exact:
        return Region(_map("trimap", trimap, pred, 1), mode, lo, hi)
    if mode == _ops.MASK_EQUAL:
        matches = trimap == lo
    else:
        matches = (trimap > lo) & (trimap < hi)
    return Region(matches.contiguous().view(torch.uint8), _ops.MASK_EQUAL, 1.0, 1.0)


_convention_checked = False  # check_trimap_convention runs once per process


def check_trimap_convention(trimap: torch.Tensor, mode: int, lo: float, hi: float) -> None:
    """On the first eager call only, warn when no pixel of the batch is unknown
    and the trimap's values suggest another convention than the one asked for
    (a normalised or class-index trimap read with unknown_value=128, or the
    reverse): such a run would silently train on a zero loss. It reads the
    region's pixel count and a few statistics of the trimap: one host sync on
    CUDA, once per process; skipped under torch.compile and CUDA graph capture.
    """
    global _convention_checked
    if _convention_checked or not _may_read_values(trimap):
        return
    _convention_checked = True
    unknown = (trimap == lo) if mode == _ops.MASK_EQUAL else (trimap > lo) & (trimap < hi)
    if bool(unknown.any()):
        return
    low, high = trimap.min().item(), trimap.max().item()
    asked = f"unknown_value={lo:g}" if mode == _ops.MASK_EQUAL else f"unknown_range=({lo:g}, {hi:g})"
    hints = []
    if high == 2 and lo != 1 and bool(((trimap == 0) | (trimap == 1) | (trimap == 2)).all() & (trimap == 1).any()):
        hints.append("unknown_value=1 for class-index trimaps (0/1/2)")
    elif high <= 1 and hi >= 1 and bool(((trimap > 0) & (trimap < 1)).any()):
        hints.append("unknown_value=0.5 for trimaps in [0, 1] such as 0/0.5/1")
        hints.append("unknown_value=128/255 for 8-bit trimaps divided by 255")
        hints.append("unknown_range=(0, 1) for trimaps resized with interpolation")
    elif high > 2 and hi <= 2:
        hints.append("unknown_value=128 (the default) for 8-bit trimaps 0/128/255")
        hints.append("unknown_range=(0, 255) for 8-bit trimaps resized with interpolation")
    if hints:
        warnings.warn(
            f"mattingloss: no pixel of this batch's trimap is unknown with {asked}, so the loss and its "
            f"gradients are 0; the trimap's values lie in [{low:g}, {high:g}], which suggests another "
            f"convention. Did you mean " + ", or ".join(hints) + "? (Checked once, on the first call.)",
            stacklevel=_caller_stacklevel(),
        )


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside mattingloss and torch: the user's call."""
    inside = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(torch.__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def _may_read_values(t: torch.Tensor) -> bool:
    """Reading a CUDA tensor's values syncs with the host: skip the check where
    that is impossible (CUDA graph capture) or would break the graph (torch.compile)."""
    if torch.compiler.is_compiling():
        return False
    if t.is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    return True


def check_pred(pred_alpha) -> torch.Tensor:
    """pred_alpha checked and made contiguous: a (B, 1, H, W) floating tensor on a device with kernels."""
    if not isinstance(pred_alpha, torch.Tensor):
        raise TypeError(f"pred_alpha: expected a torch.Tensor, got {type(pred_alpha).__name__}")
    if pred_alpha.dtype not in PRED_DTYPES:
        raise TypeError(f"pred_alpha: expected float16, bfloat16, float32 or float64, got {_describe(pred_alpha)}")
    if pred_alpha.dim() != 4 or pred_alpha.shape[1] != 1:
        raise ValueError(f"pred_alpha: expected shape (B, 1, H, W), got {_describe(pred_alpha)}")
    if pred_alpha.numel() == 0:
        raise ValueError(f"pred_alpha: expected a non-empty batch and image, got {_describe(pred_alpha)}")
    if pred_alpha.device.type not in ("cpu", "cuda"):
        raise ValueError(f"pred_alpha: expected a cpu or cuda tensor, got {_describe(pred_alpha)}")
    if pred_alpha.device.type == "cuda" and not _ops._CUDA_KERNELS_BUILT:
        raise ValueError("pred_alpha: is on CUDA, but this build of mattingloss has no CUDA kernels; "
                         "rebuild with a CUDA toolkit and a CUDA build of torch (see README)")
    return pred_alpha.contiguous()
