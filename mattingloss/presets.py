"""Each code base's whole training objective in one call.

>>> from mattingloss import presets
>>> crit = presets.vitmatte()
>>> out = crit(pred_alpha, alpha, trimap)   # a dict of 0-dim tensors
>>> out["total"].backward()

Every preset is an ``nn.Module`` whose forward takes the code base's own inputs
in its own conventions and returns a dict: the code base's component names
(detached, for logging, with the values that code base logs) and ``"total"``,
the sum it trains on, which carries the gradient. Every per-term weight is an
option, so any weighted sum a code base trains with is a ``"total"``. Terms
that read the same inputs come from the same fused pass.

============  =========================================================  ==============================================
preset        code base (source of the reference it equals)              components
============  =========================================================  ==============================================
vitmatte      hustvl/ViTMatte ``MattingCriterion`` with the four         unknown_l1_loss, known_l1_loss,
              losses of ``configs/common/model.py``                       loss_pha_laplacian, loss_gradient_penalty
rvm           PeterL1n/RobustVideoMatting ``train_loss.matting_loss``    pha_l1, pha_laplacian, pha_coherence,
                                                                          fgr_l1, fgr_coherence
matteformer   webtoon/matteformer (and MGMatting, Matting-Anything)      rec, comp (with image/fg/bg), lap
              ``Trainer``: regression, composition and Laplacian loss
gca           Yaoyi-Li/GCA-Matting ``Trainer.regression_loss``           rec (+ comp, smooth_l1, grad if weighted)
dim           the seed's ``gen_loss`` (Deep Image Matting)               alpha_loss, comp_loss
mmagic_dim    open-mmlab/mmagic ``DIM`` with its config's losses          loss_alpha, loss_comp
============  =========================================================  ==============================================
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from . import _args, _codes, _ops
from ._module import OptionsModule
from . import alpha as _alpha
from . import laplacian as _laplacian
from . import temporal as _temporal
from .alpha import alpha_loss
from .composition import composition_loss
from .gradient import gradient_loss
from .laplacian import laplacian_loss
from .dim import DIMLoss

Tensor = torch.Tensor


class Preset(OptionsModule):
    """A code base's objective: options at construction (checked there), tensors at call."""


def _weight(name, value):
    return _args.number(name, value, low=0.0)


def _total(terms: Dict[str, Tensor], weights: Dict[str, float]) -> Tensor:
    """sum of weight x term over the terms present, in the code base's order."""
    total = None
    for key, term in terms.items():
        part = term if weights[key] == 1.0 else weights[key] * term
        total = part if total is None else total + part
    return total


def _result(terms: Dict[str, Tensor], total: Tensor, weights: Optional[Dict[str, float]] = None,
            copy: bool = True) -> Dict[str, Tensor]:
    """The components (detached; times their weight where the code base logs them weighted) and the total.
    copy=False: the terms are elements of a components tensor of their own (never the total)."""
    out = {}
    for key, term in terms.items():
        scale = 1.0 if weights is None else weights[key]
        # A copy, never a view of the total: under torch.compile an output that is
        # (folded into) an alias of the total takes the total's grad away.
        if scale != 1.0:
            out[key] = term.detach() * scale
        else:
            out[key] = term.detach().clone() if copy else term
    out["total"] = total
    return out


def _laplacian_folding(pred, gt, options, base, lap_weight, needs_grad):
    """The unweighted Laplacian op (RVM's convention; options: levels, level_weights,
    padding, crop_to_even, gt_scale from _laplacian.op_arguments) with the other terms'
    gradient, already scaled (``base``), folded into its own as it is written: one
    buffer holds the total's gradient (no add pass, one scaling in backward).
    Returns (loss, gradient)."""
    levels, level_weights, padding, crop_to_even, gt_scale = options
    args = (pred, gt, None, levels, level_weights, padding, crop_to_even, _codes.LAP_NO_WEIGHT, gt_scale, 0.0)
    if not needs_grad:
        loss, _, grad = _laplacian.laplacian_loss_forward(*args, False)
        return loss, grad
    loss, _, grad = _laplacian.laplacian_loss_forward(*args, True, base, lap_weight)
    return loss, grad


