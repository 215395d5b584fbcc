"""Every argument check of the public API, in one place.

Bad input gets a ValueError or TypeError that names the argument, what it got
and what was expected, before any kernel runs. Nothing here reads tensor
values except the optional negative-weight check (see `check_weight`).
"""
from __future__ import annotations

import math
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


def make_config(*, wl, eps, reduction, alpha_scale, color_scale, unknown_value, unknown_range,
                uses_weight) -> Config:
    wl = _number("wl", wl, low=0.0, high=1.0)
    eps = _number("eps", eps, low=0.0, low_open=True)
    if not isinstance(reduction, str) or reduction not in _ops.REDUCTIONS:
        raise ValueError(f"reduction: expected one of {sorted(_ops.REDUCTIONS)}, got {reduction!r}")
    alpha_scale = _number("alpha_scale", alpha_scale, low=0.0, low_open=True)
    color_scale = _number("color_scale", color_scale, low=0.0, low_open=True)
    if uses_weight and (unknown_value is not None or unknown_range is not None):
        raise ValueError("unknown_value/unknown_range: they describe a trimap, but weight= was given; "
                         "pass a trimap instead, or drop them")
    if unknown_value is not None and unknown_range is not None:
        raise ValueError(f"unknown_value and unknown_range: give one, got both ({unknown_value!r}, "
                         f"{unknown_range!r})")
    if uses_weight:
        mode, lo, hi = _ops.MASK_WEIGHT, 0.0, 0.0
    elif unknown_range is not None:
        if not isinstance(unknown_range, (tuple, list)) or len(unknown_range) != 2:
            raise ValueError(f"unknown_range: expected (lo, hi), got {unknown_range!r}")
        lo = _number("unknown_range[0]", unknown_range[0])
        hi = _number("unknown_range[1]", unknown_range[1])
        if not lo < hi:
            raise ValueError(f"unknown_range: expected lo < hi, got ({lo}, {hi})")
        mode = _ops.MASK_RANGE
    else:
        mode = _ops.MASK_EQUAL
        lo = _number("unknown_value", 128.0 if unknown_value is None else unknown_value)
        hi = lo
    return Config(wl, eps, _ops.REDUCTIONS[reduction], alpha_scale, color_scale, mode, lo, hi)


def _map(name, t, pred, channels, *, allow_grad=False, loss="DIMLoss"):
    """A (B, C, H, W) input matching pred_alpha, made contiguous and of a dtype the kernels read."""
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
        raise ValueError(f"{name}: requires grad, but {loss} differentiates pred_alpha, fg and bg only; "
                         f"pass {name}.detach()")
    if t.dtype == torch.bool:
        t = t.view(torch.uint8) if t.is_contiguous() else t.to(torch.uint8)
    elif t.dtype not in NATIVE_DTYPES:
        t = t.to(torch.float32)  # int16/int32/int64 trimaps or mattes: one converted copy
    return t.contiguous()  # non-contiguous or channels_last: one copy


def check_inputs(pred_alpha, alpha, trimap, image, fg, bg, weight, check_weight=True):
    """Returns the tensors the op reads: (pred, alpha, mask, image, fg, bg)."""
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
    pred = pred_alpha.contiguous()
    alpha = _map("alpha", alpha, pred, 1)

    if (trimap is None) == (weight is None):
        raise ValueError("trimap/weight: expected exactly one of them, got "
                         + ("both" if trimap is not None else "neither"))
    if weight is not None:
        mask = _map("weight", weight, pred, 1)
        if check_weight and _may_read_values(mask) and bool((mask < 0).any()):
            raise ValueError(f"weight: expected non-negative weights, got a minimum of {mask.min().item()}")
    else:
        mask = _map("trimap", trimap, pred, 1)

    given = [name for name, t in (("image", image), ("fg", fg), ("bg", bg)) if t is not None]
    if given and len(given) != 3:
        missing = sorted({"image", "fg", "bg"} - set(given))
        raise ValueError(f"image/fg/bg: the compositional loss needs all three, got {given}, missing {missing}")
    if given:
        image = _map("image", image, pred, 3)
        fg = _map("fg", fg, pred, 3, allow_grad=True)
        bg = _map("bg", bg, pred, 3, allow_grad=True)
    return pred, alpha, mask, image, fg, bg


def _may_read_values(t: torch.Tensor) -> bool:
    """Reading a CUDA tensor's values syncs with the host: skip the check where
    that is impossible (CUDA graph capture) or would break the graph (torch.compile)."""
    if torch.compiler.is_compiling():
        return False
    if t.is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    return True


def check_pred(pred_alpha) -> torch.Tensor:
    """pred_alpha checked and made contiguous (the checks of check_inputs, for the other losses)."""
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


