"""The Sobel gradient losses of the modern matting code bases, each as our own
code computing exactly what its source computes (read, never copied; cited per
function). F.conv2d is a cross-correlation with zero padding (padding=1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .alpha import VITMATTE_PIXELS

# ViTMatte's kernels; GCA's filter bank is [sobel_y, sobel_x]; mmagic's are the negatives.
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


def _kernel(rows, like):
    return torch.tensor(rows, dtype=like.dtype, device=like.device).view(1, 1, 3, 3)


def vitmatte_gradient_penalty(sample_map, pred, target):
    """ViTMatte (hustvl/ViTMatte, modeling/criterion/matting_criterion.py,
    ``MattingCriterion.loss_gradient_penalty``): Sobel x/y responses of prediction
    and target, the mask applied after the filter, then
    ``s * (mean|dx_p*m - dx_g*m| + mean|dy_p*m - dy_g*m| + 0.01 mean|dx_p*m| + 0.01 mean|dy_p*m|)``
    with means over B*H*W and ``s = B * 262144 / sum(m)``."""
    scale = sample_map.shape[0] * VITMATTE_PIXELS / sample_map.sum()
    kx, ky = _kernel(SOBEL_X, pred), _kernel(SOBEL_Y, pred)
    px, gx = F.conv2d(pred, kx, padding=1), F.conv2d(target, kx, padding=1)
    py, gy = F.conv2d(pred, ky, padding=1), F.conv2d(target, ky, padding=1)
    m = sample_map
    return (F.l1_loss(px * m, gx * m) * scale + F.l1_loss(py * m, gy * m) * scale
            + 0.01 * (px * m).abs().mean() * scale + 0.01 * (py * m).abs().mean() * scale)


def mmagic_gradient_loss(pred, target, weight=None, reduction="mean"):
    """mmagic (open-mmlab/mmagic, mmagic/models/losses/gradient_loss.py, ``GradientLoss``
    with loss_weight 1): its kernels kx = -Sobel_x, ky = -Sobel_y, zero padding, and
    the L1 of each response's difference through ``mask_reduce_loss`` (weight
    multiplied in, 'mean' over ``sum(weight) + 1e-12``), summed."""
    from .alpha import mmagic_l1_loss

    kx = -_kernel(SOBEL_X, target)
    ky = -_kernel(SOBEL_Y, target)
    return (mmagic_l1_loss(F.conv2d(pred, kx, padding=1), F.conv2d(target, kx, padding=1), weight, reduction)
            + mmagic_l1_loss(F.conv2d(pred, ky, padding=1), F.conv2d(target, ky, padding=1), weight, reduction))


def gca_grad_loss(logit, target, weight=None):
    """GCA-Matting (Yaoyi-Li/GCA-Matting, trainer.py, ``Trainer.grad_loss`` with the filter
    bank of utils/util.py ``get_gradfilter``: [Sobel_y, Sobel_x]): the gradient
    magnitude ``sqrt(sum over the two channels of response^2 + 1e-8)`` of each, then
    ``regression_loss`` l1 with the weight (sum over ``sum(w) + 1e-8``)."""
    from .alpha import gca_regression_loss

    bank = torch.cat([_kernel(SOBEL_Y, logit), _kernel(SOBEL_X, logit)], 0)
    gl = F.conv2d(logit, bank, padding=1)
    gt = F.conv2d(target, bank, padding=1)
    ml = torch.sqrt((gl * gl).sum(dim=1, keepdim=True) + 1e-8)
    mt = torch.sqrt((gt * gt).sum(dim=1, keepdim=True) + 1e-8)
    return gca_regression_loss(ml, mt, weight)
