"""The Laplacian-pyramid L1 loss: :func:`laplacian_loss` and the :class:`LaplacianLoss` module.

One fused op builds one pyramid of ``d = pred - gt`` (the pyramid is linear, so
``L_i(pred) - L_i(gt) = L_i(d)``), sums the level terms and computes the
gradient w.r.t. pred through the adjoint pyramid in the same call; backward
only scales the stored gradient by grad_output.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from . import _args, _ops

Tensor = torch.Tensor

laplacian_loss_forward = _ops.load_op(
    "mattingloss::laplacian_loss_forward(Tensor pred, Tensor gt, Tensor? weight, int levels, "
    "float[] level_weights, int padding, bool crop_to_even, int weight_mode, float gt_scale, "
    "float mask_numer, bool grad_pred, Tensor? grad_bases=None, Tensor? grad_coefs=None) "
    "-> (Tensor loss, Tensor level_losses, Tensor grad_pred)"
)

# Codes shared with csrc/laplacian.h.
PADDINGS = {"reflect": 0, "replicate": 1}
NO_WEIGHT, WEIGHT_AFTER, MASK_BEFORE = 0, 1, 2
MAX_LEVELS = 16

# Each code base's convention, by the names users know it under.
CONVENTIONS = {
    "rvm": "rvm", "robustvideomatting": "rvm", "vitmatte": "rvm", "diffmatte": "rvm", "matanyone": "rvm",
    "mgmatting": "mgmatting", "matteformer": "mgmatting", "matting-anything": "mgmatting", "mam": "mgmatting",
    "sdmatte": "sdmatte",
}


@torch.library.register_fake("mattingloss::laplacian_loss_forward")
def _laplacian_loss_forward_fake(pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode,
                                 gt_scale, mask_numer, grad_pred, grad_bases=None, grad_coefs=None):
    acc = _ops.accumulation_dtype(pred)
    return (
        pred.new_empty((), dtype=acc),
        pred.new_empty((levels,), dtype=acc),
        pred.new_empty(pred.shape) if grad_pred else pred.new_empty((0,)),
    )


class LaplacianLossFunction(torch.autograd.Function):
    """Autograd around the op: forward keeps the gradient buffer (a private
    intermediate, never returned), backward scales it by grad_output."""

    @staticmethod
    def forward(ctx, pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode, gt_scale,
                mask_numer, grad_pred):
        loss, level_losses, grad = laplacian_loss_forward(pred, gt, weight, levels, level_weights, padding,
                                                          crop_to_even, weight_mode, gt_scale, mask_numer,
                                                          grad_pred)
        ctx.mark_non_differentiable(level_losses)
        ctx.save_for_backward(grad)
        return loss, level_losses

    @staticmethod
    @torch.autograd.function.once_differentiable  # double backward raises instead of being silently wrong
    def backward(ctx, grad_loss, _grad_levels):
        return _ops.stored_gradients(ctx, ctx.saved_tensors, grad_loss, 11)


def _tensor(name, t, pred=None):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if pred is None:
        return t
    if tuple(t.shape) != tuple(pred.shape):
        raise ValueError(f"{name}: expected shape {tuple(pred.shape)} to match pred, got {_args._describe(t)}")
    if t.device != pred.device:
        raise ValueError(f"{name}: expected device {pred.device} (pred's), got {_args._describe(t)}")
    if t.is_complex():
        raise TypeError(f"{name}: expected a real dtype (uint8 or floating), got {_args._describe(t)}")
    if t.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{name}: requires grad, but the Laplacian loss differentiates pred only; "
                         f"pass {name}.detach()")
    if t.dtype == torch.bool:
        t = t.view(torch.uint8) if t.is_contiguous() else t.to(torch.uint8)
    elif t.dtype not in _args.NATIVE_DTYPES:
        t = t.to(torch.float32)  # integer masks or mattes: one converted copy
    return t.contiguous()


def _minimum_size(levels, padding, crop):
    """The smallest H (and W) whose pyramid the reference code can build."""
    least = 4 if padding == "reflect" else 2  # reflect pads 2 pixels: needs more than 2 (even: 4)
    return least * 2 ** (levels - 1)


def _check_size(pred, levels, padding, crop):
    H, W = pred.shape[2:]
    least = _minimum_size(levels, padding, crop)
    why = ("reflect padding needs more than 2 pixels at the coarsest level" if padding == "reflect"
           else "the coarsest level needs at least 2 pixels")
    if not crop:
        step = 2**levels
        if H % step or W % step or H < least or W < least:
            raise ValueError(f"pred: without crop_to_even, {levels} levels need H and W divisible by "
                             f"2**levels = {step} and at least {least} ({why}; odd sizes fail in the "
                             f"reference too), got H={H}, W={W}")
    elif H < least or W < least:
        raise ValueError(f"pred: {levels} levels with {padding} padding need H and W of at least {least} "
                         f"({why}), got H={H}, W={W}")


class _Options:
    """Checked options of one convention (LaplacianLoss checks them at construction)."""

    def __init__(self, convention, levels, level_weights, padding, crop_to_even, gt_scale, size):
        if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
            raise ValueError(f"convention: expected one of {sorted(CONVENTIONS)}, got {convention!r}")
        self.convention = CONVENTIONS[convention.lower()]
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
            raise ValueError(f"levels: expected an int in [1, {MAX_LEVELS}], got {levels!r}")
        self.levels = levels
        if level_weights is None:
            divide = 1 if self.convention == "mgmatting" else levels
            level_weights = [2.0**i / divide for i in range(levels)]
        else:
            if isinstance(level_weights, torch.Tensor) or not isinstance(level_weights, Sequence):
                raise TypeError(f"level_weights: expected a sequence of {levels} numbers, got "
                                f"{type(level_weights).__name__}")
            if len(level_weights) != levels:
                raise ValueError(f"level_weights: expected {levels} numbers (one per level), got "
                                 f"{len(level_weights)}")
            level_weights = [_args._number(f"level_weights[{i}]", w) for i, w in enumerate(level_weights)]
        self.level_weights = [float(w) for w in level_weights]
        if padding not in PADDINGS:
            raise ValueError(f"padding: expected one of {sorted(PADDINGS)}, got {padding!r}")
        self.padding = padding
        if crop_to_even is None:
            crop_to_even = self.convention != "mgmatting"
        if not isinstance(crop_to_even, bool):
            raise TypeError(f"crop_to_even: expected a bool or None, got {crop_to_even!r}")
        self.crop_to_even = crop_to_even
        self.gt_scale = None if gt_scale is None else _args._number("gt_scale", gt_scale, low=0.0, low_open=True)
        self.size = _args._number("size", size, low=0.0, low_open=True)


def _run(opt: _Options, pred, gt, weight):
    args = op_arguments(opt, pred, gt, weight)
    loss, _ = LaplacianLossFunction.apply(*args, torch.is_grad_enabled() and args[0].requires_grad)
    return loss


def op_arguments(opt: _Options, pred, gt, weight) -> tuple:
    """The checked tensors and options of one call, in the op's argument order up to
    grad_pred: (pred, gt, weight, levels, level_weights, padding, crop_to_even,
    weight_mode, gt_scale, mask_numer). The presets call the op with these too."""
    pred = _tensor("pred", pred)
    if pred.dtype not in _args.PRED_DTYPES:
        raise TypeError(f"pred: expected float16, bfloat16, float32 or float64, got {_args._describe(pred)}")
    if pred.dim() != 4:
        raise ValueError(f"pred: expected shape (B, C, H, W), got {_args._describe(pred)}")
    if pred.numel() == 0:
        raise ValueError(f"pred: expected a non-empty batch and image, got {_args._describe(pred)}")
    if pred.device.type not in ("cpu", "cuda"):
        raise ValueError(f"pred: expected a cpu or cuda tensor, got {_args._describe(pred)}")
    if pred.device.type == "cuda" and not _ops._CUDA_KERNELS_BUILT:
        raise ValueError("pred: is on CUDA, but this build of mattingloss has no CUDA kernels; "
                         "rebuild with a CUDA toolkit and a CUDA build of torch (see README)")
    _check_size(pred, opt.levels, opt.padding, opt.crop_to_even)
    pred = pred.contiguous()
    gt = _tensor("gt", gt, pred)
    if opt.gt_scale is None and gt.dtype == torch.uint8:
        raise ValueError("gt_scale: gt is uint8, so its full opacity must be given (gt_scale=255 for 0..255 "
                         "mattes); the loss compares pred with gt / gt_scale")
    gt_scale = 1.0 if opt.gt_scale is None else opt.gt_scale
    mode, numer = NO_WEIGHT, 0.0
    if opt.convention == "rvm":
        if weight is not None:
            raise ValueError("weight: the 'rvm' convention takes no weight (RVM's loss is over the whole "
                             "image); use convention='mgmatting' (weights after the pyramid) or 'sdmatte' "
                             "(a mask before it)")
    elif opt.convention == "sdmatte":
        if weight is None:
            raise ValueError("weight: the 'sdmatte' convention needs the mask (SDMatte's sample_map), got None")
        mode = MASK_BEFORE
        numer = float(pred.shape[0]) * opt.size * opt.size  # SDMatte: B * size * size / sum(mask)
    elif weight is not None:
        mode = WEIGHT_AFTER
    if weight is not None:
        weight = _tensor("weight", weight, pred)
    return (pred, gt, weight, opt.levels, opt.level_weights, PADDINGS[opt.padding], opt.crop_to_even, mode,
            gt_scale, numer)


def laplacian_loss(
    pred: Tensor,
    gt: Tensor,
    weight: Optional[Tensor] = None,
    *,
    convention: str = "rvm",
    levels: int = 5,
    level_weights: Optional[Sequence[float]] = None,
    padding: str = "reflect",
    crop_to_even: Optional[bool] = None,
    gt_scale: Optional[float] = None,
    size: float = 512,
) -> Tensor:
    """The Laplacian-pyramid L1 loss between pred and gt, with its analytic gradient.

    Each level of the pyramid (5x5 Gaussian ``[1, 4, 6, 4, 1]^T [1, 4, 6, 4, 1] / 256``
    after 2 pixels of padding; ``L_i = x_i - up(down(x_i))``, ``x_{i+1} = down(x_i)``)
    contributes ``level_weights[i] * mean|L_i(pred) - L_i(gt)|``. With no options this
    is exactly RobustVideoMatting's ``laplacian_loss(pred, true)`` (also ViTMatte's,
    DiffMatte's and MatAnyone's): 5 levels, reflect padding, each level cropped to even
    size, ``level_weights[i] = 2**i / 5``.

    Conventions (``convention=``):
      * ``"rvm"`` (default): as above; no weight.
      * ``"mgmatting"`` (MGMatting, MatteFormer, Matting-Anything ``lap_loss``): no
        cropping (H and W must be divisible by ``2**levels``), ``level_weights[i] = 2**i``
        (not divided by the level count); with a ``weight`` each level is
        ``sum|w_i L_i(pred) - w_i L_i(gt)| / (sum(w_i) + 1e-8)`` with ``w_i = w[::2**i, ::2**i]``
        summed over the batch.
      * ``"sdmatte"`` (SDMatte's ``unknown_lap_loss``/``known_lap_loss``): the mask
        ``weight`` multiplies pred and gt before the RVM loss, which is then scaled by
        ``B * size * size / sum(weight)`` (0 when the mask is empty).

    Args:
        pred: (B, C, H, W) prediction, float16/bfloat16/float32/float64 (every plane
            its own image, as RVM's reshape to B*C).
        gt: the target, same shape, uint8 or floating, read as stored; compared as
            ``gt / gt_scale``. Must not require grad.
        weight: (B, C, H, W) weights (``"mgmatting"``) or mask (``"sdmatte"``).
        levels, level_weights, padding (``"reflect"`` or ``"replicate"``), crop_to_even:
            override the convention's defaults.
        gt_scale: gt's full opacity: None means gt is in [0, 1] like pred (as every one
            of these code bases), and is required for uint8 gt (255 for 0..255 mattes).
        size: SDMatte's crop size in its scale (512, its default).

    Returns:
        The loss, a float32 scalar (float64 for float64 pred).
    """
    opt = _Options(convention, levels, level_weights, padding, crop_to_even, gt_scale, size)
    return _run(opt, pred, gt, weight)


class LaplacianLoss(torch.nn.Module):
    """Module form of :func:`laplacian_loss`: options at construction (checked
    then), tensors at call. ``LaplacianLoss()(pred, gt)`` is RVM's ``laplacian_loss``."""

    def __init__(self, *, convention: str = "rvm", levels: int = 5, level_weights: Optional[Sequence[float]] = None,
                 padding: str = "reflect", crop_to_even: Optional[bool] = None, gt_scale: Optional[float] = None,
                 size: float = 512):
        super().__init__()
        self._opt = _Options(convention, levels, level_weights, padding, crop_to_even, gt_scale, size)

    def forward(self, pred: Tensor, gt: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return _run(self._opt, pred, gt, weight)

    def extra_repr(self) -> str:
        o = self._opt
        return (f"convention={o.convention!r}, levels={o.levels}, padding={o.padding!r}, "
                f"crop_to_even={o.crop_to_even}")