@dataclass(frozen=True)
class MaskSpec:
    """How a trimap's unknown region is read: `value` (or the open `range`) as the
    user gave them, and rounded to each floating dtype torch may compare in
    (see `mask_bounds`): computed once, so that calls do no float arithmetic on
    them (torch.compile may trace a module's float attributes as symbols)."""

    mode: int
    lo: float
    hi: float
    lo_is_int: bool
    hi_is_int: bool
    rounded: tuple = ()  # ((dtype, lo, hi), ...) for float16, bfloat16, float32

    def __post_init__(self):
        object.__setattr__(self, "rounded", tuple(
            (dt, round_to_dtype(self.lo, dt), round_to_dtype(self.hi, dt)) for dt in _FLOAT_FORMATS))


def mask_spec(unknown_value, unknown_range, uses_weight, default_value=128.0) -> MaskSpec:
    """Checks unknown_value / unknown_range, as make_config does for DIMLoss."""
    if uses_weight and (unknown_value is not None or unknown_range is not None):
        raise ValueError("unknown_value/unknown_range: they describe a trimap, but weight= was given; "
                         "pass a trimap instead, or drop them")
    if unknown_value is not None and unknown_range is not None:
        raise ValueError(f"unknown_value and unknown_range: give one, got both ({unknown_value!r}, "
                         f"{unknown_range!r})")
    if uses_weight:
        return MaskSpec(_ops.MASK_WEIGHT, 0.0, 0.0, False, False)
    if unknown_range is not None:
        if not isinstance(unknown_range, (tuple, list)) or len(unknown_range) != 2:
            raise ValueError(f"unknown_range: expected (lo, hi), got {unknown_range!r}")
        lo = _number("unknown_range[0]", unknown_range[0])
        hi = _number("unknown_range[1]", unknown_range[1])
        if not lo < hi:
            raise ValueError(f"unknown_range: expected lo < hi, got ({lo}, {hi})")
        return MaskSpec(_ops.MASK_RANGE, lo, hi, isinstance(unknown_range[0], int),
                        isinstance(unknown_range[1], int))
    value = default_value if unknown_value is None else unknown_value
    lo = _number("unknown_value", value)
    return MaskSpec(_ops.MASK_EQUAL, lo, lo, isinstance(value, int), isinstance(value, int))


# (significand bits, exponent of the smallest normal as math.frexp gives it, largest finite)
_FLOAT_FORMATS = {
    torch.float16: (11, -13, 65504.0),
    torch.bfloat16: (8, -125, float.fromhex("0x1.fep127")),
    torch.float32: (24, -125, float.fromhex("0x1.fffffep127")),
}


def round_to_dtype(value: float, dtype: torch.dtype) -> float:
    """`value` rounded to nearest-even in a floating dtype, as torch converts a
    Python number to a tensor's dtype. Pure Python arithmetic, so it costs
    nothing under torch.compile and never touches a device."""
    if dtype not in _FLOAT_FORMATS or value == 0.0 or not math.isfinite(value):
        return value  # float64: already; integer dtypes: compared exactly
    bits, min_exp, largest = _FLOAT_FORMATS[dtype]
    _, exp = math.frexp(value)
    quantum = max(exp, min_exp) - bits  # subnormals keep the smallest normal's quantum
    rounded = math.ldexp(float(round(math.ldexp(value, -quantum))), quantum)
    return math.copysign(math.inf, value) if abs(rounded) > largest else rounded


def comparison_dtype(trimap: torch.Tensor, value_is_int: bool) -> torch.dtype:
    """torch.result_type(trimap, value) for a Python number: the dtype torch
    compares `trimap == value` (or `<`, `>`) in."""
    if trimap.is_floating_point():
        return trimap.dtype
    return trimap.dtype if value_is_int else torch.get_default_dtype()


def mask_bounds(spec: MaskSpec, trimap) -> tuple:
    """(lo, hi) rounded to the dtype torch would compare the user's trimap in,
    so that the kernels' comparison selects exactly the pixels torch's does."""
    if spec.mode == _ops.MASK_WEIGHT or trimap is None:
        return spec.lo, spec.hi
    lo_dtype = comparison_dtype(trimap, spec.lo_is_int)
    hi_dtype = comparison_dtype(trimap, spec.hi_is_int)
    lo, hi = spec.lo, spec.hi  # float64 and integer comparisons: as given
    for dtype, rounded_lo, rounded_hi in spec.rounded:
        if dtype == lo_dtype:
            lo = rounded_lo
        if dtype == hi_dtype:
            hi = rounded_hi
    return lo, hi
