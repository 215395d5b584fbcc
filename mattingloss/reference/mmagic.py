"""mmagic (open-mmlab/mmagic, mmagic/models/losses/pixelwise_loss.py and
loss_wrapper.py): its losses as our own code computing what its source computes."""
from __future__ import annotations

import torch


def mask_reduce_loss(loss, weight, reduction="mean", sample_wise=False):
    """mmagic's ``mask_reduce_loss`` (mmagic/models/losses/loss_wrapper.py): the
    element-wise loss times the weight; "mean" with a weight divides by the weight's
    sum (expanded to the loss's channels) + 1e-12 (per sample with ``sample_wise``,
    then the sum of the per-sample quotients over the batch size); without a weight,
    or for "sum", plain torch reductions."""
    if weight is not None:
        loss = loss * weight
    if weight is None or reduction == "sum":
        return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]
    if reduction == "none":
        return loss
    weight = weight.expand_as(loss)
    if sample_wise:
        per_sample = weight.sum(dim=(1, 2, 3), keepdim=True)
        return (loss / (per_sample + 1e-12)).sum() / weight.shape[0]
    return loss.sum() / (weight.sum() + 1e-12)


def mmagic_charbonnier_losses(pred_alpha, alpha, fg, bg, ori_merged, weight, *, eps=1e-12, sample_wise=False,
                              loss_weight_alpha=0.5, loss_weight_comp=0.5):
    """mmagic's CharbonnierLoss + CharbonnierCompLoss with a weight mask, as its
    documentation and ``mask_reduce_loss`` define them (data in [0, 1], ``eps``
    given already squared, mean = sum(l * w) / (sum(w expanded to l's channels) + 1e-12)).
    Used to test the migration recipe in docs/conventions.md."""

    alpha_loss = mask_reduce_loss(torch.sqrt((pred_alpha - alpha) ** 2 + eps), weight, sample_wise=sample_wise)
    pred_merged = pred_alpha * fg + (1.0 - pred_alpha) * bg
    comp_loss = mask_reduce_loss(torch.sqrt((pred_merged - ori_merged) ** 2 + eps), weight, sample_wise=sample_wise)
    return loss_weight_alpha * alpha_loss + loss_weight_comp * comp_loss
