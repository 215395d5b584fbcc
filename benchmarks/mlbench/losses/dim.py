"""The Deep Image Matting loss (alpha-prediction + compositional), mattingloss.dim_loss.

Contenders, all computing the same loss and its gradient w.r.t. ``pred_alpha``:

* ``naive``    the seed's ``gen_loss`` as written (mattingloss.reference.seed_total_loss):
               masks built on the CPU and copied to the device on every call.
* ``eager``    the on-device eager formula with the torch ops it uses
               (mattingloss.reference.dim_loss_reference).
* ``compiled`` ``torch.compile`` of eager, compiled once per case before timing.
* ``fused``    mattingloss.dim_loss: the forward also writes the gradient, the backward
               only scales it.
"""
from __future__ import annotations

import torch

import mattingloss
from mattingloss.reference import dim_loss_reference, seed_total_loss

from .. import check
from ..cases import grid, inputs_plus_gradient, make_case
from ..compile import compiled
from ..spec import LossBench

WL, EPS = 0.5, 1e-6
INPUTS = ("pred", "alpha", "trimap", "image", "fg", "bg")  # dim_loss's argument order
DTYPES = ("float32", "bf16+uint8")


def args(case):
    return tuple(case[name] for name in INPUTS)


def naive(case):
    p, a, t, img, fg, bg = args(case)
    return lambda: seed_total_loss(img, a, fg, bg, t, p, wl=WL)


def eager(case):
    return lambda: dim_loss_reference(*args(case), wl=WL, eps=EPS)


def compiled_eager(case):
    fn = compiled(dim_loss_reference, case)
    return lambda: fn(*args(case), wl=WL, eps=EPS)


def fused(case):
    return lambda: mattingloss.dim_loss(*args(case), wl=WL, eps=EPS)


def rounding_slack(case) -> torch.Tensor:
    """Per pixel, how far two correct float32 gradients may differ through rounding alone.

    ``d/dx sqrt(x^2 + eps^2) = x / sqrt(x^2 + eps^2)`` swings from -1 to 1 within a few eps
    (1e-6) of ``x = 0``. Where a residual is within float32 rounding of zero -- ``|p - alpha/255|
    < 2e-5``, or ``|p*fg + (1-p)*bg - image| < 1e-3`` for a channel (float32 resolves 0..255
    data to 1.5e-5, and implementations order the composite differently) -- that term's
    derivative is decided by rounding, and two correct kernels may disagree by up to twice the
    term's weight: ``2*wl`` for the alpha term, ``2*(1-wl)*|fg-bg|/(3*255)`` per channel, times
    1/N. That holds where ``p`` is exactly 0 or 1 too: ``torch.compile`` on CUDA computes
    ``alpha / 255`` with an approximate division (measured on an H200: ``255 / 255`` one ulp
    off 1, a residual of -6e-8 where eager and fused find 0). Elsewhere the slack is 0.
    """
    p = case["pred"].detach().double()
    a = case["alpha"].double() / 255.0
    fg, bg, image = case["fg"].double(), case["bg"].double(), case["image"].double()
    trimap = case["trimap"]
    unknown = (trimap == 128).double()
    near_alpha = ((p - a).abs() < 2e-5).double()
    near_comp = ((p * fg + (1.0 - p) * bg - image).abs() < 1e-3).double()
    slack = 2 * WL * near_alpha + 2 * (1 - WL) / (3 * 255.0) * ((fg - bg).abs() * near_comp).sum(1, keepdim=True)
    n = (trimap == 128).sum().clamp(min=1).double()
    return slack * unknown / n


def check_dim(case, contender, got, expected) -> str:
    """float32: loss rtol 1e-4; gradient rtol 1e-4, atol 1e-5 x max|grad|, plus the rounding
    slack. bf16+uint8: eager and compiled compute in float32 like fused, so the loss keeps that
    tolerance and the bfloat16 gradient gets one bfloat16 rounding step (rtol 1.6e-2, the slack
    rounded too). naive computes the composite in bfloat16 (``bf16 * uint8`` stays bfloat16):
    loss rtol 1e-2 and the gradient's relative L2 error <= 0.1."""
    (loss, grad), (want_loss, want_grad) = got, expected
    bf16 = case["pred"].dtype == torch.bfloat16
    try:
        if bf16 and contender == "naive":
            return (check.loss_close(loss, want_loss, rtol=1e-2) + ", bf16 compute, "
                    + check.gradient_rel_l2(grad, want_grad, 0.1))
        rtol = 1.6e-2 if bf16 else 1e-4
        slack = rounding_slack(case) * (1 + rtol if bf16 else 1)
        return check.loss_close(loss, want_loss) + ", " + check.gradient_close(grad, want_grad, rtol=rtol, slack=slack)
    except AssertionError as err:
        raise check.mismatch(case, contender, err) from None


def targets(device_type: str, summary: list[dict]) -> list[dict]:
    """The project's targets for this loss, evaluated (not enforced) on the rows that exist."""
    from ..report import target

    if device_type == "cpu":
        sel = [e for e in summary if e["size"] == "16x320x320" and e["dtype"] == "float32"]
        where = "CPU 16x320x320 float32 full"
        return [target(f"{where}: fused >= 10x eager", sel, "vs_eager", 10.0),
                target(f"{where}: fused >= 5x compiled", sel, "vs_compiled", 5.0),
                target(f"{where}: fused >= 50% copy bandwidth", sel, "copy_fraction", 0.5),
                target(f"{where}: peak extra memory <= 1.5x gradient", sel, "peak_over_grad", 1.5,
                       higher_is_better=False)]
    big = [e for e in summary if e["pixels"] >= 4 * 2**20 and e["dtype"] == "float32"]
    where = "GPU float32 >= 4M pixels full"
    return [target(f"{where}: fused >= 85% copy bandwidth", big, "copy_fraction", 0.85),
            target(f"{where}: fused >= 3x compiled", big, "vs_compiled", 3.0),
            target(f"{where}: fused >= 30x naive", big, "vs_naive", 30.0)]


BENCH = LossBench(
    name="dim",
    title="DIM loss (alpha-prediction + compositional)",
    make_case=lambda size, dtype, device: make_case("dim", size, dtype, device, INPUTS),
    contenders={"naive": naive, "eager": eager, "compiled": compiled_eager, "fused": fused},
    cases={
        "quick": grid("16x320x320", DTYPES),
        "default": grid("16x320x320", DTYPES),  # a DIM training batch; 2 cores: ~1 min
        "default/cuda": grid("16x320x320,1x2048x2048", DTYPES),  # and one of 4M pixels
        "full": grid("16x320x320,8x512x512,4x1024x1024,1x2048x2048", DTYPES),
    },
    bytes_moved=inputs_plus_gradient,  # 48 bytes/pixel read + 4 written in float32
    check=check_dim,
    targets=targets,
)
