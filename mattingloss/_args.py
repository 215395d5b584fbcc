"""Every argument check of the public API, in one place.

Bad input gets a ValueError or TypeError that names the argument, what it got
and what was expected, before any kernel runs. Nothing here reads tensor
values except the optional negative-weight check (see `check_weight`).
"""
from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from typing import NamedTuple, Optional

import torch

from . import _codes as codes
from . import _ops

PRED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Read by the kernels as stored; other real dtypes are converted once to float32.
NATIVE_DTYPES = (torch.uint8,) + PRED_DTYPES


def _key(values) -> tuple:
    """A cache key of option values telling apart what == does not (1, 1.0 and True,
    also inside a tuple); TypeError for a value that cannot be a key."""
    key = []
    for v in values:
        kind = type(v)
        if kind is tuple or kind is list:
            key.append((kind, tuple(v), tuple(map(type, v))))
        else:
            key.append((kind, v))
    key = tuple(key)
    hash(key)
    return key


def cached(make):
    """make(*args, **options) -> a checked config, remembered per distinct options:
    the functional calls (dim_loss(...) and the others) check their options once,
    not at every call. What raises is not remembered; options that cannot be a
    key (a dict, a tensor) are checked at every call."""
    cache = {}

    @functools.wraps(make)
    def checked(*args, **options):
        values = tuple(options.values())
        kinds = tuple(map(type, values))
        try:
            if args or tuple in kinds or list in kinds:
                key = (_key(args), tuple(options), _key(values))
            else:  # the usual call: the kinds tell 1, 1.0 and True apart
                key = (tuple(options), values, kinds)
            config = cache.get(key)
        except TypeError:
            return make(*args, **options)
        if config is None:
            config = make(*args, **options)
            if len(cache) < 1024:
                cache[key] = config
        return config

    return checked


def describe(t: torch.Tensor) -> str:
    return f"shape {tuple(t.shape)}, dtype {t.dtype}, device {t.device}"


def number(name, value, *, low=None, high=None, low_open=False) -> float:
    """A finite Python number within the bounds, as float."""
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


