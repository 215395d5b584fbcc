"""RobustVideoMatting's objective (alpha L1, Laplacian and coherence; foreground L1 and
coherence), mattingloss.presets.rvm(); the loss timed and checked is ``["total"]``.

Contenders, all computing the same loss and its gradient w.r.t. ``pred`` (= ``pred_pha``):

* ``eager``    RVM's ``matting_loss`` with the torch ops it uses, its ``pha_laplacian`` RVM's
               ``laplacian_loss`` over the B*T frames (mattingloss.reference.rvm_matting_loss
               with pha_laplacian=rvm_laplacian_loss(pred_pha.flatten(0, 1), true_pha.flatten(0, 1))).
* ``compiled`` ``torch.compile`` of eager, compiled once per case before timing.
* ``fused``    mattingloss.presets.rvm(): video_matting_losses + laplacian_loss.

Video inputs (B, T, C, H, W) with T = 4 frames: the size ``2x288x512`` is B = 2 clips of 4
frames of 288 x 512 (the inputs are the matting inputs of a batch of B*T, reshaped; the
report's pixel count is B*H*W). ``pred_pha`` (= ``pred``, requires grad) in [0, 1];
``pred_fgr`` is a plain input without grad (the true foreground plus noise): the gradient
checked and timed is the alpha's alone, and no contender spends time on a foreground
gradient. ``true_fgr``, ``true_pha`` in [0, 1], float32. Rows: float32; bf16 (``pred_pha`` and
``pred_fgr`` bfloat16, the targets float32; every contender takes them as they are -- RVM's
formula runs in mixed dtypes without autocast). Traffic (the default bytes_moved): the four
inputs read once, the alpha's gradient written once.
"""
from __future__ import annotations

import torch

import mattingloss.presets
from mattingloss.reference import rvm_laplacian_loss, rvm_matting_loss

from ..cases import Case, DTYPE_ROWS, grid, inputs_plus_gradient, matting_inputs, parse_size
from ..compile import compiled
from ..spec import LossBench
from ._common import check_kinked, cpu_targets

FRAMES = 4
DTYPES = ("float32", "bf16")
TARGET_SIZE = "2x288x512"
CRITERION = mattingloss.presets.rvm()


def build_case(size, dtype, device, seed=0) -> Case:
    batch, height, width = parse_size(size) if isinstance(size, str) else size
    pred_dtype, target_dtype = DTYPE_ROWS[dtype]
    if pred_dtype is None or not target_dtype.is_floating_point:
        raise ValueError(f"rvm: dtype row {dtype!r} not supported (float targets only)")
    data = matting_inputs(batch * FRAMES, height, width, seed)
    gen = torch.Generator().manual_seed(seed + 1)

    def video(t, dtype_):
        return t.reshape(batch, FRAMES, t.shape[1], height, width).to(dtype_).to(device).contiguous()

    true_fgr = data["fg"] / 255.0
    pred_fgr = (true_fgr + 0.05 * torch.randn(true_fgr.shape, generator=gen)).clamp(0.0, 1.0)
    tensors = {"pred_fgr": video(pred_fgr, pred_dtype), "pred": video(data["pred"], pred_dtype),
               "true_fgr": video(true_fgr, target_dtype), "true_pha": video(data["alpha"] / 255.0, target_dtype)}
    tensors["pred"].requires_grad_(True)
    return Case("rvm", batch, height, width, dtype, tensors)


def rvm_total(pred_fgr, pred_pha, true_fgr, true_pha):
    lap = rvm_laplacian_loss(pred_pha.flatten(0, 1), true_pha.flatten(0, 1))
    return rvm_matting_loss(pred_fgr, pred_pha, true_fgr, true_pha, pha_laplacian=lap)["total"]


def args(case):
    return case["pred_fgr"], case.pred, case["true_fgr"], case["true_pha"]


def eager(case):
    return lambda: rvm_total(*args(case))


def compiled_eager(case):
    fn = compiled(rvm_total, case)
    return lambda: fn(*args(case))


def fused(case):
    return lambda: CRITERION(*args(case))["total"]


def check_rvm(case, contender, got, expected) -> str:
    """See _common.check_kinked (the L1 of the pyramid responses). float32: gradient rel-L2
    <= 5e-3 (measured up to 2.1e-4). bf16: eager's pyramid of pred and its frame differences
    in bfloat16, fused's in float32: loss rtol 1e-2 (measured 3.6e-3), rel-L2 <= 0.3
    (measured 0.17)."""
    return check_kinked(case, contender, got, expected, bound_f32=5e-3, bound_bf16=0.3)


def targets(device_type: str, summary: list[dict]) -> list[dict]:
    if device_type != "cpu":
        return []
    sel = [e for e in summary if e["size"] == TARGET_SIZE and e["dtype"] == "float32"]
    return cpu_targets(f"CPU {TARGET_SIZE} (T={FRAMES}) float32 full", sel, 20.0)


BENCH = LossBench(
    name="rvm",
    title=f"RVM objective (preset; B x T={FRAMES} x C x H x W, pred_fgr without grad)",
    make_case=build_case,
    contenders={"eager": eager, "compiled": compiled_eager, "fused": fused},
    cases={
        "quick": grid("1x64x128", ("float32",)),
        "default": grid("1x288x512", ("float32",)),
        "full": grid(TARGET_SIZE, DTYPES),
    },
    bytes_moved=inputs_plus_gradient,
    check=check_rvm,
    targets=targets,
    leave_out={"default": ("compiled",)},  # torch.compile of this graph: ~1 min on 2 cores
)
