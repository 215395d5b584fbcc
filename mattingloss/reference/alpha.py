"""The masked alpha losses of the modern matting code bases, each as our own
code computing exactly what its source computes (read, never copied; cited per
function). Inputs as those code bases feed them: predicted and true alpha in
[0, 1], (B, 1, H, W); masks as they build them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .mmagic import mask_reduce_loss

# ViTMatte normalises by a hard-coded 512 x 512 crop, whatever the crop size.
VITMATTE_PIXELS = 262144


def vitmatte_sample_map(trimap, unknown_value=0.5):
    """ViTMatte (hustvl/ViTMatte, modeling/meta_arch/vitmatte.py, ``ViTMatte.forward``):
    a float map, 1 where the trimap (0 / 0.5 / 1 as the model sees it) equals 0.5."""
    sample_map = torch.zeros_like(trimap)
    sample_map[trimap == unknown_value] = 1
    return sample_map


def vitmatte_unknown_l1_loss(sample_map, pred, target):
    """ViTMatte (modeling/criterion/matting_criterion.py, ``MattingCriterion.unknown_l1_loss``):
    the mean absolute difference of the masked prediction and target over every
    pixel, times ``B * 262144 / sum(sample_map)``. An empty sample map gives 0 * inf = NaN."""
    batch = sample_map.shape[0]
    scale = batch * VITMATTE_PIXELS / sample_map.sum()
    return F.l1_loss(pred * sample_map, target * sample_map) * scale


def vitmatte_known_l1_loss(sample_map, pred, target):
    """ViTMatte (same file, ``MattingCriterion.known_l1_loss``): the same over the
    known region, a new map that is 1 exactly where ``sample_map == 0``; the scale
    is 0 when that region is empty."""
    known = torch.zeros_like(sample_map)
    known[sample_map == 0] = 1
    count = known.sum()
    scale = torch.where(count == 0, torch.zeros_like(count), known.shape[0] * VITMATTE_PIXELS / count)
    return F.l1_loss(pred * known, target * known) * scale


def gca_regression_loss(logit, target, weight=None):
    """GCA-Matting (Yaoyi-Li/GCA-Matting, trainer.py, ``Trainer.regression_loss`` with
    loss_type 'l1'; MGMatting and MatteFormer (webtoon/matteformer,
    trainers/trainer.py) have the same function): with a weight, the sum of
    ``|logit * w - target * w|`` over ``sum(w) + 1e-8``; without, the plain mean."""
    if weight is None:
        return F.l1_loss(logit, target)
    return F.l1_loss(logit * weight, target * weight, reduction="sum") / (weight.sum() + 1e-8)


def gca_smooth_l1(logit, target, weight):
    """GCA-Matting (trainer.py, ``Trainer.smooth_l1``): ``sqrt((logit*w - target*w)^2 + 1e-6)``
    summed over every pixel (so each pixel outside the mask adds sqrt(1e-6)) over
    ``sum(w) + 1e-8``."""
    per_pixel = torch.sqrt((logit * weight - target * weight) ** 2 + 1e-6)
    return per_pixel.sum() / (weight.sum() + 1e-8)


def mmagic_l1_loss(pred, target, weight=None, reduction="mean", sample_wise=False):
    """mmagic (open-mmlab/mmagic, mmagic/models/losses/pixelwise_loss.py, ``L1Loss``
    with loss_weight 1, through ``masked_loss`` / ``mask_reduce_loss`` in loss_wrapper.py)."""
    return mask_reduce_loss((pred - target).abs(), weight, reduction, sample_wise)


def mmagic_charbonnier_loss(pred, target, weight=None, reduction="mean", sample_wise=False, eps=1e-12):
    """mmagic (same file, ``CharbonnierLoss``): ``sqrt((pred - target)^2 + eps)`` with eps
    not squared, then the weight and reduction of ``mask_reduce_loss``."""
    return mask_reduce_loss(torch.sqrt((pred - target) ** 2 + eps), weight, reduction, sample_wise)


def rvm_l1_loss(pred, target):
    """RobustVideoMatting (PeterL1n/RobustVideoMatting, train_loss.py, ``matting_loss``'s
    ``pha_l1``) and every other plain ``F.l1_loss(pred, target)``: the mean over every pixel."""
    return F.l1_loss(pred, target)