class _ViTMatteFunction(_ops.StoredGradientFunction):
    """ViTMatte's four terms: the trio's pass (_alpha.forward_terms, one map: the
    trio's gradient with its factors), then the Laplacian's, which folds that map into
    its own gradient. Returns the total, the trio's components and the Laplacian term."""

    @staticmethod
    def forward(ctx, pred, gt, mask, mode, lo, hi, spec, lap_weight, needs_grad, levels, level_weights, padding,
                crop_to_even, gt_scale):
        t = _alpha.forward_terms(pred, gt, mask, mode, lo, hi, spec, needs_grad)
        options = (levels, level_weights, padding, crop_to_even, gt_scale)
        lap, grad = _laplacian_folding(pred, gt, options, t.maps, lap_weight, needs_grad)
        total = torch.add(t.total, lap, alpha=lap_weight)
        ctx.mark_non_differentiable(t.components, lap)
        _ops.save_stored_gradients(ctx, grad)
        return total, t.components, lap


class ViTMatte(Preset):
    """ViTMatte's training objective (hustvl/ViTMatte, ``modeling/criterion/matting_criterion.py``,
    ``MattingCriterion`` with ``losses=['unknown_l1_loss', 'known_l1_loss', 'loss_pha_laplacian',
    'loss_gradient_penalty']`` as in ``configs/common/model.py``; the trainer sums them).

    Call: ``(pred_alpha, alpha, trimap)``, (B, 1, H, W), alpha in [0, 1] and the trimap as
    ViTMatte's model sees it (0, 0.5, 1: ``sample_map = trimap == 0.5``). Also used by
    DiffMatte, Matte-Anything and SDMatte's base. ``total`` is the weighted sum of the four
    (default weights 1, as ViTMatte).

    ``crop_size``: ViTMatte multiplies its L1 and gradient terms by ``B * 262144 / sum(m)``,
    the 512 x 512 crop hard-coded; that is reproduced by default (``crop_size=512``);
    ``crop_size=None`` uses the input's own H * W (a true masked mean). ViTMatte's unknown
    term divides by zero on a batch with no unknown pixel (NaN); here it is 0 there.
    """

    def __init__(self, *, unknown_l1_weight=1.0, known_l1_weight=1.0, laplacian_weight=1.0,
                 gradient_weight=1.0, unknown_value=0.5, crop_size: Optional[int] = 512):
        super().__init__(unknown_l1_weight=unknown_l1_weight, known_l1_weight=known_l1_weight,
                         laplacian_weight=laplacian_weight, gradient_weight=gradient_weight,
                         unknown_value=unknown_value, crop_size=crop_size)
        self.weights = {"unknown_l1_loss": _weight("unknown_l1_weight", unknown_l1_weight),
                        "known_l1_loss": _weight("known_l1_weight", known_l1_weight),
                        "loss_pha_laplacian": _weight("laplacian_weight", laplacian_weight),
                        "loss_gradient_penalty": _weight("gradient_weight", gradient_weight)}
        self.unknown_value = _args.number("unknown_value", unknown_value)
        if crop_size is not None and (isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1):
            raise ValueError(f"crop_size: expected a positive int or None, got {crop_size!r}")
        self.crop_size = crop_size
        w = self.weights
        self._spec = _alpha.vitmatte_spec(self.unknown_value, None, 1.0, (
            w["unknown_l1_loss"], w["known_l1_loss"], w["loss_gradient_penalty"]), crop_size, False)
        self._laplacian = _laplacian.options(convention="rvm")

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Tensor) -> Dict[str, Tensor]:
        trio_args = _alpha.op_arguments(self._spec, pred_alpha, alpha, trimap)
        _, _, _, levels, level_weights, padding, crop, _, gt_scale, _ = _laplacian.op_arguments(
            self._laplacian, trio_args[0], trio_args[1], None, checked=True)
        needs_grad = torch.is_grad_enabled() and trio_args[0].requires_grad
        total, c, lap = _ViTMatteFunction.apply(*trio_args, self._spec, self.weights["loss_pha_laplacian"],
                                                needs_grad, levels, level_weights, padding, crop, gt_scale)
        unknown, known, gradient = c.unbind()
        terms = {"unknown_l1_loss": unknown, "known_l1_loss": known, "loss_pha_laplacian": lap,
                 "loss_gradient_penalty": gradient}
        return _result(terms, total, copy=False)


