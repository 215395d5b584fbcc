"""Loads the compiled kernels (mattingloss._C) and holds what every loss's
autograd Function shares: the op handles, the accumulation dtype and the
backward that scales a gradient stored by the forward pass.

Each op's schema is written once, in csrc/ops.cpp; Python checks the build's
ABI_VERSION instead of repeating the schemas, so a build from older sources
fails at import with a message that says to rebuild.
"""
import torch

from . import _codes as codes

try:
    from . import _C  # noqa: F401  (registers torch.ops.mattingloss.*)
except ImportError as error:  # missing, or built against another torch
    raise ImportError(
        f"mattingloss: the compiled kernels (mattingloss._C) could not be loaded ({error}). "
        "Build them from the repository root with\n"
        "    pip install torch ninja \"setuptools>=77\" && pip install --no-build-isolation -e .\n"
        "(re-run after changing torch or the sources in csrc/)."
    ) from error

_STALE = ("mattingloss: the compiled kernels are stale ({}). "
          "Rebuild with `pip install --no-build-isolation -e .` from the repository root.")


# Bumped in csrc/ops.cpp and here together whenever a schema or a code changes.
ABI_VERSION = 4


def _build_abi() -> int:
    try:
        return int(torch.ops.mattingloss.abi_version())
    except (AttributeError, RuntimeError):
        return 1  # builds from before the version existed


if _build_abi() != ABI_VERSION:
    raise ImportError(_STALE.format(f"their ABI version is {_build_abi()}, this Python code's is {ABI_VERSION}"))


def load_op(name: str):
    """torch.ops.mattingloss.<name>.default: every loss module loads its ops through here."""
    try:
        return getattr(torch.ops.mattingloss, name).default
    except (AttributeError, RuntimeError):
        raise ImportError(_STALE.format(f"they have no op {name}")) from None


scale_gradient_ = load_op("scale_gradient_")


@torch.library.register_fake("mattingloss::scale_gradient_")
def _scale_gradient_fake(grads, grad_output, scale=None, shared_scale=True):
    return None


def accumulation_dtype(t: torch.Tensor) -> torch.dtype:
    """What the kernels compute in for this prediction (or buffer): float64 for
    float64, float32 for every other dtype."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


# Read once: a plain bool is free to check inside torch.compile'd code.
_CUDA_KERNELS_BUILT = torch._C._dispatch_has_kernel_for_dispatch_key("mattingloss::dim_loss_forward", "CUDA")


def cuda_kernels_built() -> bool:
    """Whether this build of mattingloss contains the CUDA kernels (they are
    built whenever a CUDA toolkit and a CUDA build of torch are found)."""
    return _CUDA_KERNELS_BUILT


def scaled_gradient_fake(pred, reduction: int, fg, bg, grad_pred: bool, grad_fg: bool, grad_bg: bool) -> tuple:
    """A fake kernel's (loss, scale, grad_pred, grad_fg, grad_bg) for an op of
    ScaledGradientFunction's kind (DIM, composition): the loss (the per-pixel map
    for reduction "none"), the per-sample scale, the requested gradients."""
    acc = accumulation_dtype(pred)
    return (
        pred.new_empty(pred.shape if reduction == codes.NONE else (), dtype=acc),
        pred.new_empty((pred.shape[0],), dtype=acc),
        gradient_like(grad_pred, pred, pred),
        gradient_like(grad_fg, fg, pred),
        gradient_like(grad_bg, bg, pred),
    )


def gradient_like(wanted: bool, like, pred):
    """A fake kernel's gradient output: like's shape where wanted, else empty."""
    return like.new_empty(like.shape) if wanted else pred.new_empty((0,))


def save_scaled_gradients(ctx, reduction: int, scale, stored: dict) -> None:
    """Forward's half of ScaledGradientFunction's backward: the op's per-sample scale and its
    per-pixel gradients, by the index of the input each belongs to."""
    ctx.set_materialize_grads(False)  # no zero tensor for the outputs nobody differentiates
    ctx.indices = tuple(stored)
    ctx.save_for_backward(scale, *stored.values())
    ctx.per_pixel = reduction == codes.NONE
    ctx.shared_scale = reduction in codes.SHARED_SCALE


def save_stored_gradients(ctx, *stored) -> None:
    """Forward's half of `stored_gradients`: the final gradient of each of its first inputs."""
    ctx.set_materialize_grads(False)  # no zero tensor for the outputs nobody differentiates
    ctx.save_for_backward(*stored)


