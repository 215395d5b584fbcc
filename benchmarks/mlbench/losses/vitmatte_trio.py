"""ViTMatte's unknown L1, known L1 and gradient penalty in one pass,
mattingloss.vitmatte_alpha_losses (the loss timed and checked is its ``total``).

Contenders, all computing the same loss and its gradient w.r.t. ``pred``:

* ``eager``    ViTMatte's three terms (``MattingCriterion.unknown_l1_loss``,
               ``known_l1_loss``, ``loss_gradient_penalty``) with the torch ops they use,
               summed: mattingloss.reference ``vitmatte_sample_map``,
               ``vitmatte_unknown_l1_loss``, ``vitmatte_known_l1_loss``,
               ``gradient.vitmatte_gradient_penalty``. The sample map is built inside the
               call, as ViTMatte's forward does.
* ``compiled`` ``torch.compile`` of eager, compiled once per case before timing.
* ``fused``    mattingloss.vitmatte_alpha_losses(pred, alpha, trimap)[0].

float32 row: alpha in [0, 1], the trimap 0 / 0.5 / 1 as ViTMatte's model sees it. bf16+uint8
row: fused reads the uint8 matte (``alpha_scale=255``) and the uint8 0/128/255 trimap
(``unknown_value=128``); eager and compiled get the float32 copies (alpha / 255, trimap
0 / 0.5 / 1, Case.extras) and run under bfloat16 autocast (see _common.amp). Traffic: pred,
alpha and trimap read once, the gradient written once (the default bytes_moved).
"""
from __future__ import annotations

import mattingloss
from mattingloss.reference.alpha import vitmatte_known_l1_loss, vitmatte_sample_map, vitmatte_unknown_l1_loss
from mattingloss.reference.gradient import vitmatte_gradient_penalty

from ..cases import grid, inputs_plus_gradient, make_case
from ..compile import compiled
from ..spec import LossBench
from ._common import amp, check_kinked, cpu_targets, unit, vitmatte_trimap

INPUTS = ("pred", "alpha", "trimap")
DTYPES = ("float32", "bf16+uint8")
TARGET_SIZE = "8x512x512"


def build_vitmatte_case(loss, size, dtype, device):
    """alpha in [0, 1] and the 0 / 0.5 / 1 trimap; for uint8 targets those are the
    references' copies and the case keeps the uint8 tensors (vitmatte.py shares this)."""
    case = make_case(loss, size, dtype, device, INPUTS)
    floats = {"alpha": unit(case["alpha"]), "trimap": vitmatte_trimap(case["trimap"])}
    if case["alpha"].dtype.is_floating_point:
        case.tensors.update(floats)
    else:
        case.extras.update(floats)
    return case


def vitmatte_trio_reference(pred, alpha, trimap):
    """ViTMatte's unknown L1 + known L1 + gradient penalty (weights 1)."""
    sample_map = vitmatte_sample_map(trimap)
    return (vitmatte_unknown_l1_loss(sample_map, pred, alpha) + vitmatte_known_l1_loss(sample_map, pred, alpha)
            + vitmatte_gradient_penalty(sample_map, pred, alpha))


def ref_call(fn, case):
    pred, alpha, trimap = case.pred, case.ref("alpha"), case.ref("trimap")

    def run():
        with amp(pred):
            return fn(pred, alpha, trimap)
    return run


def eager(case):
    return ref_call(vitmatte_trio_reference, case)


def compiled_eager(case):
    return ref_call(compiled(vitmatte_trio_reference, case), case)


def fused(case):
    pred, alpha, trimap = (case[n] for n in INPUTS)
    if alpha.dtype.is_floating_point:
        return lambda: mattingloss.vitmatte_alpha_losses(pred, alpha, trimap)[0]
    return lambda: mattingloss.vitmatte_alpha_losses(pred, alpha, trimap, alpha_scale=255.0, unknown_value=128)[0]


def check_trio(case, contender, got, expected) -> str:
    """See _common.check_kinked (the Sobel responses' L1). float32: gradient rel-L2 <= 5e-3
    (measured up to 5.2e-4). bf16+uint8: eager's Sobel responses in bfloat16 under autocast,
    fused's in float32: loss rtol 1e-2 (measured 2.6e-4), rel-L2 <= 0.15 (measured 0.056)."""
    return check_kinked(case, contender, got, expected, bound_f32=5e-3, bound_bf16=0.15)


def targets(device_type: str, summary: list[dict]) -> list[dict]:
    if device_type != "cpu":
        return []
    sel = [e for e in summary if e["size"] == TARGET_SIZE and e["dtype"] == "float32"]
    return cpu_targets(f"CPU {TARGET_SIZE} float32 full", sel, 30.0, copy_fraction=0.4)


BENCH = LossBench(
    name="vitmatte_trio",
    title="ViTMatte unknown L1 + known L1 + gradient penalty",
    make_case=lambda size, dtype, device: build_vitmatte_case("vitmatte_trio", size, dtype, device),
    contenders={"eager": eager, "compiled": compiled_eager, "fused": fused},
    cases={
        "quick": grid("2x128x128", ("float32",)),
        "default": grid("1x512x512", ("float32",)),  # eager only (leave_out): <= 3 min in all
        "full": grid(f"{TARGET_SIZE},1x2048x2048", DTYPES),
    },
    bytes_moved=inputs_plus_gradient,
    check=check_trio,
    targets=targets,
    leave_out={"default": ("compiled",)},  # torch.compile of this graph: ~1 min on 2 cores
)
