"""ViTMatte's training objective (hustvl/ViTMatte), as our own code.

``modeling/meta_arch/vitmatte.py`` (``ViTMatte.forward``) builds
``sample_map = (trimap == 0.5)`` and calls ``MattingCriterion`` of
``modeling/criterion/matting_criterion.py`` with the four losses of
``configs/common/model.py``; ``engine/mattingtrainer.py`` trains on their sum.
Each term is the per-term reference of :mod:`.alpha`, :mod:`.gradient` and
:mod:`.laplacian` (RVM's ``laplacian_loss``, copied unchanged into ViTMatte).
"""
from __future__ import annotations

from .alpha import vitmatte_known_l1_loss, vitmatte_sample_map, vitmatte_unknown_l1_loss
from .gradient import vitmatte_gradient_penalty
from .laplacian import rvm_laplacian_loss


def vitmatte_criterion(pred, alpha, trimap):
    """The loss dict of ``MattingCriterion(losses=['unknown_l1_loss', 'known_l1_loss',
    'loss_pha_laplacian', 'loss_gradient_penalty'])`` plus ``total``, their sum."""
    sample_map = vitmatte_sample_map(trimap)
    losses = {
        "unknown_l1_loss": vitmatte_unknown_l1_loss(sample_map, pred, alpha),
        "known_l1_loss": vitmatte_known_l1_loss(sample_map, pred, alpha),
        "loss_pha_laplacian": rvm_laplacian_loss(pred, alpha),
        "loss_gradient_penalty": vitmatte_gradient_penalty(sample_map, pred, alpha),
    }
    losses["total"] = sum(losses.values())
    return losses