def stored_gradients(ctx, stored, grad_output) -> tuple:
    """The backward of a Function whose forward stored the final gradient of each of
    its first len(stored) inputs: each scaled by grad_output (one value, one per
    sample, or a per-pixel map), None for the other inputs and where no gradient is
    needed."""
    inputs = len(ctx.needs_input_grad)
    if grad_output is None:  # only outputs that carry no gradient were used
        return (None,) * inputs
    wanted = {i: g for i, g in enumerate(stored) if ctx.needs_input_grad[i]}
    return _gradients(wanted, grad_output, None, True, inputs)


class StoredGradientFunction(torch.autograd.Function):
    """A loss's autograd Function whose forward saved (save_stored_gradients) the
    final gradient of its first inputs; its other outputs (components, levels)
    carry no gradient. Subclasses write forward only."""

    @staticmethod
    @torch.autograd.function.once_differentiable  # double backward raises instead of being silently wrong
    def backward(ctx, grad_output, *_not_differentiable):
        return stored_gradients(ctx, ctx.saved_tensors, grad_output)


class ScaledGradientFunction(torch.autograd.Function):
    """A loss's autograd Function whose forward saved (save_scaled_gradients) the
    per-pixel gradients before the reduction's per-sample scale. Subclasses write
    forward only."""

    @staticmethod
    @torch.autograd.function.once_differentiable  # double backward raises instead of being silently wrong
    def backward(ctx, grad_loss, *_not_differentiable):
        inputs = len(ctx.needs_input_grad)
        if grad_loss is None:  # only outputs that carry no gradient were used
            return (None,) * inputs
        scale, *stored = ctx.saved_tensors
        wanted = {i: g for i, g in zip(ctx.indices, stored) if ctx.needs_input_grad[i]}
        # reduction "none": grad_output is the per-pixel map and the scale 1
        return _gradients(wanted, grad_loss, None if ctx.per_pixel else scale, ctx.shared_scale, inputs)


def _gradients(wanted: dict, grad_output, scale, shared_scale: bool, inputs: int) -> tuple:
    """Each stored gradient of `wanted` (by input index) times grad_output and the
    loss's per-sample scale (None: 1), in the gradient's accumulation type, rounded
    once to its dtype.

    When autograd frees the graph after this backward (no retain_graph, as in
    training), the stored buffers are nobody else's: one scale_gradient_ scales them
    all in place, reading the factors on the device (no multiply before it; nothing
    to do where the factor is 1, as for loss.backward() of a loss whose forward
    stored its final gradient), and hands them over, so that forward + backward peak
    at one gradient-sized buffer. Otherwise (retain_graph, gradcheck, compiled
    graphs) they are left intact and the products are new tensors.
    """
    grads = [None] * inputs
    if not wanted:
        return tuple(grads)
    per_pixel = grad_output.dim() > 1  # reduction "none": a map (a 0-dim or (B,) output otherwise)
    if not per_pixel and all(may_overwrite(g) for g in wanted.values()):
        scale_gradient_(list(wanted.values()), grad_output, scale, shared_scale)
        for i, g in wanted.items():
            grads[i] = g
        return tuple(grads)
    factor = grad_output
    if scale is not None:
        factor = scale[0] * grad_output if shared_scale else scale * grad_output
    for i, g in wanted.items():
        f = factor
        if not per_pixel and f.dim() > 0:  # one per sample
            f = f.reshape(-1, *([1] * (g.dim() - 1)))
        if per_pixel and may_overwrite(g):
            grads[i] = g.mul_(f if f.dtype == g.dtype else f.to(g.dtype))
        else:
            acc = accumulation_dtype(g)
            grads[i] = (g.to(acc) * f.to(acc)).to(g.dtype)
    return tuple(grads)


def may_overwrite(stored) -> bool:
    """Whether a backward may overwrite a buffer its forward saved: autograd frees
    the graph after this backward (no retain_graph), outside torch.compile, on a
    plain tensor."""
    return (not torch.compiler.is_compiling() and type(stored) is torch.Tensor
            and not torch._C._autograd._get_current_graph_task_keep_graph())
