"""scale_gradient_, the backward of every loss whose forward stores its final
gradient: grad *= factor in place, computed in the accumulation type; a factor
of 1 leaves grad untouched (no pass)."""
import pytest
import torch

import mattingloss
from mattingloss import _ops

from conftest import max_rel_err


def samples(device):
    """(grad, factor): every gradient dtype, odd sizes (the CUDA kernel's element
    path), a size of whole 4-element steps (its vector path) and an empty one."""
    g = torch.Generator().manual_seed(17)
    for dtype, shape, value in ((torch.float32, (2, 1, 5, 7), 1.75), (torch.float64, (3, 1, 4, 4), -0.5),
                                (torch.bfloat16, (2, 1, 6, 9), 0.3), (torch.float16, (1, 1, 16, 20), 2.5),
                                (torch.float32, (1, 1, 3, 4000), 1e-3), (torch.float32, (0,), 2.0)):
        acc = _ops.accumulation_dtype(torch.empty((), dtype=dtype))
        grad = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).to(device)
        yield grad, torch.tensor(value, dtype=acc, device=device)


def test_scales_in_place_in_the_accumulation_type(device):
    for grad, factor in samples(device):
        before = grad.clone()
        _ops.scale_gradient_(grad, factor)
        expected = (before.to(factor.dtype) * factor).to(grad.dtype)  # one rounding to grad's dtype
        assert torch.equal(grad, expected)


def test_factor_one_leaves_the_gradient_as_it_is(device):
    """Bitwise, NaN and -0 included (x * 1 is x: skipping the pass changes nothing)."""
    grad = torch.tensor([1.5, -0.0, float("nan"), -2.25e-30, float("inf")], device=device)
    before = grad.clone()
    _ops.scale_gradient_(grad, torch.tensor(1.0, device=device))
    assert torch.equal(grad.view(torch.int32), before.view(torch.int32))


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
    for grad, factor in samples(device):
        torch.library.opcheck(torch.ops.mattingloss.scale_gradient_.default, (grad, factor))


def test_rejects_bad_arguments_directly(device):
    grad = torch.zeros(2, 3, device=device)
    factor = torch.tensor(2.0, device=device)
    bad = [((grad.int(), factor), "grad must be floating"), ((grad.t(), factor), "grad must be contiguous"),
           ((grad, factor.expand(2)), "factor must hold one value, got 2"),
           ((grad, factor.double()), r"factor must be Float \(grad is Float\), got Double"),
           ((grad.double(), factor), r"factor must be Double \(grad is Double\), got Float")]
    for args, match in bad:
        with pytest.raises(RuntimeError, match=match):
            torch.ops.mattingloss.scale_gradient_(*args)
