"""The Sobel gradient loss in each code base's convention, fused: Sobel
responses of the prediction and the ground truth (F.conv2d's
cross-correlation, zero padding), the mask applied after the filter, and the
gradient through the adjoint (transposed) stencil, all in the one pass of
``alpha_sobel_forward`` (see :mod:`mattingloss.alpha`).

===========================================  =============================================
code base (function)                         call
===========================================  =============================================
ViTMatte ``loss_gradient_penalty``           ``gradient_loss(p, g, trimap)`` (style="vitmatte", trimap == 0.5)
mmagic ``GradientLoss`` (weight)             ``gradient_loss(p, g, weight=w, style="mmagic")``
mmagic ``GradientLoss`` (no weight)          ``gradient_loss(p, g, style="mmagic")``
GCA-Matting ``grad_loss`` (magnitude)        ``gradient_loss(p, g, weight=w, style="gca")``
===========================================  =============================================

Styles:

* ``"vitmatte"``: ``s * (mean|Sx(p)*m - Sx(g)*m| + mean|Sy(p)*m - Sy(g)*m| +
  penalty * (mean|Sx(p)*m| + mean|Sy(p)*m|))``, means over B*H*W, ``s = B * 262144 / sum(m)``
  (``reduction="vitmatte"``), penalty 0.01.
* ``"mmagic"``: ``sum(w |Sx(p) - Sx(g)|) / (sum(w) + 1e-12)`` plus the same for y
  (its kernels are the negatives of ViTMatte's: the L1 does not see the sign);
  without a weight, the plain means.
* ``"gca"``: ``M = sqrt(Sy^2 + Sx^2 + 1e-8)`` of each, then ``sum|M(p)*w - M(g)*w| / (sum(w) + 1e-8)``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import _args, _codes
from ._module import LossModule
from .alpha import Norm, Spec, _norm, make_spec, run

Tensor = torch.Tensor

STYLES = ("vitmatte", "mmagic", "gca")
# The trimap value each code base marks unknown: ViTMatte's 0 / 0.5 / 1 trimap,
# GCA's class indices 0 / 1 / 2; mmagic takes weights (a trimap defaults to DIM's 128).
_UNKNOWN_VALUE = {"vitmatte": 0.5, "mmagic": 128.0, "gca": 1.0}


@_args.cached
def _gradient_spec(style, reduction, guard, penalty, grad_eps, mask_in_diff, alpha_scale, unknown_value,
                   unknown_range, has_mask, weight_given) -> Spec:
    _args.choice("style", style, STYLES)
    if style == "vitmatte":
        default = ("vitmatte", 0.0, 0.01, True)
    elif style == "mmagic":
        default = ("mean", 1e-12 if has_mask else 0.0, 0.0, False)
    else:
        default = ("mean", 1e-8 if has_mask else 0.0, 0.0, True)
    reduction = default[0] if reduction is None else reduction
    guard = default[1] if guard is None else guard
    penalty = default[2] if penalty is None else _args.number("penalty", penalty, low=0.0)
    if style == "gca" and penalty != 0.0:
        raise ValueError(f"penalty: the 'gca' style has no penalty term, got {penalty}")
    mask_in_diff = default[3] if mask_in_diff is None else _args.boolean("mask_in_diff", mask_in_diff)
    grad_eps = _args.number("grad_eps", grad_eps, low=0.0, low_open=True)
    return make_spec(no_mask=None if has_mask else "no trimap was given", unknown_value=unknown_value,
                     unknown_range=unknown_range, weight_given=weight_given, default_value=_UNKNOWN_VALUE[style],
                     alpha_scale=alpha_scale, mask_in_diff=mask_in_diff,
                     sobel=_codes.SOBEL_MAGNITUDE if style == "gca" else _codes.SOBEL_DIFF,
                     sobel_norm=_norm(reduction, guard), penalty=penalty, grad_eps=grad_eps)


def gradient_loss(
    pred_alpha: Tensor,
    alpha: Tensor,
    trimap: Optional[Tensor] = None,
    *,
    weight: Optional[Tensor] = None,
    style: str = "vitmatte",
    reduction: Optional[str] = None,
    guard: Optional[float] = None,
    penalty: Optional[float] = None,
    grad_eps: float = 1e-8,
    mask_in_diff: Optional[bool] = None,
    alpha_scale: float = 1.0,
    unknown_value: Optional[float] = None,
    unknown_range: Optional[Tuple[float, float]] = None,
    check_weight: bool = True,
) -> Tensor:
    """The Sobel gradient loss of one code base (``style``), from one fused pass.

    Args:
        pred_alpha: (B,1,H,W) predicted alpha; float16, bfloat16, float32 or float64.
            Any H, W >= 1 (the stencil is zero-padded as F.conv2d(padding=1)).
        alpha: (B,1,H,W) ground truth in 0..alpha_scale (uint8 or floating).
        trimap / weight: the mask, applied after the filter; trimap == unknown_value
            (default: the style's convention, ViTMatte 0.5, GCA 1, mmagic 128) or
            ``unknown_range``. Neither: every pixel.
        style: ``"vitmatte"``, ``"mmagic"`` or ``"gca"`` (see the module's docstring).
        reduction, guard: override the style's normalisation (see :func:`alpha_loss`).
        penalty: ViTMatte's weight of ``mean|S(p)*m|`` (0.01); 0 for the other styles.
        grad_eps: inside GCA's magnitude root (1e-8).
        mask_in_diff: ``|a*m - b*m|`` (ViTMatte, GCA) or ``m|a - b|`` (mmagic); equal up to rounding.
        check_weight: raise on a negative ``weight`` (see :func:`mattingloss.alpha_loss`).
    """
    spec = _gradient_spec(style, reduction, guard, penalty, grad_eps, mask_in_diff, alpha_scale, unknown_value,
                          unknown_range, trimap is not None or weight is not None, weight is not None)
    return run(spec, pred_alpha, alpha, trimap, weight, check_weight)[0]


class GradientLoss(LossModule):
    """Module form of :func:`gradient_loss`: options at construction, tensors at call."""

    def __init__(self, style: str = "vitmatte", reduction: Optional[str] = None, guard: Optional[float] = None,
                 penalty: Optional[float] = None, grad_eps: float = 1e-8, mask_in_diff: Optional[bool] = None,
                 alpha_scale: float = 1.0, unknown_value: Optional[float] = None,
                 unknown_range: Optional[Tuple[float, float]] = None, check_weight: bool = True):
        variants = ({"has_mask": True, "weight_given": False}, {"has_mask": True, "weight_given": True},
                    {"has_mask": False, "weight_given": False})
        super().__init__(_gradient_spec, variants, check_weight=check_weight, style=style, reduction=reduction,
                         guard=guard, penalty=penalty, grad_eps=grad_eps, mask_in_diff=mask_in_diff,
                         alpha_scale=alpha_scale, unknown_value=unknown_value, unknown_range=unknown_range)

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Optional[Tensor] = None,
                weight: Optional[Tensor] = None) -> Tensor:
        spec = self.config(has_mask=trimap is not None or weight is not None, weight_given=weight is not None)
        return run(spec, pred_alpha, alpha, trimap, weight, self.check_weight)[0]


__all__ = ["gradient_loss", "GradientLoss", "Norm"]
