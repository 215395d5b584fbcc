"""Composition losses as each code base computes them: our own code, written from
reading their sources (cited per function), for the tests and the benchmark.

All take what the code base's loss takes, in its argument order, and are
differentiable through autograd (torch's abs backward: 0 at the kink).
:func:`composition_reference` is an eager oracle of every option of
:func:`mattingloss.composition_loss`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .mmagic import mask_reduce_loss


def _mmagic_composition(rho, pred_alpha, fg, bg, ori_merged, weight, loss_weight, reduction, sample_wise):
    """The shared body of mmagic's three composition losses
    (mmagic/models/losses/composition_loss.py): the composite
    ``pred_alpha * fg + (1 - pred_alpha) * bg``, the weight expanded to 3 channels,
    the elementwise loss through ``mask_reduce_loss``, times ``loss_weight``."""
    pred_merged = pred_alpha * fg + (1.0 - pred_alpha) * bg
    if weight is not None:
        weight = weight.expand(-1, 3, -1, -1)
    return loss_weight * mask_reduce_loss(rho(pred_merged, ori_merged), weight, reduction, sample_wise)


def mmagic_l1_composition_loss(pred_alpha, fg, bg, ori_merged, weight=None, *, loss_weight=1.0, reduction="mean",
                               sample_wise=False):
    """open-mmlab/mmagic, mmagic/models/losses/composition_loss.py, ``L1CompositionLoss.forward``
    (elementwise ``F.l1_loss(..., reduction='none')`` from pixelwise_loss.py ``l1_loss``)."""
    return _mmagic_composition(lambda a, b: F.l1_loss(a, b, reduction="none"), pred_alpha, fg, bg, ori_merged,
                               weight, loss_weight, reduction, sample_wise)


def mmagic_mse_composition_loss(pred_alpha, fg, bg, ori_merged, weight=None, *, loss_weight=1.0, reduction="mean",
                                sample_wise=False):
    """open-mmlab/mmagic, mmagic/models/losses/composition_loss.py, ``MSECompositionLoss.forward``
    (elementwise ``F.mse_loss(..., reduction='none')`` from pixelwise_loss.py ``mse_loss``)."""
    return _mmagic_composition(lambda a, b: F.mse_loss(a, b, reduction="none"), pred_alpha, fg, bg, ori_merged,
                               weight, loss_weight, reduction, sample_wise)


def mmagic_charbonnier_comp_loss(pred_alpha, fg, bg, ori_merged, weight=None, *, loss_weight=1.0, reduction="mean",
                                 sample_wise=False, eps=1e-12):
    """open-mmlab/mmagic, mmagic/models/losses/composition_loss.py, ``CharbonnierCompLoss.forward``
    (pixelwise_loss.py ``charbonnier_loss``: ``sqrt((pred - target)**2 + eps)``, eps not squared)."""
    return _mmagic_composition(lambda a, b: torch.sqrt((a - b) ** 2 + eps), pred_alpha, fg, bg, ori_merged,
                               weight, loss_weight, reduction, sample_wise)


def gca_composition_loss(alpha, fg, bg, image, weight=None, loss_type="l1"):
    """``Trainer.composition_loss`` with ``Trainer.regression_loss``, identical in
    Yaoyi-Li/GCA-Matting trainer.py, yucornetto/MGMatting code-base/trainer.py and
    webtoon/matteformer trainers/trainer.py: ``merged = fg * alpha + bg * (1 - alpha)``;
    with a (B,1,H,W) weight, ``F.l1_loss(merged * weight, image * weight, reduction='sum')``
    (or ``F.mse_loss`` for ``loss_type='l2'``) divided by ``torch.sum(weight) + 1e-8`` (the
    1-channel sum: the 3 channels are summed, not averaged); without a weight, the plain
    ``F.l1_loss`` / ``F.mse_loss`` mean. Their fg, bg and image are ImageNet-normalised
    (``(x / 255 - mean) / std`` in their data loaders); this function takes them as given.
    """
    merged = fg * alpha + bg * (1 - alpha)
    loss = F.l1_loss if loss_type == "l1" else F.mse_loss
    if weight is None:
        return loss(merged, image)
    return loss(merged * weight, image * weight, reduction="sum") / (torch.sum(weight) + 1e-8)


def composition_reference(pred_alpha, image, fg, bg, trimap=None, *, weight=None, rho="l1", eps=1e-6,
                          reduction="mean", count_channels=True, guard=0.0, color_scale=1.0, unknown_value=128.0,
                          unknown_range=None):
    """Eager oracle of :func:`mattingloss.composition_loss` (same arguments), in float64
    for float64 pred_alpha and float32 otherwise. The unknown region is torch's own
    comparison of the trimap as given (in ``torch.result_type(trimap, value)``)."""
    acc = torch.float64 if pred_alpha.dtype == torch.float64 else torch.float32
    if weight is not None:
        w = weight.to(acc)
    elif trimap is not None:
        if unknown_range is not None:
            w = ((trimap > unknown_range[0]) & (trimap < unknown_range[1])).to(acc)
        else:
            w = (trimap == unknown_value).to(acc)
    else:
        w = torch.ones_like(pred_alpha, dtype=acc)
    p, I, Fg, Bg = pred_alpha.to(acc), image.to(acc), fg.to(acc), bg.to(acc)
    d = p * Fg + (1.0 - p) * Bg - I
    if rho == "l1":
        r = d.abs()
    elif rho == "charbonnier":
        r = torch.sqrt(d * d + eps * eps)
    else:
        r = d * d
    scale = torch.as_tensor(color_scale, dtype=acc, device=p.device).reshape(-1, 1, 1) if not isinstance(
        color_scale, (int, float)) else color_scale
    term = w * (r / scale).sum(1, keepdim=True)
    if reduction == "none":
        return term
    k = 3.0 if count_channels else 1.0
    if reduction == "sum":
        return term.sum()
    if reduction == "mean":
        den = k * w.sum() + guard
        return torch.where(den > 0, term.sum() / torch.where(den > 0, den, 1.0), 0.0)
    den = k * w.sum((1, 2, 3)) + guard
    per_sample = torch.where(den > 0, term.sum((1, 2, 3)) / torch.where(den > 0, den, 1.0), 0.0)
    return per_sample.mean()
