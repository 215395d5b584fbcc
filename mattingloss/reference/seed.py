"""The seed document's own code (../shared/seed/deep-image-matting-losses.md).

:func:`seed_gen_loss` is its ``gen_loss`` as written (masks built on the CPU
and copied to the device on every call, a dozen full-size temporaries,
division by zero on an empty mask): the benchmark's ``naive`` DIM contender
and the oracle for "equal to the seed's own code".
"""
from __future__ import annotations

import torch


def seed_gen_loss(img, alpha, fg, bg, trimap, pred_mattes):
    """The seed's ``gen_loss``: returns ``(alpha_loss, comp_loss)``.

    Only change: ``.cuda()`` became ``.to(pred_mattes.device)`` so that it also
    runs on the CPU; the masks are still built on the CPU on every call.
    """
    device = pred_mattes.device
    wi = torch.zeros(trimap.shape)
    wi[trimap.cpu() == 128] = 1.0
    t_wi = wi.to(device)
    t3_wi = torch.cat((wi, wi, wi), 1).to(device)
    unknown_region_size = t_wi.sum()
    assert t_wi.shape == pred_mattes.shape
    assert t3_wi.shape == img.shape
    alpha = alpha / 255.0
    alpha_loss = torch.sqrt((pred_mattes - alpha) ** 2 + 1e-12)
    alpha_loss = (alpha_loss * t_wi).sum() / unknown_region_size
    pred_mattes_3 = torch.cat((pred_mattes, pred_mattes, pred_mattes), 1)
    comp = pred_mattes_3 * fg + (1.0 - pred_mattes_3) * bg
    comp_loss = torch.sqrt((comp - img) ** 2 + 1e-12) / 255.0
    comp_loss = (comp_loss * t3_wi).sum() / unknown_region_size / 3.0
    return alpha_loss, comp_loss


def seed_total_loss(img, alpha, fg, bg, trimap, pred_mattes, wl=0.5):
    """The seed's total: ``alpha_loss * wl + comp_loss * (1 - wl)``."""
    alpha_loss, comp_loss = seed_gen_loss(img, alpha, fg, bg, trimap, pred_mattes)
    return alpha_loss * wl + comp_loss * (1.0 - wl)
