"""The Laplacian-pyramid L1 loss: :func:`laplacian_loss` and the :class:`LaplacianLoss` module.

One fused op builds one pyramid of ``d = pred - gt`` (the pyramid is linear, so
``L_i(pred) - L_i(gt) = L_i(d)``), sums the level terms and computes the
gradient w.r.t. pred through the adjoint pyramid in the same call; backward
only scales the stored gradient by grad_output.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch

from . import _args, _codes, _ops
from ._module import LossModule

Tensor = torch.Tensor

laplacian_loss_forward = _ops.load_op("laplacian_loss_forward")

PADDINGS = _codes.PADDINGS
MAX_LEVELS = _codes.LAP_MAX_LEVELS

# Each code base's convention, by the names users know it under.
CONVENTIONS = {
    "rvm": "rvm", "robustvideomatting": "rvm", "vitmatte": "rvm", "diffmatte": "rvm", "matanyone": "rvm",
    "mgmatting": "mgmatting", "matteformer": "mgmatting", "matting-anything": "mgmatting", "mam": "mgmatting",
    "sdmatte": "sdmatte",
}


@torch.library.register_fake("mattingloss::laplacian_loss_forward")
def _laplacian_loss_forward_fake(pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode,
                                 gt_scale, mask_numer, grad_pred, grad_base=None, grad_coef=1.0):
    acc = _ops.accumulation_dtype(pred)
    return (
        pred.new_empty((), dtype=acc),
        pred.new_empty((levels,), dtype=acc),
        pred.new_empty(pred.shape) if grad_pred else pred.new_empty((0,)),
    )


class LaplacianLossFunction(_ops.StoredGradientFunction):
    """Autograd around the op: forward keeps the gradient buffer (a private
    intermediate, never returned), backward scales it by grad_output."""

    @staticmethod
    def forward(ctx, pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode, gt_scale,
                mask_numer, grad_pred):
        loss, level_losses, grad = laplacian_loss_forward(pred, gt, weight, levels, level_weights, padding,
                                                          crop_to_even, weight_mode, gt_scale, mask_numer,
                                                          grad_pred)
        ctx.mark_non_differentiable(level_losses)
        _ops.save_stored_gradients(ctx, grad)
        return loss, level_losses


_CHECKED = dict(loss="the Laplacian loss", grads="pred", like_name="pred")


def _minimum_size(levels, padding, crop):
    """The smallest H (and W) whose pyramid the reference code can build."""
    least = 4 if padding == "reflect" else 2  # reflect pads 2 pixels: needs more than 2 (even: 4)
    return least * 2 ** (levels - 1)


def _check_size(pred, levels, padding, crop):
    H, W = pred.shape[-2:]
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


class Options(NamedTuple):
    """One convention's checked options (make them with `options(...)`)."""

    convention: str
    levels: int
    level_weights: Tuple[float, ...]  # immutable: options() results are shared (_args.cached)
    padding: str
    crop_to_even: bool
    gt_scale: Optional[float]
    size: float


@_args.cached
def options(*, convention="rvm", levels=5, level_weights=None, padding="reflect", crop_to_even=None, gt_scale=None,
            size=512) -> Options:
    """The checked options of one convention (LaplacianLoss checks them at construction);
    None: the convention's default."""
    if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
        raise ValueError(f"convention: expected one of {sorted(CONVENTIONS)}, got {convention!r}")
    convention = CONVENTIONS[convention.lower()]
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels: expected an int in [1, {MAX_LEVELS}], got {levels!r}")
    if level_weights is None:
        divide = 1 if convention == "mgmatting" else levels
        level_weights = [2.0**i / divide for i in range(levels)]
    else:
        if isinstance(level_weights, torch.Tensor) or not isinstance(level_weights, Sequence):
            raise TypeError(f"level_weights: expected a sequence of {levels} numbers, got "
                            f"{type(level_weights).__name__}")
        if len(level_weights) != levels:
            raise ValueError(f"level_weights: expected {levels} numbers (one per level), got {len(level_weights)}")
        level_weights = [_args.number(f"level_weights[{i}]", w) for i, w in enumerate(level_weights)]
    _args.choice("padding", padding, PADDINGS)
    if crop_to_even is None:
        crop_to_even = convention != "mgmatting"
    if not isinstance(crop_to_even, bool):
        raise TypeError(f"crop_to_even: expected a bool or None, got {crop_to_even!r}")
    gt_scale = None if gt_scale is None else _args.number("gt_scale", gt_scale, low=0.0, low_open=True)
    return Options(convention, levels, tuple(float(w) for w in level_weights), padding, crop_to_even, gt_scale,
                   _args.number("size", size, low=0.0, low_open=True))


