"""The README's migration recipes give the same numbers as the code they replace."""
import pytest
import torch

from mattingloss import DIMLoss
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
