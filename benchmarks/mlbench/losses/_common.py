"""Pieces the newer loss files share: targets in [0, 1] as the code bases hold them, the
mixed-precision context of an eager reference, and the check of a loss with L1 kinks."""
from __future__ import annotations

import contextlib

import torch

from .. import check


def unit(t: torch.Tensor) -> torch.Tensor:
    """A 0..255 input as the float32 [0, 1] tensor a code base's data pipeline holds."""
    return (t.float() / 255.0).contiguous()


def vitmatte_trimap(trimap255: torch.Tensor) -> torch.Tensor:
    """A 0/128/255 trimap as ViTMatte's model sees it: float32 0 / 0.5 / 1 (unknown 0.5)."""
    t = trimap255.float()
    return torch.where(t == 128, 0.5, t / 255.0).contiguous()


def amp(pred: torch.Tensor):
    """``torch.autocast`` to bfloat16 for a bfloat16 prediction, else nothing.

    A bfloat16 prediction comes from a net trained under autocast, and the code bases compute
    their loss inside that context (ViTMatte's criterion runs in the model's forward): there
    ``F.conv2d`` of a float32 target with the bfloat16 kernel built from the prediction runs
    in bfloat16 instead of failing on the mixed dtypes, and the losses run in float32."""
    if pred.dtype != torch.bfloat16:
        return contextlib.nullcontext()
    return torch.autocast(pred.device.type, dtype=torch.bfloat16)


def check_kinked(case, contender, got, expected, *, bound_f32: float, bound_bf16: float,
                 loss_rtol_bf16: float = 1e-2) -> str:
    """Loss rtol 1e-4 (float32 prediction) or ``loss_rtol_bf16``; the gradient's relative L2
    error against fused <= ``bound_f32`` / ``bound_bf16``.

    Why not elementwise: these losses take |x| of residuals that are sums of filtered pixels
    (Sobel or Gaussian-pyramid responses, composites), and the implementations sum them in
    different orders. Where a residual is within rounding of 0 its sign -- hence the sign of
    every gradient element its filter reaches -- is decided by rounding, so a few scattered
    elements of two correct gradients differ by the full weight of that term. The relative
    L2 error of the whole gradient stays small (float32: measured 1e-7 to 6e-4 over the
    full grid; the bounds are about 10x that), while a wrong term or a wrong scale exceeds
    it. A bfloat16 prediction makes the eager code compute in bfloat16 (the pyramid's or the
    Sobel kernel in the prediction's dtype, ``1 - alpha``, autocast), fused in float32: its
    result differs by bfloat16's rounding, not by a sign here and there, and the bounds are
    about twice what the full grid measured (each file says the figures).
    """
    (loss, grad), (want_loss, want_grad) = got, expected
    bf16 = case.pred.dtype == torch.bfloat16
    try:
        how = check.loss_close(loss, want_loss, rtol=loss_rtol_bf16 if bf16 else 1e-4)
        return how + ", " + check.gradient_rel_l2(grad, want_grad, bound_bf16 if bf16 else bound_f32)
    except AssertionError as err:
        raise check.mismatch(case, contender, err) from None


def cpu_targets(where: str, entries: list[dict], vs_compiled: float, copy_fraction=None) -> list[dict]:
    """The issue's CPU targets for one case (reported, not enforced)."""
    from ..report import target

    out = [target(f"{where}: fused >= {vs_compiled:g}x compiled", entries, "vs_compiled", vs_compiled)]
    if copy_fraction is not None:
        out.append(target(f"{where}: fused >= {copy_fraction:.0%} copy bandwidth", entries,
                          "copy_fraction", copy_fraction))
    return out
