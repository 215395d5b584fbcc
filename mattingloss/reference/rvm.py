"""RobustVideoMatting's training objective, as our own eager PyTorch code.

Source: PeterL1n/RobustVideoMatting, ``train_loss.py``, function ``matting_loss``
(read at commit 17d1774b032fd503bfe53c57d295db719f9e3da1). RVM is GPL-3.0: nothing
here is copied from it; this module computes what that function computes, term by
term, from its definition:

* inputs ``pred_fgr``, ``true_fgr``: (B, T, 3, H, W); ``pred_pha``, ``true_pha``:
  (B, T, 1, H, W); alpha and foreground in [0, 1].
* ``pha_l1``: mean absolute error of the alpha over all B*T*H*W elements.
* ``pha_laplacian``: the Laplacian-pyramid L1 of the alpha with the (B, T) dims
  flattened into the batch. Not computed here: pass it as ``pha_laplacian``
  (the lead plugs in mattingloss/reference/laplacian.py); left out, the key is
  absent and ``total`` is the sum of the other four terms.
* ``pha_coherence``: 5 x the mean squared difference between the predicted and the
  true frame-to-frame changes, ``pred[:, 1:] - pred[:, :-1]`` against
  ``true[:, 1:] - true[:, :-1]``, over B*(T-1)*H*W elements. The two frame
  differences are formed first and subtracted after (that order is kept here).
* the foreground terms use ``true_msk = true_pha > 0`` (a (B, T, 1, H, W) bool
  broadcast over the 3 colour channels), multiplied into BOTH the predicted and the
  true foreground before anything else (so a masked-out pixel adds 0 to both the
  L1 and the frame differences, and the mask of each frame applies to its own
  values inside a difference):
  ``fgr_l1`` = mean |pred_fgr*m - true_fgr*m| over B*T*3*H*W elements (the masked-out
  ones included in the count); ``fgr_coherence`` = 5 x the mean squared difference
  of the masked frame differences over B*(T-1)*3*H*W elements.
* ``total`` = pha_l1 + pha_coherence + pha_laplacian + fgr_l1 + fgr_coherence (all
  weights 1; the 5 lives inside the coherence terms).

With T == 1 the coherence terms are ``F.mse_loss`` of empty tensors: NaN (no
warning in torch 2.14), so RVM's total is NaN. This reference reproduces that;
:func:`mattingloss.temporal.video_matting_losses` returns 0 for them instead
(documented there).

``weights`` (an extension for testing our weighted totals; RVM's are all 1) maps a
key to the factor its term gets in ``total``. ``true_pha_scale``/``true_fgr_scale``
divide the targets first (8-bit targets: 255), as ``true / scale``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TERMS = ("pha_l1", "pha_coherence", "fgr_l1", "fgr_coherence")


def rvm_matting_loss(pred_fgr, pred_pha, true_fgr, true_pha, *, pha_laplacian=None, weights=None,
                     true_pha_scale=1.0, true_fgr_scale=1.0):
    """RVM's ``matting_loss`` dict: ``pha_l1``, ``pha_coherence``, ``fgr_l1``,
    ``fgr_coherence`` (+ ``pha_laplacian`` when given) and ``total``, all
    differentiable (RVM returns them attached to the graph)."""
    if true_pha_scale != 1.0:
        true_pha = true_pha / true_pha_scale
    if true_fgr_scale != 1.0:
        true_fgr = true_fgr / true_fgr_scale
    loss = {}
    loss["pha_l1"] = F.l1_loss(pred_pha, true_pha)
    loss["pha_coherence"] = F.mse_loss(pred_pha[:, 1:] - pred_pha[:, :-1],
                                       true_pha[:, 1:] - true_pha[:, :-1]) * 5
    true_msk = true_pha.gt(0)
    pred_fgr = pred_fgr * true_msk
    true_fgr = true_fgr * true_msk
    loss["fgr_l1"] = F.l1_loss(pred_fgr, true_fgr)
    loss["fgr_coherence"] = F.mse_loss(pred_fgr[:, 1:] - pred_fgr[:, :-1],
                                       true_fgr[:, 1:] - true_fgr[:, :-1]) * 5
    if pha_laplacian is not None:
        loss["pha_laplacian"] = pha_laplacian
    weights = dict(weights or {})
    unknown = set(weights) - set(TERMS) - {"pha_laplacian"}
    if unknown:
        raise ValueError(f"weights: unknown keys {sorted(unknown)}")
    total = 0
    # RVM's order of the sum
    for key in ("pha_l1", "pha_coherence", "pha_laplacian", "fgr_l1", "fgr_coherence"):
        if key in loss:
            w = weights.get(key, 1.0)
            total = total + (loss[key] if w == 1.0 else w * loss[key])
    loss["total"] = total
    return loss
