"""ViTMatte's whole objective (unknown L1, known L1, Laplacian, gradient penalty),
mattingloss.presets.vitmatte(); the loss timed and checked is ``["total"]``.

Contenders, all computing the same loss and its gradient w.r.t. ``pred``:

* ``eager``    ``MattingCriterion`` of ViTMatte with its four losses, summed, with the torch
               ops they use (mattingloss.reference.vitmatte_criterion(pred, alpha, trimap)).
* ``compiled`` ``torch.compile`` of eager, compiled once per case before timing.
* ``fused``    mattingloss.presets.vitmatte(): vitmatte_alpha_losses + laplacian_loss.

Inputs as ViTMatte's model sees them: alpha in [0, 1], the trimap 0 / 0.5 / 1. float32 row:
everything float32. bf16 row: a bfloat16 prediction, float32 targets; eager and compiled run
under bfloat16 autocast (see _common.amp: ViTMatte's criterion runs in the model's forward).
"""
from __future__ import annotations

import mattingloss.presets
from mattingloss.reference import vitmatte_criterion

from ..cases import grid, inputs_plus_gradient
from ..compile import compiled
from ..spec import LossBench
from ._common import amp, check_kinked, cpu_targets
from .vitmatte_trio import build_vitmatte_case

DTYPES = ("float32", "bf16")
TARGET_SIZE = "8x512x512"
CRITERION = mattingloss.presets.vitmatte()


def vitmatte_total(pred, alpha, trimap):
    return vitmatte_criterion(pred, alpha, trimap)["total"]


def ref_call(fn, case):
    pred, alpha, trimap = case.pred, case["alpha"], case["trimap"]

    def run():
        with amp(pred):
            return fn(pred, alpha, trimap)
    return run


def eager(case):
    return ref_call(vitmatte_total, case)


def compiled_eager(case):
    return ref_call(compiled(vitmatte_total, case), case)


def fused(case):
    pred, alpha, trimap = case.pred, case["alpha"], case["trimap"]
    return lambda: CRITERION(pred, alpha, trimap)["total"]


def check_vitmatte(case, contender, got, expected) -> str:
    """See _common.check_kinked (Sobel and pyramid responses under L1). float32: gradient
    rel-L2 <= 5e-3 (measured up to 5.1e-4). bf16: eager's filters in bfloat16, fused's in
    float32: loss rtol 1e-2 (measured 1.4e-3), rel-L2 <= 0.15 (measured 0.065)."""
    return check_kinked(case, contender, got, expected, bound_f32=5e-3, bound_bf16=0.15)


def targets(device_type: str, summary: list[dict]) -> list[dict]:
    if device_type != "cpu":
        return []
    sel = [e for e in summary if e["size"] == TARGET_SIZE and e["dtype"] == "float32"]
    return cpu_targets(f"CPU {TARGET_SIZE} float32 full", sel, 30.0)


BENCH = LossBench(
    name="vitmatte",
    title="ViTMatte objective (preset: unknown/known L1, Laplacian, gradient penalty)",
    make_case=lambda size, dtype, device: build_vitmatte_case("vitmatte", size, dtype, device),
    contenders={"eager": eager, "compiled": compiled_eager, "fused": fused},
    cases={
        "quick": grid("2x128x128", ("float32",)),
        "default": grid("1x512x512", ("float32",)),  # eager only (leave_out): <= 3 min in all
        "full": grid(TARGET_SIZE, DTYPES),
    },
    bytes_moved=inputs_plus_gradient,  # pred, alpha, trimap read once + the gradient written
    check=check_vitmatte,
    targets=targets,
    leave_out={"default": ("compiled",)},  # torch.compile of this graph: ~1 min on 2 cores
)
