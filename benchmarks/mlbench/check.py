"""Every contender against the fused one, before anything is timed.

A contender's output is a ``(value, grad)`` pair: the loss and its gradient w.r.t. ``pred``
(for an op with no gradient, its output and None). A mismatch raises MismatchError and
bench.py exits non-zero: a faster wrong answer is not a result.
"""
from __future__ import annotations

import contextlib

import torch

from .cases import Case


class MismatchError(AssertionError):
    pass


@contextlib.contextmanager
def ieee_float32():
    """Checks run in IEEE float32: on CUDA, cuDNN convolutions (the pyramid's and Sobel's
    ``F.conv2d`` in eager and compiled) default to TF32, a 10-bit mantissa, whose error flips
    the signs of L1 residuals near 0 far more often than float32's (measured on an H200:
    the Laplacian's gradient 4% off fused in relative L2). The timing keeps torch's
    defaults, as the code bases train with them."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def outputs(fn, case: Case) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``fn()``'s value and, when the case has a ``pred``, the gradient backward gives it."""
    pred = case.pred
    if pred is None:
        return fn().detach().clone(), None
    pred.grad = None
    loss = fn()
    loss.backward()
    grad = pred.grad.detach().clone()
    pred.grad = None
    return loss.detach().clone(), grad


def gradient_close(grad, want, *, rtol: float, atol_of_max: float = 1e-5, slack=None) -> str:
    """Elementwise ``|grad - want| <= atol + rtol |want| + slack`` with ``atol = atol_of_max *
    max|want|`` (a mean loss's gradient is O(1/N)); ``slack`` is an optional per-element
    allowance for what rounding alone decides. Returns how many elements used the slack."""
    if grad.dtype != want.dtype:
        raise AssertionError(f"gradient dtype {grad.dtype} != {want.dtype}")
    w = want.double()
    atol = atol_of_max * (w.abs().max().item() or 1.0)
    diff = (grad.double() - w).abs()
    tight = atol + rtol * w.abs()
    allowed = tight if slack is None else tight + slack
    bad = diff > allowed
    if bad.any():
        i = tuple(int(v) for v in torch.nonzero(bad)[0])
        extra = "" if slack is None else f" (slack {slack[i].item():.3g})"
        raise AssertionError(
            f"gradient: {int(bad.sum())} of {bad.numel()} elements differ beyond rtol {rtol:g}, "
            f"atol {atol:.3g}{'' if slack is None else ' and the rounding slack'}; first at {i}: "
            f"{grad[i].item():.9g} vs fused {want[i].item():.9g}{extra}")
    if slack is None:
        return f"grad rtol {rtol:g}"
    return (f"grad rtol {rtol:g} ({int((diff > tight).sum())} of {int((slack > 0).sum())} "
            f"rounding-sensitive elements used their slack)")


def gradient_rel_l2(grad, want, bound: float) -> str:
    """``||grad - want|| / ||want|| <= bound``: for a contender that computes in low precision,
    where a rounding may flip the sign of a residual and elementwise agreement means nothing."""
    w = want.double()
    rel = ((grad.double() - w).norm() / w.norm()).item()
    if not rel <= bound:
        raise AssertionError(f"gradient relative L2 error {rel:.3g} > {bound:g}")
    return f"grad rel-L2 {rel:.2g} <= {bound:g}"


def loss_close(value, want, *, rtol: float = 1e-4, atol: float = 1e-6) -> str:
    torch.testing.assert_close(value.double(), want.double(), rtol=rtol, atol=atol)
    return f"loss rtol {rtol:g}"


def standard(case: Case, contender: str, got, expected) -> str:
    """Loss rtol 1e-4; gradient rtol 1e-4 (float32) or 1.6e-2 (one bfloat16 rounding step)."""
    try:
        how = loss_close(got[0], expected[0])
        if expected[1] is not None:
            rtol = 1.6e-2 if expected[1].dtype == torch.bfloat16 else 1e-4
            how += ", " + gradient_close(got[1], expected[1], rtol=rtol)
        return how
    except AssertionError as err:
        raise mismatch(case, contender, err) from None


def exact(case: Case, contender: str, got, expected) -> str:
    """Bit-for-bit the same output (for integer ops such as trimaps)."""
    a, b = got[0].cpu(), expected[0].cpu()
    if a.shape != b.shape or a.dtype != b.dtype:
        raise mismatch(case, contender, f"{a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}")
    if not torch.equal(a, b):
        raise mismatch(case, contender, f"differs at {int((a != b).sum())} of {a.numel()} elements")
    return "bit-for-bit"


def mismatch(case: Case, contender: str, err) -> MismatchError:
    return MismatchError(f"{contender} does not match fused on {case.label}: {err}")
