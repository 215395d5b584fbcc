"""gradcheck for every differentiable input and torch.library.opcheck for the op."""
import pytest
import torch

import mattingloss
from mattingloss import _codes, dim_loss

from conftest import make_inputs


@pytest.mark.parametrize("reduction", ["mean", "sample", "sum", "none"])
@pytest.mark.parametrize("mask", ["trimap", "weight"])
def test_gradcheck_pred_fg_bg(device, reduction, mask):
    inputs = make_inputs(2, 5, 6, device=device)
    if mask == "weight":
        inputs["weight"] = torch.rand(2, 1, 5, 6, dtype=torch.float64, device=device)
        del inputs["trimap"]
    pred = inputs.pop("pred_alpha").requires_grad_()
    fg = inputs.pop("fg").requires_grad_()
    bg = inputs.pop("bg").requires_grad_()

    def f(pred, fg, bg):
        return dim_loss(pred, fg=fg, bg=bg, wl=0.4, reduction=reduction, **inputs)

    assert torch.autograd.gradcheck(f, (pred, fg, bg))


def test_gradcheck_alpha_only(device):
    inputs = make_inputs(2, 5, 6, device=device)
    pred = inputs["pred_alpha"].requires_grad_()
    assert torch.autograd.gradcheck(lambda p: dim_loss(p, inputs["alpha"], inputs["trimap"]), (pred,))


def op_samples(device):
    """Argument sets for the raw op, as dim_loss builds them. The raw op is not
    differentiable itself (DIMLossFunction is), so no input requires grad."""
    x = make_inputs(2, 6, 8, device=device)
    p, a, t, i, f, b = (x[k] for k in ("pred_alpha", "alpha", "trimap", "image", "fg", "bg"))
    u8 = {k: v.to(torch.uint8) for k, v in x.items() if k != "pred_alpha"}
    common = (_codes.MASK_EQUAL, 128.0, 128.0, 0.5, 1e-6, 255.0, 255.0)
    yield (p, a, t, i, f, b, *common, 0, True, False, False)
    yield (p.float(), u8["alpha"], u8["trimap"], u8["image"], u8["fg"].float(),
           u8["bg"].float(), *common, 1, True, True, True)
    yield (p.to(torch.bfloat16), u8["alpha"], u8["trimap"], None, None, None, *common, 2, False, False, False)
    yield (p.clone(), a, torch.rand_like(t), i, f, b, _codes.MASK_WEIGHT, 0.0, 0.0, 0.3, 1e-3,
           255.0, 255.0, 3, True, False, False)
    yield (p.clone(), a, t, i, f, b, _codes.MASK_RANGE, 85.0, 170.0, 0.5, 1e-6, 255.0, 255.0,
           0, True, False, False)


def test_opcheck(device):
    for args in op_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.dim_loss_forward.default, args)


def test_op_rejects_bad_shapes_directly(device):
    """The raw op checks shapes too, so a direct torch.ops call can't read out of bounds."""
    args = list(next(op_samples(device)))
    args[1] = args[1][:, :, :3]
    with pytest.raises(RuntimeError, match="alpha has shape"):
        torch.ops.mattingloss.dim_loss_forward(*args)


def test_cuda_kernels_flag():
    assert isinstance(mattingloss.cuda_kernels_built(), bool)
    if torch.cuda.is_available():
        assert mattingloss.cuda_kernels_built()
