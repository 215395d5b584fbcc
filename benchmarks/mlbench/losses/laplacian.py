"""The Laplacian-pyramid L1 loss (RobustVideoMatting's convention, also ViTMatte's,
DiffMatte's and MatAnyone's), mattingloss.laplacian_loss.

Contenders, all computing the same loss and its gradient w.r.t. ``pred``:

* ``eager``    RVM's ``laplacian_loss(pred, true)`` with the torch ops it uses
               (mattingloss.reference.rvm_laplacian_loss): two 5-level pyramids of 5x5
               convolutions, then an L1 per level.
* ``compiled`` ``torch.compile`` of eager, compiled once per case before timing.
* ``fused``    mattingloss.laplacian_loss (default convention ``"rvm"``).

Inputs: ``pred`` in [0, 1] and the true alpha. float32 row: both float32, alpha in [0, 1].
bf16+uint8 row: fused reads the uint8 matte as stored (``gt_scale=255``); eager and compiled
get the float32 [0, 1] copy a code base's pipeline holds, made with the case (Case.extras).
Traffic (``bytes_moved``, the default): pred and gt read once, the gradient written once --
the level-0 traffic; the coarser levels add a third of it, which the kernel may keep in cache.
"""
from __future__ import annotations

import mattingloss
from mattingloss.reference import rvm_laplacian_loss

from ..cases import grid, inputs_plus_gradient, make_case
from ..compile import compiled
from ..spec import LossBench
from ._common import check_kinked, cpu_targets, unit

INPUTS = ("pred", "alpha")
DTYPES = ("float32", "bf16+uint8")
TARGET_SIZE = "8x512x512"


def build_case(size, dtype, device):
    case = make_case("laplacian", size, dtype, device, INPUTS)
    if dtype == "float32":
        case.tensors["alpha"] = unit(case["alpha"])
    else:  # uint8 for fused, the float [0, 1] copy for the references
        case.extras["alpha"] = unit(case["alpha"])
    return case


def gt_scale(case):
    return 255.0 if case["alpha"].dtype.is_floating_point is False else None


def eager(case):
    return lambda: rvm_laplacian_loss(case.pred, case.ref("alpha"))


def compiled_eager(case):
    fn = compiled(rvm_laplacian_loss, case)
    return lambda: fn(case.pred, case.ref("alpha"))


def fused(case):
    scale = gt_scale(case)
    return lambda: mattingloss.laplacian_loss(case.pred, case["alpha"], gt_scale=scale)


def check_laplacian(case, contender, got, expected) -> str:
    """See _common.check_kinked. float32: gradient rel-L2 <= 2e-2 (measured: eager up to
    5.7e-4 at 8x512x512, compiled 3.2e-3 at 2x512x512: a few thousand coefficients of the
    five levels sit within rounding of 0, and inductor reorders the sums more).
    bf16+uint8: eager builds pred's pyramid in bfloat16 (the kernel in pred's dtype), fused in
    float32: loss rtol 3e-2 (measured 1.2e-2), gradient rel-L2 <= 0.5 (measured 0.27)."""
    return check_kinked(case, contender, got, expected, bound_f32=2e-2, bound_bf16=0.5, loss_rtol_bf16=3e-2)


def targets(device_type: str, summary: list[dict]) -> list[dict]:
    if device_type != "cpu":
        return []
    sel = [e for e in summary if e["size"] == TARGET_SIZE and e["dtype"] == "float32"]
    return cpu_targets(f"CPU {TARGET_SIZE} float32 full", sel, 30.0)


BENCH = LossBench(
    name="laplacian",
    title="Laplacian-pyramid L1 (RVM convention, 5 levels)",
    make_case=build_case,
    contenders={"eager": eager, "compiled": compiled_eager, "fused": fused},
    cases={
        "quick": grid("2x128x128", ("float32",)),
        "default": grid("1x512x512", ("float32",)),  # eager only (leave_out): <= 3 min in all
        "full": grid(f"{TARGET_SIZE},1x2048x2048", DTYPES),
    },
    bytes_moved=inputs_plus_gradient,
    check=check_laplacian,
    targets=targets,
    leave_out={"default": ("compiled",)},  # torch.compile of this graph: ~1 min on 2 cores
)
