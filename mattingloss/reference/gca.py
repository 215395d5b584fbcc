"""GCA-Matting's training losses (Yaoyi-Li/GCA-Matting, ``trainer.py``,
``Trainer.train`` with the weights of ``utils/config.py``: ``rec_weight`` 1 and
``comp_weight``, ``smooth_l1_weight``, ``grad_weight`` 0; its configs keep
them), as our own code: each term the per-term reference of :mod:`.alpha`,
:mod:`.composition` or :mod:`.gradient` times its weight, the terms with weight
0 left out, ``total`` their sum. (Its Gabor loss is not reproduced.)
"""
from __future__ import annotations

from .alpha import gca_regression_loss, gca_smooth_l1
from .composition import gca_composition_loss
from .gradient import gca_grad_loss


def gca_losses(pred, alpha, weight, image=None, fg=None, bg=None, *, rec_weight=1.0, comp_weight=0.0,
               smooth_l1_weight=0.0, grad_weight=0.0):
    losses = {}
    if rec_weight > 0:
        losses["rec"] = gca_regression_loss(pred, alpha, weight) * rec_weight
    if comp_weight > 0:
        losses["comp"] = gca_composition_loss(pred, fg, bg, image, weight) * comp_weight
    if smooth_l1_weight > 0:
        losses["smooth_l1"] = gca_smooth_l1(pred, alpha, weight) * smooth_l1_weight
    if grad_weight > 0:
        losses["grad"] = gca_grad_loss(pred, alpha, weight) * grad_weight
    losses["total"] = sum(losses.values())
    return losses
