"""The migration recipes of docs/conventions.md give the same numbers as the code they replace."""
import pytest
import torch

from mattingloss import DIMLoss, dim_loss
from mattingloss.reference import mmagic_charbonnier_losses, seed_total_loss

from conftest import make_inputs, max_rel_err


def test_from_seed_gen_loss():
    x = make_inputs(2, 20, 24)
    want = seed_total_loss(x["image"], x["alpha"], x["fg"], x["bg"], x["trimap"], x["pred_alpha"], wl=0.5)
    assert max_rel_err(DIMLoss()(**x), want) <= 1e-10


@pytest.mark.parametrize("sample_wise", [False, True])
def test_from_mmagic_charbonnier_losses(sample_wise):
    x = make_inputs(3, 20, 24)
    unit = {k: (v / 255.0 if k != "pred_alpha" else v) for k, v in x.items()}
    weight = (x["trimap"] == 128).double()
    want = mmagic_charbonnier_losses(unit["pred_alpha"], unit["alpha"], unit["fg"], unit["bg"], unit["image"], weight,
                                     sample_wise=sample_wise)
    criterion = DIMLoss(wl=0.5, eps=1e-6, alpha_scale=1.0, color_scale=1.0,
                        reduction="sample" if sample_wise else "mean")
    got = criterion(unit["pred_alpha"], unit["alpha"], image=unit["image"], fg=unit["fg"], bg=unit["bg"], weight=weight)
    assert max_rel_err(got, want) <= 1e-10  # mmagic adds 1e-12 to N: ~1e-14 relative here


def test_comp_divided_by_n_instead_of_3n():
    """Reproductions that divide the comp sum by N: rescale wl and the total."""
    x = make_inputs(2, 20, 24)
    _, la, lc = DIMLoss()(**x, return_components=True)
    w_alpha, w_comp = 0.5, 0.5
    want = w_alpha * la + w_comp * 3 * lc
    scale = w_alpha + 3 * w_comp
    got = scale * DIMLoss(wl=w_alpha / scale)(**x)
    assert max_rel_err(got, want) <= 1e-12


def guarded_alpha_loss(pred, alpha, trimap, guard, mask_inside_root, eps=1e-6):
    """The alpha loss of DIM reproductions that guard N, as they write it: the
    mask weights the loss (sqrt(d^2 + eps^2) * m), or multiplies the difference
    inside the root (sqrt((d * m)^2 + eps^2), foamliu/Deep-Image-Matting-PyTorch
    utils.py alpha_prediction_loss, guard eps), over sum(m) + guard."""
    m = (trimap == 128).double()
    d = pred - alpha / 255.0
    r = torch.sqrt((d * m) ** 2 + eps**2) if mask_inside_root else torch.sqrt(d**2 + eps**2) * m
    return r.sum() / (m.sum() + guard)


@pytest.mark.parametrize("mask_inside_root", [False, True])
@pytest.mark.parametrize("guard", [1.0, 1e-6])
@pytest.mark.parametrize("unknown", ["random", "none"])
def test_reproductions_that_guard_n(guard, mask_inside_root, unknown):
    """docs/conventions.md's statements: theirs = (N * ours + eps * K_inside) / (N + guard), with
    K_inside the known-pixel count when the mask is inside the root (else 0), and their
    gradient = ours * N / (N + guard)."""
    x = make_inputs(2, 20, 24, unknown=unknown)
    eps = 1e-6
    pred = x["pred_alpha"].clone().requires_grad_()
    theirs = guarded_alpha_loss(pred, x["alpha"], x["trimap"], guard, mask_inside_root, eps)
    (their_grad,) = torch.autograd.grad(theirs, pred)
    pred = x["pred_alpha"].clone().requires_grad_()
    ours = dim_loss(pred, x["alpha"], x["trimap"], eps=eps)  # no image/fg/bg: the alpha loss
    (our_grad,) = torch.autograd.grad(ours, pred)
    n = float((x["trimap"] == 128).sum())
    k = float((x["trimap"] != 128).sum()) if mask_inside_root else 0.0
    stated = (n * ours.detach() + eps * k) / (n + guard)
    assert max_rel_err(theirs, stated) <= 1e-12
    assert max_rel_err(their_grad, our_grad * n / (n + guard), at_least=their_grad) <= 1e-12
    if unknown == "none":  # ours is 0; theirs is eps * K / guard: K pixels' worth when the guard is eps
        assert ours.item() == 0.0 and max_rel_err(theirs, torch.tensor(eps * k / guard, dtype=torch.float64)) <= 1e-12