def boolean(name, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {value!r} ({type(value).__name__})")
    return value


def choice(name, value, options):
    """value, one of options: a dict's code for it (its names listed sorted in the
    error), or value itself from a sequence (listed in its order)."""
    if not isinstance(value, str) or value not in options:
        listed = sorted(options) if isinstance(options, dict) else list(options)
        raise ValueError(f"{name}: expected one of {listed}, got {value!r}")
    return options[value] if isinstance(options, dict) else value


def region_options(unknown_value, unknown_range, uses_weight, default_value=128.0) -> tuple[int, float, float]:
    """(mask mode, lo, hi) from the options that say how a trimap is read (or weights)."""
    if uses_weight and (unknown_value is not None or unknown_range is not None):
        raise ValueError("unknown_value/unknown_range: they describe a trimap, but weight= was given; "
                         "pass a trimap instead, or drop them")
    if unknown_value is not None and unknown_range is not None:
        raise ValueError(f"unknown_value and unknown_range: give one, got both ({unknown_value!r}, "
                         f"{unknown_range!r})")
    if uses_weight:
        return codes.MASK_WEIGHT, 0.0, 0.0
    if unknown_range is not None:
        if not isinstance(unknown_range, (tuple, list)) or len(unknown_range) != 2:
            raise ValueError(f"unknown_range: expected (lo, hi), got {unknown_range!r}")
        lo = number("unknown_range[0]", unknown_range[0])
        hi = number("unknown_range[1]", unknown_range[1])
        if not lo < hi:
            raise ValueError(f"unknown_range: expected lo < hi, got ({lo}, {hi})")
        return codes.MASK_RANGE, lo, hi
    lo = number("unknown_value", default_value if unknown_value is None else unknown_value)
    return codes.MASK_EQUAL, lo, lo


def floating(name, t) -> None:
    """Raises unless t is a tensor of a dtype a prediction may have."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in PRED_DTYPES:
        raise TypeError(f"{name}: expected float16, bfloat16, float32 or float64, got {describe(t)}")


def prediction(t, name="pred_alpha", shape="(B, 1, H, W)", dims=4, channels=1) -> torch.Tensor:
    """A prediction checked and made contiguous: a floating tensor of `dims` dimensions
    (dimension dims - 3 of size `channels` unless that is None) on a device with kernels."""
    floating(name, t)
    if t.dim() != dims or (channels is not None and t.shape[dims - 3] != channels):
        raise ValueError(f"{name}: expected shape {shape}, got {describe(t)}")
    if t.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty batch and image, got {describe(t)}")
    if t.is_cuda:
        if not _ops.cuda_kernels_built():
            raise ValueError(f"{name}: is on CUDA, but this build of mattingloss has no CUDA kernels; "
                             "rebuild with a CUDA toolkit and a CUDA build of torch (see docs/building.md)")
    elif not t.is_cpu:
        raise ValueError(f"{name}: expected a cpu or cuda tensor, got {describe(t)}")
    return t.contiguous()


def _same_device(t: torch.Tensor, like: torch.Tensor) -> bool:
    """t.device == like.device for a like on the CPU or CUDA, without making two
    device objects (this runs for every input of every call)."""
    if like.is_cuda:
        return t.is_cuda and t.get_device() == like.get_device()
    return t.is_cpu


def _checked(name, t, like, shape, allow_grad, loss, grads, like_name) -> None:
    """_check_like with every check at once for the usual input (one branch, no
    call; this runs for every tensor of every call), each with its message otherwise."""
    if not (type(t) is torch.Tensor and t.shape == shape and t.dtype in NATIVE_DTYPES and _same_device(t, like)
            and (allow_grad or not t.requires_grad)):
        _check_like(name, t, like, shape, allow_grad=allow_grad, loss=loss, grads=grads, like_name=like_name)


def _check_like(name, t, like, shape, *, allow_grad, loss, grads, like_name):
    """Raises unless t is a real tensor of this shape on like's device."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.shape != shape:
        raise ValueError(f"{name}: expected shape {tuple(shape)} to match {like_name}, got {describe(t)}")
    if not _same_device(t, like):
        raise ValueError(f"{name}: expected device {like.device} ({like_name}'s), got {describe(t)}")
    if t.dtype not in NATIVE_DTYPES and t.is_complex():
        raise TypeError(f"{name}: expected a real dtype (uint8 or floating), got {describe(t)}")
    if t.requires_grad and not allow_grad and torch.is_grad_enabled():
        raise ValueError(f"{name}: requires grad, but {loss} differentiates {grads} only; "
                         f"pass {name}.detach()")


def tensor_like(name, t, like, shape=None, *, allow_grad=False, loss="this loss", grads="pred_alpha",
                like_name="pred_alpha", convert=True, check=True) -> torch.Tensor:
    """An input of `shape` (default: like's) on like's device, made contiguous; with
    `convert`, of a dtype the kernels read (bool as uint8, other integers as float32).
    check=False: the caller has checked it (_check_like)."""
    if check:
        _checked(name, t, like, like.shape if shape is None else shape, allow_grad, loss, grads, like_name)
    if convert and t.dtype not in NATIVE_DTYPES:
        if t.dtype == torch.bool:
            t = t.view(torch.uint8) if t.is_contiguous() else t.to(torch.uint8)
        else:
            t = t.to(torch.float32)  # int16/int32/int64 mattes or weights: one converted copy
    return t.contiguous()  # non-contiguous or channels_last: one copy


def image_like(name, t, pred, channels=1, *, allow_grad=False, loss="this loss", grads="pred_alpha"):
    """A (B, channels, H, W) input matching pred_alpha, as the kernels read it."""
    if channels == 1:  # pred_alpha's own shape
        shape = pred.shape
    else:
        B, _, H, W = pred.shape
        shape = (B, channels, H, W)
    _checked(name, t, pred, shape, allow_grad, loss, grads, "pred_alpha")
    if t.dtype in NATIVE_DTYPES:  # the usual input: no conversion, one call less
        return t.contiguous()
    return tensor_like(name, t, pred, shape, check=False)


def composite_like(pred, image, fg, bg, *, loss="this loss", grads="pred_alpha"):
    """image_like for the (B, 3, H, W) image, fg and bg of a compositional loss (fg and
    bg may require grad): the usual three pass in one branch (this runs on every DIM
    and composition call); otherwise each goes through image_like, for its
    conversion or its error."""
    if _usual_composite(pred, image, fg, bg):
        return image.contiguous(), fg.contiguous(), bg.contiguous()
    return (image_like("image", image, pred, 3, loss=loss, grads=grads),
            image_like("fg", fg, pred, 3, allow_grad=True, loss=loss, grads=grads),
            image_like("bg", bg, pred, 3, allow_grad=True, loss=loss, grads=grads))


_NATIVE = frozenset(NATIVE_DTYPES)
_PRED = frozenset(PRED_DTYPES)


def usual(pred, alpha, trimap, lo, hi, composite=None):
    """The usual call's inputs checked in one branch, or None.

    At small sizes the checks are much of a call's cost, and almost every call
    passes the same kind of inputs: pred_alpha a plain floating (B, 1, H, W)
    tensor on the CPU (or on CUDA, with the CUDA kernels built); alpha and the
    trimap (B, 1, H, W) and image, fg, bg (B, 3, H, W), when given, plain tensors
    of dtypes the kernels read, on pred_alpha's device, none but pred_alpha, fg
    and bg requiring grad; a trimap the kernels compare exactly as stored
    (trimap_region) and whose convention was checked (the first call's). For
    those this returns (pred, alpha, trimap, image, fg, bg) made contiguous,
    exactly what each input's own check returns (tests/test_args.py holds that);
    for anything else None, and then each input goes through its own check, for
    its conversion or its error.
    """
    T = torch.Tensor
    if not (type(pred) is T and type(alpha) is T and type(trimap) is T and _convention_checked):
        return None
    shape = pred.shape
    if not (len(shape) == 4 and shape[1] == 1 and pred.dtype in _PRED and 0 not in shape
            and alpha.shape == shape and trimap.shape == shape and alpha.dtype in _NATIVE and trimap.dtype in _NATIVE
            and not alpha.requires_grad and not trimap.requires_grad):
        return None
    if pred.is_cpu:
        if not (alpha.is_cpu and trimap.is_cpu):
            return None
    elif not (pred.is_cuda and _ops.cuda_kernels_built() and _same_device(alpha, pred)
              and _same_device(trimap, pred)):
        return None
    if not _kernels_compare_exactly(trimap, pred, lo, hi):
        return None
    if composite is None:
        return pred.contiguous(), alpha.contiguous(), trimap.contiguous(), None, None, None
    image, fg, bg = composite
    if not _usual_composite(pred, image, fg, bg):
        return None
    return pred.contiguous(), alpha.contiguous(), trimap.contiguous(), image.contiguous(), fg.contiguous(), bg.contiguous()


def _usual_composite(pred, image, fg, bg) -> bool:
    """Whether image, fg and bg are the usual: plain (B, 3, H, W) tensors of dtypes the
    kernels read on pred_alpha's device (a checked one), the image not requiring grad."""
    T = torch.Tensor
    if not (type(image) is T and type(fg) is T and type(bg) is T):
        return False
    B, _, H, W = pred.shape
    shape = (B, 3, H, W)
    return (image.shape == shape and fg.shape == shape and bg.shape == shape and image.dtype in _NATIVE
            and fg.dtype in _NATIVE and bg.dtype in _NATIVE and not image.requires_grad
            and (image.is_cpu and fg.is_cpu and bg.is_cpu if pred.is_cpu else
                 _same_device(image, pred) and _same_device(fg, pred) and _same_device(bg, pred)))


class Region(NamedTuple):
    """The region as the kernels read it: `mask` (None for MASK_ALL) with a mode and bounds."""

    mask: Optional[torch.Tensor]
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


def read_region(trimap, weight, pred, mode, lo, hi, check_weight=True, *, optional=False, loss="this loss",
                grads="pred_alpha") -> Region:
    """The region the kernels read from a trimap or from weights: exactly one of them
    (or, with `optional`, neither: every pixel, MASK_ALL). Weights are checked
    non-negative (optional; see `check_weight`), a trimap is compared as PyTorch
    compares it (`trimap_region`), and the first call checks its convention."""
    if trimap is not None and weight is not None:
        raise ValueError(f"trimap/weight: expected {'at most' if optional else 'exactly'} one of them, got both")
    if weight is not None:
        mask = image_like("weight", weight, pred, loss=loss, grads=grads)
        if check_weight and _may_read_values(mask) and bool((mask < 0).any()):
            raise ValueError(f"weight: expected non-negative weights, got a minimum of {mask.min().item()}")
        return Region(mask, codes.MASK_WEIGHT, 0.0, 0.0)
    if trimap is None:
        if not optional:
            raise ValueError("trimap/weight: expected exactly one of them, got neither")
        return Region(None, codes.MASK_ALL, 0.0, 0.0)
    region = trimap_region(trimap, pred, mode, lo, hi, loss=loss, grads=grads)
    check_trimap_convention(trimap, mode, lo, hi)
    return region


# (trimap dtype, pred dtype, lo, hi, default dtype) -> whether the kernels compare exactly
_exact_compare: dict = {}


def _kernels_compare_exactly(trimap: torch.Tensor, pred: torch.Tensor, lo: float, hi: float) -> bool:
    """Whether the kernels, reading this trimap as stored (or a bool one as uint8),
    compare it with lo and hi exactly as PyTorch does (see trimap_region)."""
    key = (trimap.dtype, pred.dtype, lo, hi, torch.get_default_dtype())
    exact = _exact_compare.get(key)
    if exact is None:
        cmp = _comparison_dtype(trimap, (lo, hi))
        native = trimap.dtype in NATIVE_DTYPES or trimap.dtype == torch.bool
        exact = native and (cmp != torch.float64 or (trimap.dtype == pred.dtype == torch.float64))
        if len(_exact_compare) < 1024:
            _exact_compare[key] = exact
    return exact


def trimap_region(trimap: torch.Tensor, pred: torch.Tensor, mode: int, lo: float, hi: float, *,
                  loss="this loss", grads="pred_alpha") -> Region:
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
    _checked("trimap", trimap, pred, pred.shape, False, loss, grads, "pred_alpha")  # pred_alpha: (B, 1, H, W)
    if _kernels_compare_exactly(trimap, pred, lo, hi):
        if trimap.dtype in NATIVE_DTYPES:  # the usual trimap: read as stored, one call less
            return Region(trimap.contiguous(), mode, lo, hi)
        return Region(tensor_like("trimap", trimap, pred, check=False), mode, lo, hi)
    if mode == codes.MASK_EQUAL:
        matches = trimap == lo
    else:
        matches = (trimap > lo) & (trimap < hi)
    return Region(matches.contiguous().view(torch.uint8), codes.MASK_EQUAL, 1.0, 1.0)


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
    unknown = (trimap == lo) if mode == codes.MASK_EQUAL else (trimap > lo) & (trimap < hi)
    if bool(unknown.any()):
        return
    low, high = trimap.min().item(), trimap.max().item()
    asked = f"unknown_value={lo:g}" if mode == codes.MASK_EQUAL else f"unknown_range=({lo:g}, {hi:g})"
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