class _RVMFunction(_ops.StoredGradientFunction):
    """RVM's five terms: the temporal op's pass, then the Laplacian's over the B*T alpha
    frames (the op reads (B, T, 1, H, W) as B*T images), which folds the temporal op's
    alpha gradient into its own. Returns the total, the temporal terms and the Laplacian's."""

    @staticmethod
    def forward(ctx, fgr, pha, t_fgr, t_pha, fgr_scale, pha_scale, w_pha_l1, w_pha_coh, w_fgr_l1, w_fgr_coh,
                grad_fgr, grad_pha, lap_weight, levels, level_weights, padding, crop_to_even, gt_scale):
        total, terms, g_fgr, g_pha = _temporal.temporal_loss_forward(
            fgr, pha, t_fgr, t_pha, fgr_scale, pha_scale, w_pha_l1, w_pha_coh, w_fgr_l1, w_fgr_coh, grad_fgr, grad_pha)
        options = (levels, level_weights, padding, crop_to_even, gt_scale)
        lap, g = _laplacian_folding(pha, t_pha, options, g_pha, lap_weight, grad_pha)
        total = torch.add(total, lap if lap.dtype == total.dtype else lap.to(total.dtype), alpha=lap_weight)
        ctx.mark_non_differentiable(terms, lap)
        _ops.save_stored_gradients(ctx, g_fgr, g)
        return total, terms, lap


class RVM(Preset):
    """RobustVideoMatting's training objective (PeterL1n/RobustVideoMatting, ``train_loss.py``,
    ``matting_loss``): L1, Laplacian and temporal coherence (x5) of the alpha, L1 and
    coherence of the foreground where the true alpha is > 0.

    Call: ``(pred_fgr, pred_pha, true_fgr, true_pha)``, (B, T, C, H, W) with C = 3 and 1, in
    [0, 1] (8-bit targets: ``true_pha_scale=255``, ``true_fgr_scale=255``). The four
    pointwise and coherence terms come from one fused pass, the Laplacian from a second
    (over the B*T frames). With T = 1 the coherence terms are 0 (RVM's: NaN).
    """

    def __init__(self, *, pha_l1_weight=1.0, pha_laplacian_weight=1.0, pha_coherence_weight=1.0,
                 fgr_l1_weight=1.0, fgr_coherence_weight=1.0, true_pha_scale=1.0, true_fgr_scale=1.0):
        super().__init__(pha_l1_weight=pha_l1_weight, pha_laplacian_weight=pha_laplacian_weight,
                         pha_coherence_weight=pha_coherence_weight, fgr_l1_weight=fgr_l1_weight,
                         fgr_coherence_weight=fgr_coherence_weight, true_pha_scale=true_pha_scale,
                         true_fgr_scale=true_fgr_scale)
        self.weights = {name: _weight(name, value) for name, value in self._options.items()
                        if name.endswith("_weight")}
        self.true_pha_scale = _args.number("true_pha_scale", true_pha_scale, low=0.0, low_open=True)
        self.true_fgr_scale = _args.number("true_fgr_scale", true_fgr_scale, low=0.0, low_open=True)
        self._laplacian = _laplacian.options(
            convention="rvm", gt_scale=None if self.true_pha_scale == 1.0 else self.true_pha_scale)

    def forward(self, pred_fgr: Tensor, pred_pha: Tensor, true_fgr: Tensor, true_pha: Tensor) -> Dict[str, Tensor]:
        w = self.weights
        args = _temporal.op_arguments(pred_fgr, pred_pha, true_fgr, true_pha, w["pha_l1_weight"],
                                      w["pha_coherence_weight"], w["fgr_l1_weight"], w["fgr_coherence_weight"],
                                      self.true_pha_scale, self.true_fgr_scale)
        # The Laplacian's own checks (sizes, a uint8 gt's scale) on the frames, B*T images as RVM reshapes them.
        _, _, _, levels, level_weights, padding, crop, _, gt_scale, _ = _laplacian.op_arguments(
            self._laplacian, args[1], args[3], None, frames=True, checked=True)
        grad = torch.is_grad_enabled()
        total, t, lap = _RVMFunction.apply(*args, grad and args[0].requires_grad, grad and args[1].requires_grad,
                                           w["pha_laplacian_weight"], levels, level_weights, padding, crop,
                                           gt_scale)
        pha_l1, pha_coherence, fgr_l1, fgr_coherence = t.unbind()
        terms = {"pha_l1": pha_l1, "pha_laplacian": lap, "pha_coherence": pha_coherence, "fgr_l1": fgr_l1,
                 "fgr_coherence": fgr_coherence}
        return _result(terms, total, copy=False)


