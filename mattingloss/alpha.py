"""The masked alpha loss (L1 or Charbonnier over the unknown, known or every
pixel) in each modern matting code base's convention, and ViTMatte's trio
(unknown L1 + known L1 + Sobel gradient penalty) from one fused pass.

One op (``alpha_sobel_forward``, csrc/alpha_sobel.h) reads pred, the
ground truth and the trimap/weight once and returns per-sample sums (each
term's masked sum and each region's weight sum) with the per-pixel gradient
of the weighted term sums. A second op (``alpha_sobel_compose``) turns the
sums into each convention's losses and the gradient maps' factors, on the
device (no host sync, one tiny kernel). The factors depend on the regions'
weight sums alone: with a gradient, ``alpha_sobel_weights`` sums them first
(one read of the trimap/weight, the main pass's order), compose gives the
factors, and the main pass writes one map, the total's gradient, each term times
its own scale (ViTMatte's unknown and known L1 have different ones); one op,
``alpha_sobel_prescaled``, runs those four. Backward multiplies the map by
grad_output (``_ops.scale_gradient_``; nothing to do for 1).

=================================  ==========================================================
code base (function)               call
=================================  ==========================================================
ViTMatte ``unknown_l1_loss``       ``alpha_loss(p, g, trimap, unknown_value=0.5, reduction="vitmatte", mask_in_diff=True)``
ViTMatte ``known_l1_loss``         the same with ``region="known"``
ViTMatte unknown + known + grad    ``vitmatte_alpha_losses(p, g, trimap)`` (one pass)
GCA/MGMatting/MatteFormer          ``alpha_loss(p, g, weight=w, guard=1e-8, mask_in_diff=True)``
``regression_loss`` (l1)
GCA ``smooth_l1``                  ``alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-6, guard=1e-8, mask_in_diff=True)``
mmagic ``L1Loss`` (weight)         ``alpha_loss(p, g, weight=w, guard=1e-12)`` (``reduction="sample"`` for sample_wise,
                                   ``"none"`` for its per-pixel map)
mmagic ``CharbonnierLoss``         ``alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-12, guard=1e-12)``
RVM / plain ``F.l1_loss``          ``alpha_loss(p, g, region="all")``
=================================  ==========================================================
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch

from . import _args, _codes, _ops
from ._codes import N_SUMS, SOBEL_DIFF, SOBEL_MAGNITUDE, SOBEL_NONE
from ._module import LossModule

Tensor = torch.Tensor

alpha_sobel_forward = _ops.load_op("alpha_sobel_forward")
alpha_sobel_compose = _ops.load_op("alpha_sobel_compose")
alpha_sobel_prescaled = _ops.load_op("alpha_sobel_prescaled")  # weights, compose, forward, compose in one

RHOS = {k: _codes.RHOS[k] for k in ("l1", "charbonnier")}
REDUCTIONS = ("mean", "sample", "sum", "numel", "vitmatte", "none")
REGIONS = ("unknown", "known", "all")
VITMATTE_PIXELS = 262144  # ViTMatte's hard-coded 512 * 512


@torch.library.register_fake("mattingloss::alpha_sobel_forward")
def _alpha_sobel_forward_fake(pred, alpha, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps,
                                 mask_in_diff, unknown_term, known_term, sobel, grad_eps, coef, group, groups,
                                 grad, per_pixel=False, factors=None):
    acc = _ops.accumulation_dtype(pred)
    B, _, H, W = pred.shape
    maps = pred.new_empty((1 if factors is not None else groups, B, 1, H, W)) if grad else pred.new_empty((0,))
    values = pred.new_empty((B, 1, H, W) if per_pixel else (0,), dtype=acc)
    return pred.new_empty((B, N_SUMS), dtype=acc), maps, values


@torch.library.register_fake("mattingloss::alpha_sobel_weights")
def _alpha_sobel_weights_fake(pred, mask, mask_mode, mask_lo, mask_hi):
    return pred.new_empty((pred.shape[0], N_SUMS), dtype=_ops.accumulation_dtype(pred))


@torch.library.register_fake("mattingloss::alpha_sobel_prescaled")
def _alpha_sobel_prescaled_fake(pred, alpha, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps,
                                   mask_in_diff, unknown_term, known_term, sobel, grad_eps, coef, group, groups,
                                   norm, guard, crop_pixels, penalty, weights):
    acc = _ops.accumulation_dtype(pred)
    B, _, H, W = pred.shape
    return pred.new_empty((), dtype=acc), pred.new_empty((3,), dtype=acc), pred.new_empty((B, 1, H, W))


@torch.library.register_fake("mattingloss::alpha_sobel_compose")
def _alpha_sobel_compose_fake(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups, count_all):
    return sums.new_empty(()), sums.new_empty((3,)), sums.new_empty((groups, sums.shape[0]))


# --------------------------------------------------------------------------- options

class Norm(NamedTuple):
    """How a term's sum becomes a loss. mode: "mean" (sum / (sum(w) + guard), 0 when
    that is 0), "sample" (the mean over samples of each one's own masked mean),
    "sum", "numel" (over B*H*W, F.l1_loss's mean), "none" (the per-pixel map; alpha_loss
    only), "vitmatte" (the mean over B*H*W
    times B * crop_pixels / sum(w): ViTMatte's scale with its crop_pixels = 512^2, 0 when
    sum(w) is 0; crop_pixels 0: the input's own H * W, a true masked mean)."""

    mode: str
    guard: float = 0.0
    crop_pixels: int = VITMATTE_PIXELS


def _norm(reduction, guard, per_pixel_ok=False) -> Norm:
    allowed = REDUCTIONS if per_pixel_ok else tuple(r for r in REDUCTIONS if r != "none")
    if not isinstance(reduction, str) or reduction not in allowed:
        why = " ('none' is alpha_loss's: a Sobel term's gradient is no per-pixel multiple of its value)"
        raise ValueError(f"reduction: expected one of {list(allowed)}, got {reduction!r}"
                         + (why if reduction == "none" else ""))
    guard = _args.number("guard", guard, low=0.0)
    return Norm(reduction, guard)


class Spec(NamedTuple):
    """One fused call: which terms, their conventions and weights (checked options).
    A NamedTuple (as Norm): torch.compile passes it to the autograd.Function as a constant."""

    region_mode: int  # _codes.MASK_* (MASK_ALL: every pixel)
    lo: float
    hi: float
    alpha_scale: float
    # The terms: each is off unless named (make_spec).
    rho: int = _codes.RHOS["l1"]
    eps: float = 0.0
    mask_in_diff: bool = False
    unknown: Optional[Norm] = None  # the unknown-region term, or None
    known: Optional[Norm] = None
    sobel: int = _codes.SOBEL_NONE
    sobel_norm: Optional[Norm] = None
    penalty: float = 0.0
    grad_eps: float = 1e-8
    weights: Tuple[float, float, float] = (1.0, 1.0, 1.0)  # of the unknown, known and Sobel terms in the total


def make_spec(*, no_mask: Optional[str], unknown_value, unknown_range, weight_given, default_value, alpha_scale,
              **terms) -> Spec:
    """A Spec from the region options, checked, and the terms named. no_mask: why
    every pixel counts (then trimap options are an error), or None."""
    if no_mask is not None:
        if unknown_value is not None or unknown_range is not None:
            raise ValueError(f"unknown_value/unknown_range: {no_mask}; drop them")
        mode, lo, hi = _codes.MASK_ALL, 0.0, 0.0
    else:
        mode, lo, hi = _args.region_options(unknown_value, unknown_range, weight_given, default_value)
    return Spec(mode, lo, hi, _args.number("alpha_scale", alpha_scale, low=0.0, low_open=True), **terms)


# --------------------------------------------------------------------------- inputs

def _region(spec: Spec, trimap, weight, pred, check_weight=True):
    """(mask tensor or None, mode, lo, hi) as the op reads them."""
    if spec.region_mode == _codes.MASK_ALL:
        if trimap is not None or weight is not None:
            raise ValueError("trimap/weight: region='all' reads no mask, but one was given")
        return None, _codes.MASK_ALL, 0.0, 0.0
    if weight is not None and trimap is None and spec.region_mode != _codes.MASK_WEIGHT:
        raise ValueError("unknown_value/unknown_range: they describe a trimap, but weight= was given; "
                         "pass a trimap instead, or drop them")
    if trimap is not None and weight is None and spec.region_mode == _codes.MASK_WEIGHT:
        raise ValueError("trimap: this loss was set up for weight= (no unknown_value/unknown_range); "
                         "pass weight=, or give unknown_value/unknown_range")
    region = _args.read_region(trimap, weight, pred, spec.region_mode, spec.lo, spec.hi, check_weight)
    return region.mask, region.mode, region.lo, region.hi


# --------------------------------------------------------------------------- composition

def _groups(spec: Spec):
    """Gradient map of the unknown, known and Sobel terms: terms whose factor is
    the same (same normalisation of the same weight sum) share one. (Plain
    comparisons, no list.index on tuples: torch.compile traces this.)"""
    keys, group = [], []
    for norm, source in ((spec.unknown, "u"), (spec.known, "k"), (spec.sobel_norm, "u")):
        if norm is None:
            group.append(0)
            continue
        if norm.mode == "sum" or norm.mode == "numel":
            source = "-"
        found = len(keys)
        for i, (mode, guard, src) in enumerate(keys):
            if found == len(keys) and mode == norm.mode and guard == norm.guard and src == source:
                found = i
        if found == len(keys):
            keys.append((norm.mode, norm.guard, source))
        group.append(found)
    return group, max(len(keys), 1)


class Terms(NamedTuple):
    """One call of the ops: the total and its three components, the gradient maps
    and their factors ((groups, B): per sample), or the total's gradient (pred's
    shape) and factors None (forward_terms' prescale)."""

    total: Tensor
    components: Tensor
    maps: Tensor
    factors: Optional[Tensor]


def forward_terms(pred, gt, mask, mode, lo, hi, spec: Spec, needs_grad: bool, prescale: bool = True) -> Terms:
    """Runs the ops: the pass over the pixels, then the losses from its sums (checked inputs).

    prescale (with a gradient): the maps' factors depend on the region's weight sums
    alone, so a first read of the mask alone (alpha_sobel_weights: the same sums,
    bitwise, as the main pass gives) and compose give them in advance, and the main
    pass writes one map, the total's gradient: no second map written and read back,
    and backward is a scaling by grad_output, none when that is 1. The four ops then
    run as one (alpha_sobel_prescaled), with no Python between the kernels."""
    group, groups = _groups(spec)
    wu, wk, ws = spec.weights
    coef = [wu if spec.unknown else 0.0, wk if spec.known else 0.0, ws if spec.sobel_norm else 0.0,
            ws * spec.penalty if spec.sobel_norm else 0.0]
    norms = (spec.unknown, spec.known, spec.sobel_norm)
    crop_pixels = 0  # the same in every "vitmatte" term a Spec holds
    for n in norms:
        if n is not None and n.mode == "vitmatte":
            crop_pixels = n.crop_pixels

    norm_codes = [-1 if n is None else _codes.NORMS[n.mode] for n in norms]
    guards = [0.0 if n is None else n.guard for n in norms]
    pass_args = (pred, gt, mask, mode, lo, hi, spec.alpha_scale, spec.rho, spec.eps, spec.mask_in_diff,
                 spec.unknown is not None, spec.known is not None, spec.sobel, spec.grad_eps, coef, group, groups)
    if prescale and needs_grad:  # the four ops in one (alpha_sobel_prescaled)
        total, components, maps = alpha_sobel_prescaled(
            *pass_args, norm_codes, guards, crop_pixels, spec.penalty, list(spec.weights))
        return Terms(total, components, maps, None)
    sums, maps, _ = alpha_sobel_forward(*pass_args, needs_grad, False, None)
    total, components, factors = alpha_sobel_compose(
        sums, pred.shape[2] * pred.shape[3], norm_codes, guards, crop_pixels, spec.penalty, list(spec.weights),
        group, groups, mode == _codes.MASK_ALL)
    return Terms(total, components, maps, factors)


class AlphaSobelFunction(_ops.StoredGradientFunction):
    """Autograd around the ops: forward composes the losses from the per-sample sums
    and keeps the total's gradient (forward_terms' prescaled map); backward scales it
    by grad_output (_ops.stored_gradients: no pass when that is 1)."""

    @staticmethod
    def forward(ctx, pred, gt, mask, mode, lo, hi, spec: Spec, needs_grad: bool):
        t = forward_terms(pred, gt, mask, mode, lo, hi, spec, needs_grad)
        ctx.mark_non_differentiable(t.components)
        _ops.save_stored_gradients(ctx, t.maps if needs_grad else None)
        return t.total, t.components


class PerPixelFunction(torch.autograd.Function):
    """reduction "none": the (B,1,H,W) map of per-pixel terms; backward multiplies the
    stored per-pixel derivative by grad_output (a map) elementwise."""

    @staticmethod
    def forward(ctx, pred, gt, mask, mode, lo, hi, spec: Spec, needs_grad: bool):
        unknown, known = spec.unknown is not None, spec.known is not None
        _, maps, values = alpha_sobel_forward(
            pred, gt, mask, mode, lo, hi, spec.alpha_scale, spec.rho, spec.eps, spec.mask_in_diff, unknown, known,
            SOBEL_NONE, spec.grad_eps, [1.0, 1.0, 0.0, 0.0], [0, 0, 0], 1, needs_grad, True, None)
        _ops.save_stored_gradients(ctx, maps)
        return values

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_values):
        (maps,) = ctx.saved_tensors
        return _ops.stored_gradients(ctx, (maps[0],), grad_values)


def run(spec: Spec, pred_alpha, alpha, trimap=None, weight=None, check_weight=True):
    """Checks the tensors and runs one fused call: (total, components[3]), or for
    reduction "none" (the per-pixel map, None)."""
    args = op_arguments(spec, pred_alpha, alpha, trimap, weight, check_weight)
    needs_grad = torch.is_grad_enabled() and args[0].requires_grad
    if spec.sobel == SOBEL_NONE and (spec.unknown or spec.known).mode == "none":
        return PerPixelFunction.apply(*args, spec, needs_grad), None
    return AlphaSobelFunction.apply(*args, spec, needs_grad)


def op_arguments(spec: Spec, pred_alpha, alpha, trimap=None, weight=None, check_weight=True) -> tuple:
    """The checked tensors of one call: (pred, gt, mask, mode, lo, hi). check_weight:
    a weight's values are checked non-negative (a host read: see _args.read_region)."""
    if weight is None and spec.region_mode in _codes.TRIMAP_MODES:
        usual = _args.usual(pred_alpha, alpha, trimap, spec.lo, spec.hi)
        if usual is not None:
            return usual[0], usual[1], usual[2], spec.region_mode, spec.lo, spec.hi
    pred = _args.prediction(pred_alpha)
    gt = _args.image_like("alpha", alpha, pred)
    return (pred, gt, *_region(spec, trimap, weight, pred, check_weight))


def _rho(rho, eps):
    code = RHOS[_args.choice("rho", rho, tuple(RHOS))]
    eps = _args.number("eps", eps, low=0.0, low_open=rho == "charbonnier")
    return code, eps


# --------------------------------------------------------------------------- public API

@_args.cached
def _alpha_spec(region, rho, eps, reduction, guard, mask_in_diff, alpha_scale, unknown_value, unknown_range,
                weight_given, default_value=128.0) -> Spec:
    _args.choice("region", region, REGIONS)
    rho_code, eps = _rho(rho, eps)
    norm = _norm(reduction, guard, per_pixel_ok=True)
    return make_spec(no_mask="region='all' reads no trimap" if region == "all" else None,
                     unknown_value=unknown_value, unknown_range=unknown_range, weight_given=weight_given,
                     default_value=default_value, alpha_scale=alpha_scale, rho=rho_code, eps=eps,
                     mask_in_diff=_args.boolean("mask_in_diff", mask_in_diff),
                     unknown=None if region == "known" else norm, known=norm if region == "known" else None)


def alpha_loss(
    pred_alpha: Tensor,
    alpha: Tensor,
    trimap: Optional[Tensor] = None,
    *,
    weight: Optional[Tensor] = None,
    region: str = "unknown",
    rho: str = "l1",
    eps: float = 1e-12,
    reduction: str = "mean",
    guard: float = 0.0,
    mask_in_diff: bool = False,
    alpha_scale: float = 1.0,
    unknown_value: Optional[float] = None,
    unknown_range: Optional[Tuple[float, float]] = None,
    check_weight: bool = True,
) -> Tensor:
    """The masked alpha loss ``sum(rho * w) / normaliser`` from one fused pass.

    Per pixel, with ``d = pred - alpha / alpha_scale`` and the region's weight ``w``:
    ``w * rho(d)``, or with ``mask_in_diff=True`` ``rho(pred*w - (alpha/alpha_scale)*w)``
    (as ViTMatte, GCA, MGMatting and MatteFormer write it). The two agree for L1 and
    for a binary mask's unknown pixels; for Charbonnier every pixel with ``w = 0``
    adds ``sqrt(eps)`` in the second form, and soft weights give
    ``sqrt(w^2 d^2 + eps)`` instead of ``w sqrt(d^2 + eps)``.
    ``rho``: ``"l1"`` (``|d|``, derivative 0 at d = 0 as torch's abs) or
    ``"charbonnier"`` (``sqrt(d^2 + eps)``, eps as added: mmagic 1e-12, GCA 1e-6).

    Args:
        pred_alpha: (B,1,H,W) predicted alpha; float16, bfloat16, float32 or float64.
        alpha: (B,1,H,W) ground truth in 0..alpha_scale (uint8 or floating), read as stored.
        trimap: (B,1,H,W); unknown where it equals ``unknown_value`` (default 128), or
            ``lo < trimap < hi`` with ``unknown_range``; compared exactly as torch would.
        weight: (B,1,H,W) non-negative weights instead of a trimap (mmagic's, GCA's ``weight``).
        region: ``"unknown"`` (w), ``"known"`` (``w == 0``, as ViTMatte's known_l1_loss
            builds it) or ``"all"`` (every pixel; no trimap or weight).
        reduction: ``"mean"`` (``sum / (sum(w) + guard)``; 0 when that is 0),
            ``"sample"`` (the mean over samples of each one's ``sum_b / (sum(w_b) + guard)``,
            mmagic's sample_wise), ``"sum"``, ``"numel"`` (over B*H*W: ``F.l1_loss``'s
            mean of the masked values), ``"vitmatte"`` (ViTMatte's ``F.l1_loss(p*m, g*m) *
            B * 262144 / sum(m)``: the 512*512 crop is hard-coded there, so it is a mean
            only for 512 x 512 inputs; reproduced as is. ViTMatte's own unknown term gives
            NaN on an empty region; we return 0 there, as its known term does), or
            ``"none"``: the (B,1,H,W) map of per-pixel terms (``w * rho(d)`` or
            ``rho(p*w - g*w)``: mmagic's ``reduction='none'``), float32 (float64 for
            float64 pred_alpha); ``guard`` is unused then.
        guard: added to the weight sum of ``"mean"``/``"sample"`` (GCA 1e-8, mmagic 1e-12).
        check_weight: raise on a negative ``weight`` (as DIMLoss: on CUDA the check reads
            the weight on the host, a sync; skipped under torch.compile and CUDA-graph
            capture; ``False`` skips it).
    """
    spec = _alpha_spec(region, rho, eps, reduction, guard, mask_in_diff, alpha_scale, unknown_value,
                       unknown_range, weight is not None)
    total, _ = run(spec, pred_alpha, alpha, trimap, weight, check_weight)
    return total


class AlphaLoss(LossModule):
    """Module form of :func:`alpha_loss`: options at construction, tensors at call."""

    def __init__(self, region: str = "unknown", rho: str = "l1", eps: float = 1e-12, reduction: str = "mean",
                 guard: float = 0.0, mask_in_diff: bool = False, alpha_scale: float = 1.0,
                 unknown_value: Optional[float] = None, unknown_range: Optional[Tuple[float, float]] = None,
                 check_weight: bool = True):
        super().__init__(_alpha_spec, ({"weight_given": False}, {"weight_given": True}), check_weight=check_weight,
                         region=region, rho=rho, eps=eps, reduction=reduction, guard=guard, mask_in_diff=mask_in_diff,
                         alpha_scale=alpha_scale, unknown_value=unknown_value, unknown_range=unknown_range)

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Optional[Tensor] = None,
                weight: Optional[Tensor] = None) -> Tensor:
        spec = self.config(weight_given=weight is not None)
        return run(spec, pred_alpha, alpha, trimap, weight, self.check_weight)[0]


