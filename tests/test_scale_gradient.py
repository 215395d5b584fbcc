"""scale_gradient_, the whole backward of every loss whose forward stores its
gradient: each sample of each grad times grad_output (one value or one per
sample) and the loss's scale (none, shared, or per sample), in place, computed in
the accumulation type with the factor read on the device; a factor of 1 leaves
the sample untouched (no pass)."""
import pytest
import torch

import mattingloss
from mattingloss import _ops

from conftest import max_rel_err


def samples(device):
    """(grads, grad_output, scale, shared_scale): every gradient dtype, odd sizes (the
    CUDA kernel's element path), a size of whole 4-element steps (its vector path),
    per-sample factors (one of them 1), several grads, and an empty one."""
    g = torch.Generator().manual_seed(17)

    def grad(shape, dtype):
        return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).to(device)

    def t(values, dtype=torch.float32):
        return torch.tensor(values, dtype=dtype, device=device)

    yield [grad((2, 1, 5, 7), torch.float32)], t(1.75), None, True
    yield [grad((3, 1, 4, 4), torch.float64)], t(-0.5, torch.float64), t([2.0, 3.0, 4.0], torch.float64), True
    yield [grad((2, 1, 6, 9), torch.bfloat16)], t(0.3), t([0.5, 0.25]), False
    yield [grad((1, 1, 16, 20), torch.float16)], t(2.5), None, True
    yield [grad((3, 1, 3, 4000), torch.float32)], t([1e-3, 1.0, -2.0]), None, True
    yield [grad((3, 2, 5, 8), torch.float32)], t([0.5, 2.0, 1.0]), t([2.0, 0.5, 1.0]), False
    yield [grad((2, 3, 1, 4, 6), torch.float32), grad((2, 3, 3, 4, 6), torch.bfloat16)], t(0.75), None, True
    yield [grad((0,), torch.float32)], t(2.0), None, True


def expected(grad, grad_output, scale, shared):
    """Sample s times scale[s or 0] * grad_output[s or 0] (Python's product order),
    in grad's accumulation type, rounded once to grad's dtype."""
    acc = _ops.accumulation_dtype(grad)
    factor = grad_output.to(acc)
    if scale is not None:
        factor = (scale[0] if shared else scale).to(acc) * factor
    if factor.dim() > 0:
        factor = factor.view(-1, *([1] * (grad.dim() - 1)))
    return (grad.to(acc) * factor).to(grad.dtype)


def test_scales_in_place_in_the_accumulation_type(device):
    for grads, grad_output, scale, shared in samples(device):
        want = [expected(g, grad_output, scale, shared) for g in grads]
        _ops.scale_gradient_(grads, grad_output, scale, shared)
        for g, w in zip(grads, want):
            assert torch.equal(g, w)


def test_factor_one_leaves_the_gradient_as_it_is(device):
    """Bitwise, NaN and -0 included (x * 1 is x: skipping the pass changes nothing),
    per sample: only the samples whose factor is not 1 change."""
    grad = torch.tensor([[1.5, -0.0, float("nan")], [-2.25e-30, float("inf"), 3.0]], device=device)
    before = grad.clone()
    _ops.scale_gradient_([grad], torch.tensor([1.0, 2.0], device=device))
    assert torch.equal(grad[0].view(torch.int32), before[0].view(torch.int32))
    assert torch.equal(grad[1], before[1] * 2)


def test_loss_backward_returns_the_stored_gradient_unscaled(device):
    """loss.backward() (grad_output 1) hands over the forward's gradient as it is;
    another grad_output scales it; both as the reference formula's gradient."""
    g = torch.Generator().manual_seed(19)
    pred = torch.rand(2, 1, 12, 10, generator=g, dtype=torch.float64).to(device)
    alpha = torch.rand(2, 1, 12, 10, generator=g, dtype=torch.float64).to(device)
    trimap = (torch.randint(0, 3, (2, 1, 12, 10), generator=g).double() / 2).to(device)
    grads = []
    for grad_output in (1.0, 0.25):
        p = pred.clone().requires_grad_(True)
        total = mattingloss.vitmatte_alpha_losses(p, alpha, trimap)[0]
        total.backward(torch.tensor(grad_output, dtype=torch.float64, device=device))
        grads.append(p.grad / grad_output)
    assert max_rel_err(grads[1], grads[0]) <= 1e-15 and grads[0].abs().sum() > 0


def test_opcheck(device):
    for args in samples(device):
        torch.library.opcheck(torch.ops.mattingloss.scale_gradient_.default, args)


def test_rejects_bad_arguments_directly(device):
    grad = torch.zeros(2, 3, device=device)
    one = torch.tensor(2.0, device=device)
    bad = [(([grad.int()], one), "grad must be floating"), (([grad.t()], one), "grad must be contiguous"),
           (([grad], one.expand(3)), r"grad_output must hold one value or one per sample \(2\)"),
           (([grad], one.int()), "grad_output must be floating"),
           (([grad], one, one.expand(3), False), r"a per-sample scale needs one value per sample"),
           (([grad], one, one.expand(2).int(), False), "scale must be floating")]
    for args, match in bad:
        with pytest.raises(RuntimeError, match=match):
            torch.ops.mattingloss.scale_gradient_(*args)
