"""Loads the compiled kernels and registers what PyTorch needs around them:
the fake (meta) kernel for torch.compile and the autograd formula.

The op computes the loss and the per-pixel gradients in one read of the
inputs; backward only multiplies the stored gradients by the per-sample scale
(1/N for "mean") and grad_output.
"""
import torch

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


def load_op(schema: str):
    """The compiled op with this schema (what the calling Python code was written
    for): a build from older sources fails at import, not with a confusing
    argument error later. Every loss module loads its ops through here."""
    name = schema.split("(", 1)[0].split("::", 1)[1]
    try:
        op = getattr(torch.ops.mattingloss, name).default
    except (AttributeError, RuntimeError):
        raise ImportError(_STALE.format(f"they have no op {name}")) from None
    if str(op._schema) != schema:
        raise ImportError(_STALE.format(f"the schema of {name} differs from this Python code"))
    return op


dim_loss_forward = load_op(
    "mattingloss::dim_loss_forward(Tensor pred_alpha, Tensor alpha, Tensor mask, Tensor? image, "
    "Tensor? fg, Tensor? bg, int mask_mode, float mask_lo, float mask_hi, float wl, float eps, "
    "float alpha_scale, float color_scale, int reduction, bool grad_pred, bool grad_fg, bool grad_bg) "
    "-> (Tensor loss, Tensor components, Tensor scale, Tensor grad_pred, Tensor grad_fg, Tensor grad_bg)"
)

scale_gradient_ = load_op("mattingloss::scale_gradient_(Tensor(a!) grad, Tensor factor) -> ()")


@torch.library.register_fake("mattingloss::scale_gradient_")
def _scale_gradient_fake(grad, factor):
    return None


# Codes shared with csrc/dim_loss.h.
MASK_EQUAL, MASK_RANGE, MASK_WEIGHT = 0, 1, 2
REDUCTIONS = {"mean": 0, "sample": 1, "sum": 2, "none": 3}
NONE = REDUCTIONS["none"]


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


@torch.library.register_fake("mattingloss::dim_loss_forward")
def _dim_loss_forward_fake(pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps,
                           alpha_scale, color_scale, reduction, grad_pred, grad_fg, grad_bg):
    acc = accumulation_dtype(pred)
    loss_shape = pred.shape if reduction == NONE else ()

    def grad(wanted, like):
        return like.new_empty(like.shape) if wanted else pred.new_empty((0,))

    return (
        pred.new_empty(loss_shape, dtype=acc),
        pred.new_empty((2,), dtype=acc),
        pred.new_empty((pred.shape[0],), dtype=acc),
        grad(grad_pred, pred),
        grad(grad_fg, fg),
        grad(grad_bg, bg),
    )


class DIMLossFunction(torch.autograd.Function):
    """Autograd around the op. Forward keeps the per-pixel gradient buffers as
    private intermediates (never returned), so backward may hand them over."""

    @staticmethod
    def forward(ctx, pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps, alpha_scale,
                color_scale, reduction, grad_pred, grad_fg, grad_bg):
        loss, components, scale, g_pred, g_fg, g_bg = dim_loss_forward(
            pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps, alpha_scale,
            color_scale, reduction, grad_pred, grad_fg, grad_bg)
        ctx.mark_non_differentiable(components)
        ctx.save_for_backward(scale, g_pred, g_fg, g_bg)
        ctx.per_pixel = reduction == NONE
        ctx.shared_scale = reduction in (REDUCTIONS["mean"], REDUCTIONS["sum"])
        return loss, components

    @staticmethod
    @torch.autograd.function.once_differentiable  # double backward raises instead of being silently wrong
    def backward(ctx, grad_loss, _grad_components):
        scale, g_pred, g_fg, g_bg = ctx.saved_tensors
        factor = backward_factor(scale, grad_loss, ctx.per_pixel, ctx.shared_scale)
        grads = [None] * 17
        for index, stored in ((0, g_pred), (4, g_fg), (5, g_bg)):
            if ctx.needs_input_grad[index]:
                grads[index] = _scaled(stored, factor)
        return tuple(grads)


def backward_factor(scale, grad_loss, per_pixel: bool, shared_scale: bool):
    """What backward multiplies a stored per-pixel gradient by, from the op's
    per-sample scale: grad_output itself for reduction "none" (the per-pixel map;
    the scale is 1), one 0-dim factor for "mean"/"sum", one per sample for "sample"."""
    if per_pixel:
        return grad_loss
    if shared_scale:
        return scale[0] * grad_loss
    return scale.view(-1, 1, 1, 1) * grad_loss


def stored_gradients(ctx, stored, grad_output, inputs: int) -> tuple:
    """The backward of a Function whose forward stored the final gradient of each of
    its first len(stored) inputs: each scaled by grad_output (see _scaled), None for
    the other inputs and where no gradient is needed."""
    grads = [None] * inputs
    for i, g in enumerate(stored):
        if ctx.needs_input_grad[i]:
            grads[i] = _scaled(g, grad_output)
    return tuple(grads)


def _scaled(stored, factor):
    """stored * factor, in stored's dtype.

    When autograd frees the graph after this backward (no retain_graph, as in
    training), the stored buffer is nobody else's: scale it in place and hand it
    over, so that forward + backward peak at one gradient-sized buffer.
    Otherwise (retain_graph, gradcheck, compiled graphs) leave it intact.

    A float32 factor with dimensions would promote a float16/bfloat16 buffer to
    float32 temporaries; a 0-dim factor is applied in float without them (in place by
    scale_gradient_, which leaves the buffer as it is when the factor is 1, as it is
    for loss.backward() of a loss whose forward stored its final gradient), and a
    per-sample or per-pixel one is first rounded to the buffer's dtype.
    """
    if factor.dim() > 0 and factor.dtype != stored.dtype:
        factor = factor.to(stored.dtype)
    if may_overwrite(stored):
        if factor.dim() == 0:
            scale_gradient_(stored, factor.to(accumulation_dtype(stored)))
            return stored
        return stored.mul_(factor)
    return (stored * factor).to(stored.dtype)


def may_overwrite(stored) -> bool:
    """Whether a backward may overwrite a buffer its forward saved: autograd frees
    the graph after this backward (no retain_graph), outside torch.compile, on a
    plain tensor."""
    return (not torch.compiler.is_compiling() and type(stored) is torch.Tensor
            and not torch._C._autograd._get_current_graph_task_keep_graph())
