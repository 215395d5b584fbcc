"""An eager on-device PyTorch oracle of every option of :func:`mattingloss.dim_loss`.

The tests' oracle and the benchmark's ``eager``/``compiled`` DIM contender. It
computes in float64 when ``pred_alpha`` is float64 and in float32 otherwise,
like the kernels; the unknown region is PyTorch's own comparison of the trimap
with ``unknown_value`` (in the dtype torch picks for that comparison).
"""
from __future__ import annotations

import torch


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
