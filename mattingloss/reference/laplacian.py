"""The Laplacian-pyramid L1 loss as three code bases compute it: our own code,
computing exactly what each source computes (read, not copied; RVM is GPL-3.0).

All share one pyramid: K = v v^T / 256 with v = [1, 4, 6, 4, 1] applied as a
5x5 convolution after 2-pixel padding; down(x) = blur(x)[::2, ::2]; up(y) =
blur(z) with z zero except z[::2, ::2] = 4 y; L_i = x_i - up(down(x_i)),
x_{i+1} = down(x_i). They differ in cropping, weighting and normalisation.

Differentiable through autograd: the oracles of :func:`mattingloss.laplacian_loss`
for loss and gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _gauss_kernel(x):
    v = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device)
    return (v[:, None] * v[None, :] / 256.0)[None, None]


def _blur(x, padding="reflect"):
    """The 5x5 Gaussian of every (B*C) plane after 2 pixels of `padding` on each side."""
    B, C, H, W = x.shape
    y = F.conv2d(F.pad(x.reshape(B * C, 1, H, W), (2, 2, 2, 2), mode=padding), _gauss_kernel(x))
    return y.reshape(B, C, H, W)


def _zero_insert(y):
    """z with z[::2, ::2] = y and zeros elsewhere, by indexed assignment (as RVM writes it)."""
    B, C, H, W = y.shape
    z = torch.zeros((B, C, 2 * H, 2 * W), dtype=y.dtype, device=y.device)
    z[:, :, ::2, ::2] = y
    return z


def _zero_insert_interleaved(y):
    """The same zero insertion built MGMatting's way: concatenate zeros along the
    width and view as twice the rows (every other row zero), transpose, repeat,
    transpose back. Kept separate so the tests check that it is the same
    interleaving as :func:`_zero_insert`."""
    N, C, H, W = y.shape
    rows = torch.cat([y, torch.zeros_like(y)], dim=3).view(N, C, 2 * H, W).permute(0, 1, 3, 2)
    cols = torch.cat([rows, torch.zeros_like(rows)], dim=3).view(N, C, 2 * W, 2 * H)
    return cols.permute(0, 1, 3, 2)


def _crop_to_even(x):
    H, W = x.shape[2:]
    return x[:, :, : H - H % 2, : W - W % 2]


def rvm_laplacian_pyramid(x, levels=5, padding="reflect"):
    """RVM's ``laplacian_pyramid``: crop to even size, then x - up(down(x)), at every level."""
    pyramid = []
    current = x
    for _ in range(levels):
        current = _crop_to_even(current)
        down = _blur(current, padding)[:, :, ::2, ::2]
        up = _blur(_zero_insert(down * 4), padding)
        pyramid.append(current - up)
        current = down
    return pyramid


def rvm_laplacian_loss(pred, true, max_levels=5, *, padding="reflect"):
    """PeterL1n/RobustVideoMatting, ``train_loss.py``, ``laplacian_loss(pred, true, max_levels=5)``
    (copied unchanged into ViTMatte, DiffMatte and MatAnyone):
    ``sum_i 2**i * mean|L_i(pred) - L_i(true)| / max_levels`` with two pyramids
    (:func:`rvm_laplacian_pyramid`), the kernel in pred's dtype.
    ``padding`` is ours ("reflect" is RVM's; "replicate" the same code with the
    other padding mode)."""
    pred_pyr = rvm_laplacian_pyramid(pred, max_levels, padding)
    true_pyr = rvm_laplacian_pyramid(true, max_levels, padding)
    loss = 0
    for level in range(max_levels):
        loss = loss + (2**level) * F.l1_loss(pred_pyr[level], true_pyr[level])
    return loss / max_levels


def mgmatting_lap_pyramid(x, levels=5):
    """MGMatting's ``lap_pyramid`` inside ``lap_loss``: no cropping; the
    filtered image subsampled; the upsample through the concatenated zeros of
    :func:`_zero_insert_interleaved` blurred with 4 K. Odd sizes fail there
    (``current - up`` of mismatched shapes), as here."""
    pyramid = []
    current = x
    for _ in range(levels):
        down = _blur(current)[:, :, ::2, ::2]
        up = _blur(_zero_insert_interleaved(down) * 4)  # conv with 4K == 4 * conv with K, exactly
        pyramid.append(current - up)
        current = down
    return pyramid


def mgmatting_lap_loss(logit, target, weight=None, levels=5):
    """yucornetto/MGMatting ``code-base/trainer.py`` ``Trainer.lap_loss(logit, target,
    gauss_filter, loss_type='l1', weight=None)`` ("based on FBA Matting"), also
    webtoon/matteformer ``trainers/trainer.py`` ``Trainer.lap_loss`` and
    Matting-Anything's copy.

    Five levels of :func:`mgmatting_lap_pyramid` for each input; a weight
    pyramid taken by striding (``w_i = w[::2**i, ::2**i]``, no blur); per level
    ``regression_loss(L_i(logit), L_i(target), 'l1', w_i)`` =
    ``sum|L_i(p) * w_i - L_i(g) * w_i| / (sum(w_i) + 1e-8)`` (without a weight:
    ``mean|L_i(p) - L_i(g)|``), times ``2**i``, summed (not divided by the
    number of levels)."""
    pyr_p = mgmatting_lap_pyramid(logit, levels)
    pyr_t = mgmatting_lap_pyramid(target, levels)
    total = 0
    for i in range(levels):
        if weight is None:
            term = F.l1_loss(pyr_p[i], pyr_t[i])
        else:
            w = weight[:, :, :: 2**i, :: 2**i]
            term = F.l1_loss(pyr_p[i] * w, pyr_t[i] * w, reduction="sum") / (torch.sum(w) + 1e-8)
        total = total + term * (2**i)
    return total


def sdmatte_lap_loss(preds, targets, sample_map, size=512):
    """vivoCameraResearch/SDMatte ``criterion.py``, ``MattingCriterion.unknown_lap_loss``
    (``known_lap_loss`` is the same with ``sample_map == 0`` as the mask): the mask
    multiplies both inputs before RVM's pyramid loss (its ``laplacian_loss`` is
    RVM's, max_levels=5), and the result is scaled by
    ``B * size * size / sum(sample_map)``, or by 0 when the mask is empty
    (``size`` is the criterion's, 512 by default)."""
    if torch.sum(sample_map) == 0:
        scale = 0
    else:
        scale = sample_map.shape[0] * size * size / torch.sum(sample_map)
    return rvm_laplacian_loss(preds * sample_map, targets * sample_map) * scale


def sdmatte_known_mask(sample_map):
    """SDMatte's ``known_lap_loss`` mask: 1 where ``sample_map == 0``."""
    new = torch.zeros_like(sample_map)
    new[sample_map == 0] = 1
    return new
