"""DIMLoss / dim_loss against the seed's code and the eager oracle."""
import pytest
import torch

import mattingloss
from mattingloss import DIMLoss, dim_loss
from mattingloss.reference import dim_loss_reference, seed_gen_loss

from conftest import alpha_as_read, make_inputs, max_rel_err

SIZES = [(1, 1, 1), (1, 7, 13), (3, 7, 13), (2, 64, 48), (1, 320, 320)]
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def fused_and_grad(inputs, **kwargs):
    pred = inputs["pred_alpha"].detach().clone().requires_grad_()
    loss = DIMLoss(**kwargs)(**{**inputs, "pred_alpha": pred})
    (grad,) = torch.autograd.grad(loss, pred)
    return loss.detach(), grad


def seed_and_grad(inputs, wl):
    """The seed's own gen_loss (float64), with its total, on alpha as the kernel reads it."""
    x = {k: v.double() for k, v in inputs.items()}
    x["alpha"] = alpha_as_read(x["alpha"], 255.0, inputs["pred_alpha"].dtype)
    pred = x["pred_alpha"].detach().clone().requires_grad_()
    alpha_loss, comp_loss = seed_gen_loss(x["image"], x["alpha"], x["fg"], x["bg"], x["trimap"], pred)
    loss = alpha_loss * wl + comp_loss * (1.0 - wl)
    (grad,) = torch.autograd.grad(loss, pred)
    return loss.detach(), grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("B,H,W", SIZES)
@pytest.mark.parametrize("unknown", ["random", "all", "single"])
@pytest.mark.parametrize("wl", [0.0, 0.3, 0.5, 1.0])
def test_equals_seed_gen_loss(device, dtype, B, H, W, unknown, wl):
    inputs = make_inputs(B, H, W, unknown=unknown, seed=B * H + W, dtype=dtype, device=device)
    loss, grad = fused_and_grad(inputs, wl=wl)
    want_loss, want_grad = seed_and_grad(inputs, wl)
    assert loss.dtype == dtype
    assert max_rel_err(loss, want_loss) <= TOL[dtype]
    assert max_rel_err(grad, want_grad) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("B,H,W", [(1, 1, 1), (3, 7, 13), (2, 64, 48)])
def test_no_unknown_pixel_gives_zero(device, dtype, B, H, W):
    inputs = make_inputs(B, H, W, unknown="none", dtype=dtype, device=device)
    loss, grad = fused_and_grad(inputs)
    assert loss.item() == 0.0
    assert torch.count_nonzero(grad).item() == 0
    # The seed divides 0 by 0 here: the reason we don't follow it.
    assert torch.isnan(seed_and_grad(inputs, 0.5)[0])


def test_functional_matches_module(device):
    inputs = make_inputs(2, 9, 11, device=device)
    assert torch.equal(dim_loss(**inputs, wl=0.3), DIMLoss(wl=0.3)(**inputs))


def test_user_tensors_untouched(device):
    inputs = make_inputs(2, 16, 16, dtype=torch.float32, device=device)
    inputs["pred_alpha"].requires_grad_()
    inputs["fg"].requires_grad_()
    before = {k: v.detach().clone() for k, v in inputs.items()}
    loss = dim_loss(**inputs)
    loss.backward()
    for k, v in inputs.items():
        assert torch.equal(v.detach(), before[k]), k


def test_gradient_accumulates_like_autograd(device):
    """Two backward passes into the same leaf add up (the stored buffer is handed over, not shared)."""
    inputs = make_inputs(2, 8, 8, device=device)
    pred = inputs["pred_alpha"].clone().requires_grad_()
    for _ in range(2):
        dim_loss(**{**inputs, "pred_alpha": pred}).backward()
    _, grad = fused_and_grad(inputs)
    assert max_rel_err(pred.grad, 2 * grad) <= 1e-12


def test_retain_graph_backward_twice(device):
    inputs = make_inputs(2, 8, 8, device=device)
    pred = inputs["pred_alpha"].clone().requires_grad_()
    loss = dim_loss(**{**inputs, "pred_alpha": pred})
    (g1,) = torch.autograd.grad(loss, pred, retain_graph=True)
    (g1_again,) = torch.autograd.grad(loss, pred, retain_graph=True)
    (g3,) = torch.autograd.grad(loss, pred, grad_outputs=torch.tensor(3.0, dtype=loss.dtype, device=device))
    assert torch.equal(g1, g1_again)  # the stored gradient was not consumed by the first call
    assert max_rel_err(g3, 3.0 * g1) <= 1e-15


def test_no_grad_is_loss_only(device):
    inputs = make_inputs(2, 8, 8, device=device)
    with torch.no_grad():
        loss = dim_loss(**inputs)
    assert not loss.requires_grad
    assert loss.item() == pytest.approx(dim_loss_reference(**inputs).item(), rel=1e-12)


def test_cuda_kernels_flag_is_bool():
    assert isinstance(mattingloss.cuda_kernels_built(), bool)
    assert mattingloss.__version__


def test_double_backward_raises(device):
    """Second derivatives are not implemented: differentiating through backward raises."""
    inputs = make_inputs(2, 8, 8, device=device)
    pred = inputs["pred_alpha"].clone().requires_grad_()
    loss = dim_loss(**{**inputs, "pred_alpha": pred})
    upstream = torch.ones_like(loss, requires_grad=True)
    (grad,) = torch.autograd.grad(loss, pred, upstream, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()
