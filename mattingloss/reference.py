"""Reference implementations shared by the tests and the benchmark.

* :func:`seed_gen_loss` is the seed document's ``gen_loss`` as written (masks
  built on the CPU and copied to the device on every call, a dozen full-size
  temporaries, division by zero on an empty mask). It is the benchmark's
  ``naive`` contender and the oracle for "equal to the seed's own code".
* :func:`dim_loss_reference` is a plain on-device eager PyTorch version of every
  option :func:`mattingloss.dim_loss` takes. It is the tests' oracle and the
  benchmark's ``eager``/``compiled`` contender. It computes in float64 when
  ``pred_alpha`` is float64 and in float32 otherwise, like the kernels.
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


def unknown_weight(trimap=None, weight=None, unknown_value=128.0, unknown_range=None):
    """The per-pixel weight w: 1 where the trimap is unknown (or the given weight)."""
    if weight is not None:
        return weight
    if unknown_range is not None:
        lo, hi = unknown_range
        return ((trimap > lo) & (trimap < hi)).to(trimap.dtype if trimap.is_floating_point() else torch.float32)
    return (trimap == unknown_value).to(torch.float32)


def dim_loss_reference(
    pred_alpha,
    alpha,
    trimap=None,
    image=None,
    fg=None,
    bg=None,
    *,
    weight=None,
    wl=0.5,
    eps=1e-6,
    reduction="mean",
    alpha_scale=255.0,
    color_scale=255.0,
    unknown_value=128.0,
    unknown_range=None,
    return_components=False,
):
    """Eager PyTorch oracle of :func:`mattingloss.dim_loss` (same arguments).

    Differentiable w.r.t. every floating input through autograd.
    """
    acc = torch.float64 if pred_alpha.dtype == torch.float64 else torch.float32
    p = pred_alpha.to(acc)
    a = alpha.to(acc) / alpha_scale
    w = unknown_weight(trimap, weight, unknown_value, unknown_range).to(acc)
    eps2 = eps * eps
    alpha_term = w * torch.sqrt((p - a) ** 2 + eps2)  # (B,1,H,W)
    has_comp = image is not None
    if has_comp:
        F, Bg, I = fg.to(acc), bg.to(acc), image.to(acc)
        comp = p * F + (1.0 - p) * Bg
        comp_term = w * (torch.sqrt((comp - I) ** 2 + eps2) / color_scale).sum(1, keepdim=True)
    else:
        wl = 1.0
        comp_term = torch.zeros_like(alpha_term)
    dims = (1, 2, 3)
    s_alpha, s_comp, n = alpha_term.sum(dims), comp_term.sum(dims), w.sum(dims)
    if reduction == "none":
        out = wl * alpha_term + (1.0 - wl) * comp_term / 3.0
        if return_components:
            raise ValueError("return_components needs a scalar reduction")
        return out
    if reduction == "mean":
        N = n.sum()
        safe = torch.where(N > 0, N, torch.ones_like(N))
        la = torch.where(N > 0, s_alpha.sum() / safe, torch.zeros_like(N))
        lc = torch.where(N > 0, s_comp.sum() / (3.0 * safe), torch.zeros_like(N))
    elif reduction == "sample":
        safe = torch.where(n > 0, n, torch.ones_like(n))
        la = torch.where(n > 0, s_alpha / safe, torch.zeros_like(n)).mean()
        lc = torch.where(n > 0, s_comp / (3.0 * safe), torch.zeros_like(n)).mean()
    elif reduction == "sum":
        la = s_alpha.sum()
        lc = s_comp.sum() / 3.0
    else:
        raise ValueError(f"reduction: got {reduction!r}")
    total = wl * la + (1.0 - wl) * lc
    if return_components:
        return total, la, lc
    return total


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
