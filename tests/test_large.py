"""64-bit offsets: an input with more than 2^31 elements (about 17 GB of memory at peak)."""
import pytest
import torch

from mattingloss import dim_loss
from mattingloss.reference import dim_loss_reference

from conftest import available_gib


@pytest.mark.slow
@pytest.mark.skipif(available_gib() < 18, reason="needs about 17 GiB of free memory")
def test_more_than_2_31_elements():
    H = W = 26800  # image/fg/bg hold 3*H*W = 2.15e9 > 2^31 elements
    assert 3 * H * W > 2**31
    pred = torch.full((1, 1, H, W), 0.5, dtype=torch.float16, requires_grad=True)
    alpha = torch.zeros(1, 1, H, W, dtype=torch.uint8)
    trimap = torch.full((1, 1, H, W), 128, dtype=torch.uint8)
    image = torch.zeros(1, 3, H, W, dtype=torch.uint8)
    fg = torch.full((1, 3, H, W), 255, dtype=torch.uint8)
    bg = torch.zeros(1, 3, H, W, dtype=torch.uint8)
    # The last pixel of the last channel (element index > 2^31) differs.
    image[0, 2, -1, -1] = 255
    loss = dim_loss(pred, alpha, trimap, image, fg, bg, reduction="sum")
    loss.backward()
    grad = pred.grad
    del image, fg, bg, alpha, trimap

    def one_pixel(last):
        x = dict(pred_alpha=torch.tensor(0.5, dtype=torch.float64).view(1, 1, 1, 1), alpha=torch.zeros(1, 1, 1, 1),
                 trimap=torch.full((1, 1, 1, 1), 128.0), image=torch.tensor([0.0, 0.0, 255.0 if last else 0.0]).view(1, 3, 1, 1),
                 fg=torch.full((1, 3, 1, 1), 255.0), bg=torch.zeros(1, 3, 1, 1))
        x["pred_alpha"].requires_grad_()
        value = dim_loss_reference(**x, reduction="sum")
        (g,) = torch.autograd.grad(value, x["pred_alpha"])
        return value.item(), g.item()

    common, common_grad = one_pixel(False)
    last, last_grad = one_pixel(True)
    assert loss.item() == pytest.approx(common * (H * W - 1) + last, rel=1e-5)
    assert grad[0, 0, 0, 0].item() == pytest.approx(common_grad, rel=1e-3)
    assert grad[0, 0, -1, -1].item() == pytest.approx(last_grad, rel=1e-3)
    assert grad[0, 0, -1, -2].item() == pytest.approx(common_grad, rel=1e-3)
    assert last_grad != pytest.approx(common_grad, rel=1e-2)
