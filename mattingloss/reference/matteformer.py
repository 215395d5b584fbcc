"""MatteFormer's training losses for one prediction head (webtoon/matteformer,
``trainers/trainer.py``, ``Trainer.train``; the same trainer code in MGMatting and
Matting-Anything), as our own code: ``rec`` = ``regression_loss`` (L1 over
``sum(w) + 1e-8``), ``comp`` = ``composition_loss`` (the 3-channel L1 of the
composite over the same 1-channel ``sum(w) + 1e-8``), ``lap`` = ``lap_loss``, each
times its weight (``rec_weight``, ``comp_weight``, ``lap_weight``: 1 in
``config/MatteFormer_Composition1k.toml``); the trainer adds the three.
"""
from __future__ import annotations

from .alpha import gca_regression_loss
from .composition import gca_composition_loss
from .laplacian import mgmatting_lap_loss


def matteformer_losses(pred, alpha, weight, image=None, fg=None, bg=None, *, rec_weight=1.0, comp_weight=1.0,
                       lap_weight=1.0):
    """``{"rec", "comp" (with image/fg/bg), "lap", "total"}`` for one head's prediction."""
    losses = {"rec": gca_regression_loss(pred, alpha, weight) * rec_weight}
    if image is not None:
        losses["comp"] = gca_composition_loss(pred, fg, bg, image, weight) * comp_weight
    losses["lap"] = mgmatting_lap_loss(pred, alpha, weight) * lap_weight
    losses["total"] = sum(losses.values())
    return losses
