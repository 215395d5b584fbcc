"""mmagic (open-mmlab/mmagic, mmagic/models/losses/pixelwise_loss.py and
loss_wrapper.py): its losses as our own code computing what its source computes."""
from __future__ import annotations

import torch


def mmagic_charbonnier_losses(pred_alpha, alpha, fg, bg, ori_merged, weight, *, eps=1e-12, sample_wise=False,
                              loss_weight_alpha=0.5, loss_weight_comp=0.5):
    """mmagic's CharbonnierLoss + CharbonnierCompLoss with a weight mask, as its
    documentation and ``mask_reduce_loss`` define them (data in [0, 1], ``eps``
    given already squared, mean = sum(l * w) / (sum(w expanded to l's channels) + 1e-12)).
    Used to test the migration recipe in the README."""

    def mask_reduce(loss, w):
        w = w.expand_as(loss)
        loss = loss * w
        if sample_wise:
            per_sample = w.sum(dim=(1, 2, 3), keepdim=True)
            return (loss / (per_sample + 1e-12)).sum() / w.size(0)
        return loss.sum() / (w.sum() + 1e-12)

    alpha_loss = mask_reduce(torch.sqrt((pred_alpha - alpha) ** 2 + eps), weight)
    pred_merged = pred_alpha * fg + (1.0 - pred_alpha) * bg
    comp_loss = mask_reduce(torch.sqrt((pred_merged - ori_merged) ** 2 + eps), weight)
    return loss_weight_alpha * alpha_loss + loss_weight_comp * comp_loss
