"""RobustVideoMatting's pointwise and temporal-coherence terms as one fused op.

RVM (PeterL1n/RobustVideoMatting, ``train_loss.py``, ``matting_loss``) trains
video matting with five terms on (B, T, C, H, W) clips; four of them read each
element once and are computed here in a single pass over the four inputs
(csrc/temporal.h has the math, shared by the CPU and CUDA kernels):

* ``pha_l1``: mean |pred_pha - true_pha|;
* ``pha_coherence``: 5 x mean of ((pred_t - pred_{t-1}) - (true_t - true_{t-1}))^2
  over the T - 1 frame differences;
* ``fgr_l1`` and ``fgr_coherence``: the same on the foreground, both predicted and
  true multiplied by RVM's mask ``true_pha > 0`` first (counts include the
  masked-out elements, as in RVM).

The fifth, ``pha_laplacian``, is the Laplacian-pyramid op's; ``presets.rvm()``
adds it. The op also computes the gradient of the weighted total with respect to
``pred_pha`` and ``pred_fgr`` in the same pass (every normalisation is an element
count, known before the launch), so backward only multiplies it by grad_output.

Documented differences from RVM's function:

* T == 1: RVM's coherence terms are ``F.mse_loss`` of empty tensors, NaN, which
  makes its total NaN. Here they are 0 (there is no frame difference to penalise),
  and the total is the L1 terms' sum.
* float16/bfloat16 predictions (RVM trains under autocast): every difference is
  formed in float32 from the stored values; RVM's eager code rounds the frame
  differences of the predictions to the prediction dtype before ``mse_loss``
  upcasts them. The terms come back in float32, the gradients in the
  predictions' dtype.
"""
from __future__ import annotations

import torch

from . import _args, _ops

temporal_loss_forward = _ops.load_op("temporal_loss_forward")

# The op's `terms` output, in order.
TERMS = ("pha_l1", "pha_coherence", "fgr_l1", "fgr_coherence")


@torch.library.register_fake("mattingloss::temporal_loss_forward")
def _temporal_loss_forward_fake(pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale,
                                w_pha_l1, w_pha_coherence, w_fgr_l1, w_fgr_coherence, grad_fgr, grad_pha):
    double = torch.float64 in (pred_fgr.dtype, pred_pha.dtype)
    acc = torch.float64 if double else torch.float32
    return (
        pred_pha.new_empty((), dtype=acc),
        pred_pha.new_empty((4,), dtype=acc),
        pred_fgr.new_empty(pred_fgr.shape) if grad_fgr else pred_pha.new_empty((0,), dtype=acc),
        pred_pha.new_empty(pred_pha.shape) if grad_pha else pred_pha.new_empty((0,), dtype=acc),
    )


class TemporalLossFunction(_ops.StoredGradientFunction):
    """Autograd around the op: forward keeps the final per-element gradients
    (private intermediates, never returned); backward scales them by grad_output."""

    @staticmethod
    def forward(ctx, pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale, w_pha_l1,
                w_pha_coherence, w_fgr_l1, w_fgr_coherence, grad_fgr, grad_pha):
        total, terms, g_fgr, g_pha = temporal_loss_forward(
            pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale, w_pha_l1, w_pha_coherence,
            w_fgr_l1, w_fgr_coherence, grad_fgr, grad_pha)
        ctx.mark_non_differentiable(terms)
        _ops.save_stored_gradients(ctx, g_fgr, g_pha)
        return total, terms


_CHECKED = dict(loss="the loss", grads="pred_fgr and pred_pha", like_name="pred_pha")