class MatteFormer(Preset):
    """MatteFormer's training objective for one prediction (webtoon/matteformer,
    ``trainers/trainer.py``: ``regression_loss`` (L1), ``composition_loss`` and ``lap_loss``
    with the unknown-region ``weight``; the same code in MGMatting and Matting-Anything).

    Call: ``(pred_alpha, alpha, weight, image=None, fg=None, bg=None)``, (B, 1, H, W) alpha
    in [0, 1], ``weight`` the region (1 in the unknown region; all ones for the os8 head).
    ``comp`` is present when image/fg/bg are given (colours as the trainer gives them,
    ImageNet-normalised or not). Each term is the trainer's times its weight
    (``rec_weight``, ``comp_weight``, ``lap_weight``, 1 in its configs).

    ``check_weight=True`` raises on a negative ``weight`` (a host read: one sync per
    call on CUDA); off by default, as in every preset: the loss path never syncs.

    Their trainer sums three heads: ``(2 * L(os1) + L(os4) + L(os8)) / 5`` per term, each
    head with its own weight map. That sum is the caller's::

        crit = presets.matteformer()
        outs = [crit(p, alpha, w, image, fg, bg) for p, w in ((os1, w1), (os4, w4), (os8, w8))]
        total = (2 * outs[0]["total"] + outs[1]["total"] + outs[2]["total"]) / 5
    """

    def __init__(self, *, rec_weight=1.0, comp_weight=1.0, lap_weight=1.0, check_weight=False):
        super().__init__(rec_weight=rec_weight, comp_weight=comp_weight, lap_weight=lap_weight,
                         check_weight=check_weight)
        self.weights = {"rec": _weight("rec_weight", rec_weight), "comp": _weight("comp_weight", comp_weight),
                        "lap": _weight("lap_weight", lap_weight)}
        self.check_weight = _args.boolean("check_weight", check_weight)

    def forward(self, pred_alpha: Tensor, alpha: Tensor, weight: Tensor, image: Optional[Tensor] = None,
                fg: Optional[Tensor] = None, bg: Optional[Tensor] = None) -> Dict[str, Tensor]:
        check = self.check_weight
        terms = {"rec": alpha_loss(pred_alpha, alpha, weight=weight, guard=1e-8, mask_in_diff=True,
                                   check_weight=check)}
        if image is not None or fg is not None or bg is not None:
            terms["comp"] = composition_loss(pred_alpha, image, fg, bg, weight=weight, count_channels=False,
                                             guard=1e-8, check_weight=check)
        terms["lap"] = laplacian_loss(pred_alpha, alpha, weight, convention="mgmatting")
        return _result(terms, _total(terms, self.weights), self.weights)


class GCA(Preset):
    """GCA-Matting's training objective (Yaoyi-Li/GCA-Matting, ``trainer.py``): the L1
    ``regression_loss`` over the unknown ``weight``, ``sum|p*w - a*w| / (sum(w) + 1e-8)``,
    times ``rec_weight`` (1; its configs train with it alone). Its other terms, 0-weighted
    in ``utils/config.py``, are options: ``comp_weight`` (``composition_loss``, needs
    image/fg/bg), ``smooth_l1_weight`` (``smooth_l1``) and ``grad_weight`` (``grad_loss``).

    Call: ``(pred_alpha, alpha, weight, image=None, fg=None, bg=None)``, alpha in [0, 1].
    ``check_weight=True`` raises on a negative ``weight`` (a host sync on CUDA; off by default).
    """

    def __init__(self, *, rec_weight=1.0, comp_weight=0.0, smooth_l1_weight=0.0, grad_weight=0.0,
                 check_weight=False):
        super().__init__(rec_weight=rec_weight, comp_weight=comp_weight, smooth_l1_weight=smooth_l1_weight,
                         grad_weight=grad_weight, check_weight=check_weight)
        self.check_weight = _args.boolean("check_weight", check_weight)
        self.weights = {"rec": _weight("rec_weight", rec_weight), "comp": _weight("comp_weight", comp_weight),
                        "smooth_l1": _weight("smooth_l1_weight", smooth_l1_weight),
                        "grad": _weight("grad_weight", grad_weight)}

    def forward(self, pred_alpha: Tensor, alpha: Tensor, weight: Tensor, image: Optional[Tensor] = None,
                fg: Optional[Tensor] = None, bg: Optional[Tensor] = None) -> Dict[str, Tensor]:
        w, check = self.weights, self.check_weight
        terms = {}
        if w["rec"] > 0:
            terms["rec"] = alpha_loss(pred_alpha, alpha, weight=weight, guard=1e-8, mask_in_diff=True,
                                      check_weight=check)
        if w["comp"] > 0:
            if image is None or fg is None or bg is None:
                raise ValueError("image/fg/bg: comp_weight > 0 needs all three")
            terms["comp"] = composition_loss(pred_alpha, image, fg, bg, weight=weight, count_channels=False,
                                             guard=1e-8, check_weight=check)
        if w["smooth_l1"] > 0:
            terms["smooth_l1"] = alpha_loss(pred_alpha, alpha, weight=weight, rho="charbonnier", eps=1e-6,
                                            guard=1e-8, mask_in_diff=True, check_weight=check)
        if w["grad"] > 0:
            terms["grad"] = gradient_loss(pred_alpha, alpha, weight=weight, style="gca", check_weight=check)
        if not terms:
            raise ValueError("rec_weight/comp_weight/smooth_l1_weight/grad_weight: expected one > 0, got all 0")
        return _result(terms, _total(terms, w), w)


