"""The Deep Image Matting loss: :func:`dim_loss`, the :class:`DIMLoss` module and their op.

``wl * L_alpha + (1 - wl) * L_comp`` over the trimap's unknown region: the
sqrt-epsilon alpha term and the 3-channel compositional term of Xu et al.
(CVPR 2017), the seed's ``gen_loss`` (mattingloss.reference.seed). One op,
``dim_loss_forward`` (csrc/dim_loss.h has the per-pixel math), reads every
input once and returns the per-sample sums and the per-pixel gradients; the
reduction is composed from the sums, and backward scales the stored gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch

from . import _args, _codes, _ops
from ._module import LossModule

Tensor = torch.Tensor

dim_loss_forward = _ops.load_op("dim_loss_forward")


@torch.library.register_fake("mattingloss::dim_loss_forward")
def _dim_loss_forward_fake(pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps,
                           alpha_scale, color_scale, reduction, grad_pred, grad_fg, grad_bg):
    loss, scale, *grads = _ops.scaled_gradient_fake(pred, reduction, fg, bg, grad_pred, grad_fg, grad_bg)
    return loss, pred.new_empty((2,), dtype=loss.dtype), scale, *grads


class DIMLossFunction(_ops.ScaledGradientFunction):
    """Autograd around the op. Forward keeps the per-pixel gradient buffers as
    private intermediates (never returned), so backward may hand them over."""

    @staticmethod
    def forward(ctx, pred, alpha, mask, image, fg, bg, options: tuple):
        # options: the op's 11 other arguments, in its order (mask_mode ... grad_bg). One
        # tuple instead of 11 arguments: apply's own cost grows with the argument count.
        loss, components, scale, g_pred, g_fg, g_bg = dim_loss_forward(pred, alpha, mask, image, fg, bg, *options)
        ctx.mark_non_differentiable(components)
        _ops.save_scaled_gradients(ctx, options[7], scale, {0: g_pred, 4: g_fg, 5: g_bg})
        return loss, components


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


@_args.cached
def make_config(*, wl, eps, reduction, alpha_scale, color_scale, unknown_value, unknown_range,
                uses_weight) -> Config:
    wl = _args.number("wl", wl, low=0.0, high=1.0)
    eps = _args.number("eps", eps, low=0.0, low_open=True)
    reduction = _args.choice("reduction", reduction, _codes.REDUCTIONS)
    alpha_scale = _args.number("alpha_scale", alpha_scale, low=0.0, low_open=True)
    color_scale = _args.number("color_scale", color_scale, low=0.0, low_open=True)
    mode, lo, hi = _args.region_options(unknown_value, unknown_range, uses_weight)
    return Config(wl, eps, reduction, alpha_scale, color_scale, mode, lo, hi)


_LOSS, _GRADS = "DIMLoss", "pred_alpha, fg and bg"


def check_inputs(config: Config, pred_alpha, alpha, trimap, image, fg, bg, weight, check_weight=True):
    """Returns what the op reads: (pred, alpha, mask, image, fg, bg, mask_mode, lo, hi)."""
    if weight is None and image is not None:
        usual = _args.usual(pred_alpha, alpha, trimap, config.mask_lo, config.mask_hi, (image, fg, bg))
        if usual is not None:
            return (*usual, config.mask_mode, config.mask_lo, config.mask_hi)
    pred = _args.prediction(pred_alpha)
    alpha = _args.image_like("alpha", alpha, pred, loss=_LOSS, grads=_GRADS)
    region = _args.read_region(trimap, weight, pred, config.mask_mode, config.mask_lo, config.mask_hi,
                               check_weight, loss=_LOSS, grads=_GRADS)
    if image is None or fg is None or bg is None:
        given = [name for name, t in (("image", image), ("fg", fg), ("bg", bg)) if t is not None]
        if given:
            missing = sorted({"image", "fg", "bg"} - set(given))
            raise ValueError(f"image/fg/bg: the compositional loss needs all three, got {given}, "
                             f"missing {missing}")
    else:
        image, fg, bg = _args.composite_like(pred, image, fg, bg, loss=_LOSS, grads=_GRADS)
    return pred, alpha, region.mask, image, fg, bg, region.mode, region.lo, region.hi


def _run(config: Config, pred_alpha, alpha, trimap, image, fg, bg, weight, return_components,
         check_weight):
    if return_components and config.reduction == _codes.NONE:
        raise ValueError("return_components: needs a scalar reduction ('mean', 'sample' or 'sum'), "
                         "got reduction='none'")
    pred, alpha, mask, image, fg, bg, mode, lo, hi = check_inputs(config, pred_alpha, alpha, trimap, image, fg,
                                                                  bg, weight, check_weight)
    has_comp = image is not None
    grad_on = torch.is_grad_enabled()
    loss, components = DIMLossFunction.apply(pred, alpha, mask, image, fg, bg, (
        mode, lo, hi,
        config.wl if has_comp else 1.0,  # without image/fg/bg the loss is the alpha loss alone
        config.eps, config.alpha_scale, config.color_scale, config.reduction,
        grad_on and pred.requires_grad,
        grad_on and has_comp and fg.requires_grad,
        grad_on and has_comp and bg.requires_grad,
    ))
    if return_components:
        return loss, components[0], components[1]
    return loss


def dim_loss(
    pred_alpha: Tensor,
    alpha: Tensor,
    trimap: Optional[Tensor] = None,
    image: Optional[Tensor] = None,
    fg: Optional[Tensor] = None,
    bg: Optional[Tensor] = None,
    *,
    weight: Optional[Tensor] = None,
    wl: float = 0.5,
    eps: float = 1e-6,
    reduction: str = "mean",
    alpha_scale: float = 255.0,
    color_scale: float = 255.0,
    unknown_value: Optional[float] = None,
    unknown_range: Optional[Tuple[float, float]] = None,
    return_components: bool = False,
    check_weight: bool = True,
) -> Union[Tensor, Tuple[Tensor, Tensor, Tensor]]:
    """The Deep Image Matting loss ``wl * L_alpha + (1 - wl) * L_comp`` over the unknown region.

    Per pixel with weight ``w`` (1 where the trimap is unknown):
    ``L_alpha = w * sqrt((p - alpha/alpha_scale)^2 + eps^2)`` and
    ``L_comp = w * sum_c sqrt((p*fg_c + (1-p)*bg_c - image_c)^2 + eps^2) / color_scale``,
    divided by ``N = sum(w)`` (and by 3 for the comp term). An empty unknown
    region gives 0 and zero gradients. Loss and gradients come from one fused
    pass over the inputs.

    Args:
        pred_alpha: (B,1,H,W) predicted alpha in [0, 1]; float16, bfloat16, float32 or float64.
        alpha: (B,1,H,W) ground-truth alpha in 0..alpha_scale (uint8 or floating).
        trimap: (B,1,H,W) trimap; unknown where it equals ``unknown_value`` (default 128),
            or where ``lo < trimap < hi`` with ``unknown_range=(lo, hi)``.
        image, fg, bg: (B,3,H,W) composite, foreground and background in 0..color_scale.
            Optional together: without them the loss is the alpha loss alone (``wl`` unused).
            fg and bg may require grad (networks that predict them, such as FBA).
        weight: (B,1,H,W) non-negative weights instead of a trimap; ``N = sum(weight)``.
        wl: weight of the alpha loss, in [0, 1].
        eps: the epsilon of the sqrt-epsilon terms (``eps**2`` inside the root), > 0.
        reduction: ``"mean"`` (pooled over the batch, as the paper), ``"sample"`` (mean of
            each sample's own mean; an empty sample counts as 0), ``"sum"`` (not divided
            by N) or ``"none"`` (the (B,1,H,W) map of per-pixel losses
            ``w * (wl * alpha_term + (1 - wl) * comp_term / 3)``).
        alpha_scale, color_scale: full opacity / full intensity: 255 for 0..255 data, 1 for [0, 1].
        return_components: also return the alpha and comp losses (for logging; detached).
        check_weight: check that ``weight`` is non-negative. On CUDA the check reads the
            tensor on the host (one sync); it is skipped under torch.compile and CUDA
            graph capture. Pass False to skip it.

    Returns:
        The loss: a float32 scalar (float64 for float64 pred_alpha), or the map for
        ``reduction="none"``; with ``return_components``, ``(loss, alpha_loss, comp_loss)``.
    """
    config = make_config(wl=wl, eps=eps, reduction=reduction, alpha_scale=alpha_scale,
                               color_scale=color_scale, unknown_value=unknown_value,
                               unknown_range=unknown_range, uses_weight=weight is not None)
    return _run(config, pred_alpha, alpha, trimap, image, fg, bg, weight, return_components, check_weight)


class DIMLoss(LossModule):
    """Module form of :func:`dim_loss`: options at construction, tensors at call.

    ``DIMLoss()(pred_alpha=pred, alpha=alpha, trimap=trimap, image=img, fg=fg, bg=bg)``
    reproduces the Deep Image Matting paper's loss (wl=0.5, eps=1e-6, data in 0..255,
    unknown = 128). See :func:`dim_loss` for every option.
    """

    def __init__(
        self,
        wl: float = 0.5,
        eps: float = 1e-6,
        reduction: str = "mean",
        alpha_scale: float = 255.0,
        color_scale: float = 255.0,
        unknown_value: Optional[float] = None,
        unknown_range: Optional[Tuple[float, float]] = None,
        check_weight: bool = True,
    ):
        super().__init__(make_config, ({"uses_weight": False}, {"uses_weight": True}), check_weight=check_weight,
                         wl=wl, eps=eps, reduction=reduction, alpha_scale=alpha_scale, color_scale=color_scale,
                         unknown_value=unknown_value, unknown_range=unknown_range)

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Optional[Tensor] = None,
                image: Optional[Tensor] = None, fg: Optional[Tensor] = None, bg: Optional[Tensor] = None,
                weight: Optional[Tensor] = None, return_components: bool = False):
        config = self.config(uses_weight=weight is not None)
        return _run(config, pred_alpha, alpha, trimap, image, fg, bg, weight, return_components,
                    self.check_weight)