def video_matting_losses(pred_fgr, pred_pha, true_fgr, true_pha, *, pha_l1_weight=None,
                         pha_coherence_weight=None, fgr_l1_weight=None, fgr_coherence_weight=None,
                         true_pha_scale=None, true_fgr_scale=None) -> dict:
    """RVM's L1 and temporal-coherence terms of a video batch, in one fused pass.

    Args (RVM's conventions and argument order):
        pred_fgr, true_fgr: (B, T, 3, H, W) foreground, in [0, 1].
        pred_pha, true_pha: (B, T, 1, H, W) alpha, in [0, 1].
        Predictions float16/bfloat16/float32/float64; targets uint8 or floating,
        read as stored (pass ``true_*_scale=255`` for 8-bit targets: they are
        divided by it, and RVM's mask is ``true_pha / true_pha_scale > 0``).
        *_weight: the factor of each term in ``"total"`` (default, RVM's: all 1;
        the x5 of the coherence terms is part of the terms, as in RVM's dict).
        true_*_scale: default 1. (None defaults: a float default would be a
        symbolic input of a ``torch.compile(dynamic=True)`` graph, whose value
        the checks here can't read.)

    Returns a dict of 0-dim tensors: ``pha_l1``, ``pha_coherence``, ``fgr_l1``,
    ``fgr_coherence`` (detached, for logging; the values RVM's ``matting_loss``
    reports) and ``total`` = sum of weight x term, which carries the gradient
    w.r.t. ``pred_fgr`` and ``pred_pha``. With default weights, RVM's total is this
    ``total`` plus its ``pha_laplacian``. float32 results (float64 for float64
    predictions). With T == 1 the coherence terms are 0 (RVM: NaN; see the module
    docstring).
    """
    args = op_arguments(pred_fgr, pred_pha, true_fgr, true_pha, pha_l1_weight, pha_coherence_weight, fgr_l1_weight,
                        fgr_coherence_weight, true_pha_scale, true_fgr_scale)
    grad = torch.is_grad_enabled()
    total, terms = TemporalLossFunction.apply(*args, grad and pred_fgr.requires_grad, grad and pred_pha.requires_grad)
    out = {name: terms[i] for i, name in enumerate(TERMS)}
    out["total"] = total
    return out


def op_arguments(pred_fgr, pred_pha, true_fgr, true_pha, pha_l1_weight, pha_coherence_weight, fgr_l1_weight,
                 fgr_coherence_weight, true_pha_scale, true_fgr_scale) -> tuple:
    """The checked tensors and options of one call, in the op's argument order up to
    grad_fgr (None options: their defaults). The presets call the op with these too."""
    _args.floating("pred_pha", pred_pha)
    _args.floating("pred_fgr", pred_fgr)
    pha = _args.prediction(pred_pha, "pred_pha", "(B, T, 1, H, W)", dims=5)
    *weights, pha_scale, fgr_scale = _options(pha_l1_weight, pha_coherence_weight, fgr_l1_weight,
                                              fgr_coherence_weight, true_pha_scale, true_fgr_scale)
    B, T, _, H, W = pha.shape
    fgr = _args.tensor_like("pred_fgr", pred_fgr, pha, (B, T, 3, H, W), allow_grad=True, convert=False, **_CHECKED)
    t_pha = _args.tensor_like("true_pha", true_pha, pha, **_CHECKED)
    t_fgr = _args.tensor_like("true_fgr", true_fgr, pha, (B, T, 3, H, W), **_CHECKED)
    return (fgr, pha, t_fgr, t_pha, fgr_scale, pha_scale, *weights)


@_args.cached
def _options(pha_l1_weight, pha_coherence_weight, fgr_l1_weight, fgr_coherence_weight, true_pha_scale,
             true_fgr_scale) -> tuple:
    """The four weights and two scales, checked (None: the default), once per distinct set."""
    weights = [_args.number(name, 1.0 if value is None else value, low=0.0) for name, value in (
        ("pha_l1_weight", pha_l1_weight), ("pha_coherence_weight", pha_coherence_weight),
        ("fgr_l1_weight", fgr_l1_weight), ("fgr_coherence_weight", fgr_coherence_weight))]
    pha_scale = _args.number("true_pha_scale", 1.0 if true_pha_scale is None else true_pha_scale, low=0.0,
                             low_open=True)
    fgr_scale = _args.number("true_fgr_scale", 1.0 if true_fgr_scale is None else true_fgr_scale, low=0.0,
                             low_open=True)
    return (*weights, pha_scale, fgr_scale)