class DIM(Preset):
    """The Deep Image Matting loss in the seed's conventions (``gen_loss``): data in 0..255,
    unknown where ``trimap == 128``, ``wl * alpha_loss + (1 - wl) * comp_loss``.

    Call: ``(pred_alpha, alpha, trimap, image=None, fg=None, bg=None)`` as :class:`DIMLoss`;
    every DIMLoss option is an option here. Components: ``alpha_loss``, ``comp_loss`` (the
    seed's names; comp_loss is 0 without image/fg/bg).
    """

    def __init__(self, **dim_options):
        super().__init__(**dim_options)
        self.loss = DIMLoss(**dim_options)

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Tensor, image: Optional[Tensor] = None,
                fg: Optional[Tensor] = None, bg: Optional[Tensor] = None) -> Dict[str, Tensor]:
        total, la, lc = self.loss(pred_alpha, alpha, trimap, image, fg, bg, return_components=True)
        return {"alpha_loss": la, "comp_loss": lc, "total": total}


class MMagicDIM(Preset):
    """mmagic's DIM (open-mmlab/mmagic, ``mmagic/models/editors/dim/dim.py``,
    ``DIM._forward_train`` with its configs' ``CharbonnierLoss(loss_weight=0.5)`` and
    ``CharbonnierCompLoss(loss_weight=0.5)``): data in [0, 1], unknown where
    ``trimap == 128/255`` (``get_unknown_tensor``), ``eps=1e-12`` added under the root.

    Call: ``(pred_alpha, alpha, trimap, fg, bg, merged)``. Components ``loss_alpha`` and
    ``loss_comp`` include their loss weights, as mmagic logs them; ``total`` is their sum.
    mmagic divides by ``sum(w) + 1e-12``; here by ``sum(w)`` (0 for an empty region):
    a relative 1e-12 / N apart.
    """

    def __init__(self, *, alpha_weight=0.5, comp_weight=0.5, unknown_value=128 / 255, sample_wise=False):
        super().__init__(alpha_weight=alpha_weight, comp_weight=comp_weight, unknown_value=unknown_value,
                         sample_wise=sample_wise)
        a, c = _weight("alpha_weight", alpha_weight), _weight("comp_weight", comp_weight)
        if a + c <= 0:
            raise ValueError(f"alpha_weight/comp_weight: expected a positive sum, got {a} and {c}")
        self.a, self.c = a, c
        self.loss = DIMLoss(wl=a / (a + c), eps=1e-6, alpha_scale=1.0, color_scale=1.0, unknown_value=unknown_value,
                            reduction="sample" if sample_wise else "mean")

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Tensor, fg: Tensor, bg: Tensor,
                merged: Tensor) -> Dict[str, Tensor]:
        total, la, lc = self.loss(pred_alpha, alpha, trimap, merged, fg, bg, return_components=True)
        return {"loss_alpha": self.a * la, "loss_comp": self.c * lc, "total": (self.a + self.c) * total}


# The call each code base's objective is known by: presets.vitmatte(**options) is ViTMatte(**options).
vitmatte, rvm, matteformer, gca, dim, mmagic_dim = ViTMatte, RVM, MatteFormer, GCA, DIM, MMagicDIM