def _run(opt: Options, pred, gt, weight):
    args = op_arguments(opt, pred, gt, weight)
    loss, _ = LaplacianLossFunction.apply(*args, torch.is_grad_enabled() and args[0].requires_grad)
    return loss


def op_arguments(opt: Options, pred, gt, weight, frames: bool = False, checked: bool = False) -> tuple:
    """The checked tensors and options of one call, in the op's argument order up to
    grad_pred: (pred, gt, weight, levels, level_weights, padding, crop_to_even,
    weight_mode, gt_scale, mask_numer). The presets call the op with these too;
    frames: pred is (B, T, C, H, W), every frame's plane its own image (the op reads
    the leading dimensions so: no reshape). checked: pred and gt are what the call's
    other term's checks returned (the presets check each input once), so only the
    pyramid's own conditions are left to check."""
    if not checked:
        if frames:
            pred = _args.prediction(pred, "pred", "(B, T, C, H, W)", dims=5, channels=None)
        else:
            pred = _args.prediction(pred, "pred", "(B, C, H, W)", channels=None)
        gt = _args.tensor_like("gt", gt, pred, **_CHECKED)
    _check_size(pred, opt.levels, opt.padding, opt.crop_to_even)
    if opt.gt_scale is None and gt.dtype == torch.uint8:
        raise ValueError("gt_scale: gt is uint8, so its full opacity must be given (gt_scale=255 for 0..255 "
                         "mattes); the loss compares pred with gt / gt_scale")
    gt_scale = 1.0 if opt.gt_scale is None else opt.gt_scale
    mode, numer = _codes.LAP_NO_WEIGHT, 0.0
    if opt.convention == "rvm":
        if weight is not None:
            raise ValueError("weight: the 'rvm' convention takes no weight (RVM's loss is over the whole "
                             "image); use convention='mgmatting' (weights after the pyramid) or 'sdmatte' "
                             "(a mask before it)")
    elif opt.convention == "sdmatte":
        if weight is None:
            raise ValueError("weight: the 'sdmatte' convention needs the mask (SDMatte's sample_map), got None")
        mode = _codes.LAP_MASK_BEFORE
        numer = float(pred.shape[0]) * opt.size * opt.size  # SDMatte: B * size * size / sum(mask)
    elif weight is not None:
        mode = _codes.LAP_WEIGHT_AFTER
    if weight is not None:
        weight = _args.tensor_like("weight", weight, pred, **_CHECKED)
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
    opt = options(convention=convention, levels=levels, level_weights=level_weights, padding=padding,
                  crop_to_even=crop_to_even, gt_scale=gt_scale, size=size)
    return _run(opt, pred, gt, weight)


class LaplacianLoss(LossModule):
    """Module form of :func:`laplacian_loss`: options at construction (checked
    then), tensors at call. ``LaplacianLoss()(pred, gt)`` is RVM's ``laplacian_loss``."""

    def __init__(self, *, convention: str = "rvm", levels: int = 5, level_weights: Optional[Sequence[float]] = None,
                 padding: str = "reflect", crop_to_even: Optional[bool] = None, gt_scale: Optional[float] = None,
                 size: float = 512):
        super().__init__(options, convention=convention, levels=levels, level_weights=level_weights,
                         padding=padding, crop_to_even=crop_to_even, gt_scale=gt_scale, size=size)

    def forward(self, pred: Tensor, gt: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return _run(self.config(), pred, gt, weight)

    def extra_repr(self) -> str:
        o = self.config()  # the convention resolved ("matteformer" is "mgmatting")
        return f"convention={o.convention!r}, levels={o.levels}, padding={o.padding!r}, crop_to_even={o.crop_to_even}"
