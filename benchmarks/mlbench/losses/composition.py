"""The composition loss as GCA-Matting, MGMatting and MatteFormer compute it (L1 over the
unknown region, the 3 channels summed, divided by ``sum(weight) + 1e-8``),
mattingloss.composition_loss.

Contenders, all computing the same loss and its gradient w.r.t. ``pred``:

* ``eager``    the trainers' ``composition_loss`` with the torch ops they use
               (mattingloss.reference.gca_composition_loss(pred, fg, bg, image, weight)).
* ``compiled`` ``torch.compile`` of eager, compiled once per case before timing.
* ``fused``    mattingloss.composition_loss(rho="l1", count_channels=False, guard=1e-8).

Colours in [0, 1]. float32 row: every input float32, ``weight`` = 1 in the unknown region.
bf16+uint8 row: fused reads uint8 image/fg/bg (``color_scale=255``) and the uint8 trimap
(``unknown_value=128``: the same region as the weight); eager and compiled get the float32
copies a pipeline holds (colours / 255 and the weight), made with the case (Case.extras).
"""
from __future__ import annotations

import torch

import mattingloss
from mattingloss.reference import gca_composition_loss

from .. import check
from ..cases import grid, inputs_plus_gradient, make_case
from ..compile import compiled
from ..spec import LossBench
from ._common import unit

GUARD = 1e-8
DTYPES = ("float32", "bf16+uint8")
COLOURS = ("image", "fg", "bg")


def build_case(size, dtype, device):
    case = make_case("composition", size, dtype, device, ("pred", *COLOURS, "trimap"))
    weight = (case["trimap"] == 128).float()
    if dtype == "float32":
        tensors = {"pred": case.pred, **{c: unit(case[c]) for c in COLOURS}, "weight": weight}
        case.tensors.clear()
        case.tensors.update(tensors)
    else:
        case.extras.update({c: unit(case[c]) for c in COLOURS}, weight=weight)
    return case


def ref_args(case):
    return case.pred, case.ref("fg"), case.ref("bg"), case.ref("image"), case.ref("weight")


def eager(case):
    return lambda: gca_composition_loss(*ref_args(case))


def compiled_eager(case):
    fn = compiled(gca_composition_loss, case)
    return lambda: fn(*ref_args(case))


def fused(case):
    common = dict(rho="l1", count_channels=False, guard=GUARD)
    pred, image, fg, bg = (case[n] for n in ("pred", *COLOURS))
    if "weight" in case.tensors:
        return lambda: mattingloss.composition_loss(pred, image, fg, bg, weight=case["weight"], **common)
    trimap = case["trimap"]
    return lambda: mattingloss.composition_loss(pred, image, fg, bg, trimap, unknown_value=128,
                                                color_scale=255.0, **common)


def rounding_slack(case) -> torch.Tensor:
    """Per pixel, how far two correct gradients may differ through rounding alone: where a
    channel's residual ``p*fg + (1-p)*bg - image`` is within 1e-6 of 0 (float32 resolves
    [0, 1] colours to 6e-8 and the implementations order the composite differently), the
    sign of that channel's L1 derivative is rounding's, a difference of up to
    ``2 |fg - bg| / (sum(w) + 1e-8)``, also where ``p`` is exactly 0 or 1: ``torch.compile``
    on CUDA divides approximately (see dim.rounding_slack), so its residual there may be an ulp
    off the 0 that eager and fused find."""
    p = case.pred.detach().double()
    fg, bg, image = (case.ref(n).double() for n in ("fg", "bg", "image"))
    w = case.ref("weight").double()
    near = ((p * fg + (1.0 - p) * bg - image).abs() < 1e-6).double()
    slack = 2.0 * ((fg - bg).abs() * near).sum(1, keepdim=True)
    return slack * w / (w.sum() + GUARD)


def check_composition(case, contender, got, expected) -> str:
    """float32: loss rtol 1e-4; gradient elementwise rtol 1e-4, atol 1e-5 x max|grad|, plus
    the rounding slack. bf16+uint8: the trainers' ``bg * (1 - alpha)`` rounds ``1 - alpha``
    to bfloat16 (``fg * alpha`` is promoted to float32), fused computes in float32: loss
    rtol 1e-2 (measured 1.1e-3) and the gradient's relative L2 error <= 0.2 (measured 0.105;
    elementwise agreement means nothing where a rounding flips a residual's sign)."""
    (loss, grad), (want_loss, want_grad) = got, expected
    try:
        if case.pred.dtype == torch.bfloat16:
            return (check.loss_close(loss, want_loss, rtol=1e-2) + ", bf16 compute, "
                    + check.gradient_rel_l2(grad, want_grad, 0.2))
        return (check.loss_close(loss, want_loss) + ", "
                + check.gradient_close(grad, want_grad, rtol=1e-4, slack=rounding_slack(case)))
    except AssertionError as err:
        raise check.mismatch(case, contender, err) from None


BENCH = LossBench(
    name="composition",
    title="composition loss (GCA/MGMatting/MatteFormer: L1, unknown region)",
    make_case=build_case,
    contenders={"eager": eager, "compiled": compiled_eager, "fused": fused},
    cases={
        "quick": grid("2x128x128", ("float32",)),
        "default": grid("2x512x512", ("float32",)),  # with the other losses: <= 3 min on 2 cores
        "full": grid("16x320x320,8x512x512,1x2048x2048", DTYPES),
    },
    bytes_moved=inputs_plus_gradient,  # float32: pred, 3 colours, weight read + gradient written
    check=check_composition,
)
