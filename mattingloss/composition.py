"""The composition loss: :func:`composition_loss` and the :class:`CompositionLoss` module.

``rho(p * fg + (1 - p) * bg - image)`` per pixel and channel, the network's
alpha composited with the ground-truth foreground and background against the
real image, with rho = L1, Charbonnier or L2, computed with its analytic
gradients w.r.t. ``pred_alpha``, ``fg`` and ``bg`` in one fused pass.

Code base -> the call that gives its numbers (tested to 1e-10 in float64, loss and
gradients, against mattingloss.reference.composition):

================================================  =========================================================
mmagic ``L1CompositionLoss(w)(p, fg, bg, m, wt)``   ``w * composition_loss(p, m, fg, bg, weight=wt, guard=1e-12)``
mmagic ``MSECompositionLoss``                       the same with ``rho="l2"``
mmagic ``CharbonnierCompLoss(eps=e)``               the same with ``rho="charbonnier", eps=sqrt(e)`` (1e-12 -> 1e-6)
mmagic ``sample_wise=True``                         ``reduction="sample"`` (same guard)
mmagic ``reduction="sum"`` / ``"none"``             ``reduction="sum"`` / ``"none"`` (ours summed over channels)
mmagic without ``weight``                           no trimap and no weight (every pixel; ``guard`` unused)
GCA-Matting / MGMatting / MatteFormer               ``composition_loss(p, image, fg, bg, trimap, unknown_value=1,
``composition_loss(p, fg, bg, image, w)``           count_channels=False, guard=1e-8)`` (class-index trimap;
                                                    ``weight=w`` for a given weight)
MatteFormer / MGMatting os8 (``weight[...] = 1``)   no trimap and no weight, ``count_channels=False, guard=1e-8``
the same from uint8 data                            ``color_scale=[255 * s for s in (0.229, 0.224, 0.225)]``
DIM (seed ``gen_loss`` comp term, 0..255 data)      ``rho="charbonnier", eps=1e-6, color_scale=255`` with the trimap
================================================  =========================================================

GCA's family writes ``|merged * w - image * w|``: for L1 and non-negative weights
that is ``w * |d|``, the same numbers (their L2 form would square a soft weight; no
code base uses it for composition, so it is not reproduced).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch

from . import _args, _codes, _ops
from ._module import LossModule

Tensor = torch.Tensor

_composition_loss_forward = _ops.load_op("composition_loss_forward")
_LOSS, _GRADS = "CompositionLoss", "pred_alpha, fg and bg"


@torch.library.register_fake("mattingloss::composition_loss_forward")
def _composition_loss_forward_fake(pred, image, fg, bg, mask, mask_mode, mask_lo, mask_hi, rho, eps, color_scale,
                                   count_channels, guard, reduction, grad_pred, grad_fg, grad_bg):
    return _ops.scaled_gradient_fake(pred, reduction, fg, bg, grad_pred, grad_fg, grad_bg)


class CompositionLossFunction(_ops.ScaledGradientFunction):
    """Autograd around the op: forward keeps the per-pixel gradients as private
    intermediates, backward scales them (_ops.ScaledGradientFunction)."""

    @staticmethod
    def forward(ctx, pred, image, fg, bg, mask, options: tuple):
        # options: the op's 12 other arguments, in its order (mask_mode ... grad_bg), in one
        # tuple: apply's own cost grows with the argument count (as DIMLossFunction).
        loss, scale, g_pred, g_fg, g_bg = _composition_loss_forward(pred, image, fg, bg, mask, *options)
        # "none": grad_output is the (B,1,H,W) map, broadcast over fg/bg's channels
        _ops.save_scaled_gradients(ctx, options[8], scale, {0: g_pred, 2: g_fg, 3: g_bg})
        return loss


@dataclass(frozen=True)
class Config:
    """The options, checked once (CompositionLoss checks them at construction)."""

    rho: int
    eps: float
    reduction: int
    count_channels: bool
    guard: float
    color_scale: List[float]
    mask_mode: int
    mask_lo: float
    mask_hi: float
    describes_trimap: bool


@_args.cached
def make_config(*, rho, eps, reduction, count_channels, guard, color_scale, unknown_value, unknown_range,
                uses_weight) -> Config:
    rho = _args.choice("rho", rho, _codes.RHOS)
    eps = _args.number("eps", eps, low=0.0, low_open=True)
    reduction = _args.choice("reduction", reduction, _codes.REDUCTIONS)
    count_channels = _args.boolean("count_channels", count_channels)
    guard = _args.number("guard", guard, low=0.0)
    if isinstance(color_scale, (tuple, list)):
        if len(color_scale) != 3:
            raise ValueError(f"color_scale: expected a number or 3 numbers (one per channel), got {color_scale!r}")
        scales = [_args.number(f"color_scale[{c}]", s, low=0.0, low_open=True) for c, s in enumerate(color_scale)]
    else:
        scales = [_args.number("color_scale", color_scale, low=0.0, low_open=True)] * 3
    mode, lo, hi = _args.region_options(unknown_value, unknown_range, uses_weight)
    return Config(rho, eps, reduction, count_channels, guard, scales, mode, lo, hi,
                  unknown_value is not None or unknown_range is not None)


def _run(config: Config, pred_alpha, image, fg, bg, trimap, weight, check_weight):
    pred = _args.prediction(pred_alpha)
    image, fg, bg = _args.composite_like(pred, image, fg, bg, loss=_LOSS, grads=_GRADS)
    if trimap is None and weight is None and config.describes_trimap:
        raise ValueError("unknown_value/unknown_range: they describe a trimap, but no trimap was given "
                         "(without trimap or weight every pixel counts); pass the trimap, or drop them")
    region = _args.read_region(trimap, weight, pred, config.mask_mode, config.mask_lo, config.mask_hi, check_weight,
                               optional=True, loss=_LOSS, grads=_GRADS)
    grad_on = torch.is_grad_enabled()
    return CompositionLossFunction.apply(pred, image, fg, bg, region.mask, (
        region.mode, region.lo, region.hi, config.rho, config.eps, config.color_scale, config.count_channels,
        config.guard, config.reduction,
        grad_on and pred.requires_grad, grad_on and fg.requires_grad, grad_on and bg.requires_grad,
    ))


def composition_loss(
    pred_alpha: Tensor,
    image: Tensor,
    fg: Tensor,
    bg: Tensor,
    trimap: Optional[Tensor] = None,
    *,
    weight: Optional[Tensor] = None,
    rho: str = "l1",
    eps: float = 1e-6,
    reduction: str = "mean",
    count_channels: bool = True,
    guard: float = 0.0,
    color_scale: Union[float, Sequence[float]] = 1.0,
    unknown_value: Optional[float] = None,
    unknown_range: Optional[Tuple[float, float]] = None,
    check_weight: bool = True,
) -> Tensor:
    """The composition loss over the unknown region (or every pixel).

    Per pixel with weight ``w``: ``w * sum_c rho(p*fg_c + (1-p)*bg_c - image_c) / color_scale_c``
    with ``rho(d) = |d|`` (``"l1"``), ``sqrt(d^2 + eps^2)`` (``"charbonnier"``) or ``d^2``
    (``"l2"``). ``"mean"`` divides the sum by ``k * sum(w) + guard``, ``k = 3`` with
    ``count_channels`` (mmagic, DIM: a mean over pixels and channels) else 1 (GCA-Matting,
    MGMatting, MatteFormer). An empty mask gives 0 and zero gradients (also with guard 0).
    L1's derivative at 0 is 0, as torch's. Colours may be in any range (0..255, [0, 1],
    ImageNet-normalised): nothing is clamped.

    Args:
        pred_alpha: (B,1,H,W) predicted alpha; float16, bfloat16, float32 or float64.
        image, fg, bg: (B,3,H,W) composite, foreground, background (uint8 or floating, read as
            stored). fg and bg may require grad.
        trimap: (B,1,H,W); unknown where ``trimap == unknown_value`` (default 128) or
            ``lo < trimap < hi`` with ``unknown_range=(lo, hi)``, exactly as PyTorch compares
            them for the trimap's dtype (see docs/api.md, trimap conventions).
        weight: (B,1,H,W) non-negative weights instead of a trimap. With neither, every pixel
            counts (``w = 1``; the mask is not read).
        rho: ``"l1"``, ``"charbonnier"`` or ``"l2"``.
        eps: Charbonnier's epsilon; ``eps**2`` goes inside the root (mmagic's ``eps=1e-12`` is
            ``eps=1e-6``). Unused by L1 and L2.
        reduction: ``"mean"`` (pooled over the batch), ``"sample"`` (the mean over samples of
            each sample's own mean, an empty sample counting 0: mmagic's ``sample_wise``),
            ``"sum"`` or ``"none"`` (the (B,1,H,W) map of per-pixel terms, summed over channels).
        count_channels: the mean's denominator counts the 3 channels (``3 * sum(w)``) or not.
        guard: added to the mean's denominator: 1e-8 (GCA family), 1e-12 (mmagic), 0.
        color_scale: divides each channel's rho (a number, or one per channel): 255 reproduces
            DIM on 0..255 data; ``[255 * s for s in std]`` gives, from uint8 data, GCA's L1 on
            ImageNet-normalised colours.
        check_weight: check that ``weight`` is non-negative (reads it on the host; skipped
            under torch.compile and CUDA graph capture).

    Returns:
        A float32 scalar (float64 for float64 pred_alpha), or the map for ``reduction="none"``.
    """
    config = make_config(rho=rho, eps=eps, reduction=reduction, count_channels=count_channels, guard=guard,
                         color_scale=color_scale, unknown_value=unknown_value, unknown_range=unknown_range,
                         uses_weight=weight is not None)
    return _run(config, pred_alpha, image, fg, bg, trimap, weight, check_weight)


class CompositionLoss(LossModule):
    """Module form of :func:`composition_loss`: options at construction, tensors at call.

    ``CompositionLoss(count_channels=False, guard=1e-8)(pred, image, fg, bg, trimap, unknown_value=1)``
    is GCA-Matting's composition loss; see :func:`composition_loss` for every option.
    """

    def __init__(
        self,
        rho: str = "l1",
        eps: float = 1e-6,
        reduction: str = "mean",
        count_channels: bool = True,
        guard: float = 0.0,
        color_scale: Union[float, Sequence[float]] = 1.0,
        unknown_value: Optional[float] = None,
        unknown_range: Optional[Tuple[float, float]] = None,
        check_weight: bool = True,
    ):
        super().__init__(make_config, ({"uses_weight": False}, {"uses_weight": True}), check_weight=check_weight,
                         rho=rho, eps=eps, reduction=reduction, count_channels=count_channels, guard=guard,
                         color_scale=color_scale, unknown_value=unknown_value, unknown_range=unknown_range)

    def forward(self, pred_alpha: Tensor, image: Tensor, fg: Tensor, bg: Tensor, trimap: Optional[Tensor] = None,
                weight: Optional[Tensor] = None) -> Tensor:
        return _run(self.config(uses_weight=weight is not None), pred_alpha, image, fg, bg, trimap, weight,
                    self.check_weight)