@_args.cached
def vitmatte_spec(unknown_value, unknown_range, alpha_scale, weights, crop_size, weight_given) -> Spec:
    if not isinstance(weights, (tuple, list)) or len(weights) != 3:
        raise ValueError(f"weights: expected (unknown, known, gradient), got {weights!r}")
    weights = (_args.number("weights[0]", weights[0]), _args.number("weights[1]", weights[1]),
               _args.number("weights[2]", weights[2]))
    if crop_size is not None and (isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1):
        raise ValueError(f"crop_size: expected a positive int or None, got {crop_size!r}")
    norm = Norm("vitmatte", crop_pixels=0 if crop_size is None else crop_size * crop_size)
    return make_spec(no_mask=None, unknown_value=unknown_value, unknown_range=unknown_range,
                     weight_given=weight_given, default_value=0.5, alpha_scale=alpha_scale, mask_in_diff=True,
                     unknown=norm, known=norm, sobel=SOBEL_DIFF, sobel_norm=norm, penalty=0.01, weights=weights)


def vitmatte_alpha_losses(
    pred_alpha: Tensor,
    alpha: Tensor,
    trimap: Optional[Tensor] = None,
    *,
    weight: Optional[Tensor] = None,
    unknown_value: Optional[float] = None,
    unknown_range: Optional[Tuple[float, float]] = None,
    alpha_scale: float = 1.0,
    weights: Tuple[float, float, float] = (1.0, 1.0, 1.0),
    crop_size: Optional[int] = 512,
    check_weight: bool = True,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """ViTMatte's ``unknown_l1_loss``, ``known_l1_loss`` and ``loss_gradient_penalty`` from
    one fused pass over pred, alpha and the trimap.

    Returns ``(total, unknown_l1, known_l1, gradient_penalty)``: ``total =
    weights[0] * unknown_l1 + weights[1] * known_l1 + weights[2] * gradient_penalty``
    carries the gradient; the three terms are detached (for logging).
    The unknown region is ``trimap == 0.5`` by default (ViTMatte's trimap as its model
    sees it: 0 / 0.5 / 1), or ``weight`` (its ``sample_map``). An empty unknown region
    gives 0 for the unknown and gradient terms (ViTMatte's code gives NaN there).
    ``crop_size``: ViTMatte scales each term by ``B * 512^2 / sum(m)``, its training crop
    hard-coded (default, reproduced); ``None`` uses the input's own H * W (a masked mean).
    ``check_weight``: raise on a negative ``weight`` (see :func:`alpha_loss`).
    """
    spec = vitmatte_spec(unknown_value, unknown_range, alpha_scale, weights, crop_size, weight is not None)
    total, components = run(spec, pred_alpha, alpha, trimap, weight, check_weight)
    return (total, *components.unbind())


class VitMatteAlphaLosses(LossModule):
    """Module form of :func:`vitmatte_alpha_losses`: options checked at construction
    (the form to use under ``torch.compile(dynamic=True)``, where option checks on
    Python floats of a functional call cannot be traced)."""

    def __init__(self, unknown_value: Optional[float] = None, unknown_range: Optional[Tuple[float, float]] = None,
                 alpha_scale: float = 1.0, weights: Tuple[float, float, float] = (1.0, 1.0, 1.0),
                 crop_size: Optional[int] = 512, check_weight: bool = True):
        super().__init__(vitmatte_spec, ({"weight_given": False}, {"weight_given": True}),
                         check_weight=check_weight, unknown_value=unknown_value, unknown_range=unknown_range,
                         alpha_scale=alpha_scale, weights=weights, crop_size=crop_size)

    def forward(self, pred_alpha: Tensor, alpha: Tensor, trimap: Optional[Tensor] = None,
                weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        spec = self.config(weight_given=weight is not None)
        total, components = run(spec, pred_alpha, alpha, trimap, weight, self.check_weight)
        return (total, *components.unbind())


__all__ = ["alpha_loss", "AlphaLoss", "vitmatte_alpha_losses", "VitMatteAlphaLosses"]
