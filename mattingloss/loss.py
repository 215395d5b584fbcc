"""The public loss: :func:`dim_loss` and the :class:`DIMLoss` module."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from . import _args, _ops

Tensor = torch.Tensor


def _run(config: _args.Config, pred_alpha, alpha, trimap, image, fg, bg, weight, return_components,
         check_weight):
    if return_components and config.reduction == _ops.NONE:
        raise ValueError("return_components: needs a scalar reduction ('mean', 'sample' or 'sum'), "
                         "got reduction='none'")
    pred, alpha, region, image, fg, bg = _args.check_inputs(config, pred_alpha, alpha, trimap, image, fg, bg,
                                                            weight, check_weight)
    has_comp = image is not None
    grad_on = torch.is_grad_enabled()
    loss, components = _ops.DIMLossFunction.apply(
        pred, alpha, region.mask, image, fg, bg,
        region.mode, region.lo, region.hi,
        config.wl if has_comp else 1.0,  # without image/fg/bg the loss is the alpha loss alone
        config.eps, config.alpha_scale, config.color_scale, config.reduction,
        grad_on and pred.requires_grad,
        grad_on and has_comp and fg.requires_grad,
        grad_on and has_comp and bg.requires_grad,
    )
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
    config = _args.make_config(wl=wl, eps=eps, reduction=reduction, alpha_scale=alpha_scale,
                               color_scale=color_scale, unknown_value=unknown_value,
                               unknown_range=unknown_range, uses_weight=weight is not None)
    return _run(config, pred_alpha, alpha, trimap, image, fg, bg, weight, return_components, check_weight)


class DIMLoss(torch.nn.Module):
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
        super().__init__()
        # Checked now so that a bad option fails at construction, not mid-training.
        self._options = dict(wl=wl, eps=eps, reduction=reduction, alpha_scale=alpha_scale,
                             color_scale=color_scale, unknown_value=unknown_value,
                             unknown_range=unknown_range)
        self._trimap_config = _args.make_config(**self._options, uses_weight=False)
        describes_trimap = unknown_value is not None or unknown_range is not None
        self._weight_config = None if describes_trimap else _args.make_config(**self._options, uses_weight=True)
        self.check_weight = check_weight

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Optional[Tensor] = None,
                image: Optional[Tensor] = None, fg: Optional[Tensor] = None, bg: Optional[Tensor] = None,
                weight: Optional[Tensor] = None, return_components: bool = False):
        config = self._trimap_config
        if weight is not None:
            if self._weight_config is None:  # options that describe a trimap: raises, saying so
                _args.make_config(**self._options, uses_weight=True)
            config = self._weight_config
        return _run(config, pred_alpha, alpha, trimap, image, fg, bg, weight, return_components,
                    self.check_weight)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options.items() if v is not None)
