"""Each preset equals its code base's objective (our reference of that code
base's own functions) for every component and every predicted input's gradient."""
import pytest
import torch

from mattingloss import presets
from mattingloss.reference import (gca_losses, matteformer_losses, mmagic_charbonnier_losses, rvm_laplacian_loss,
                                   rvm_matting_loss, seed_gen_loss, vitmatte_criterion)
from mattingloss.reference.alpha import mmagic_charbonnier_loss
from mattingloss.reference.composition import mmagic_charbonnier_comp_loss

from conftest import make_inputs, max_rel_err

G = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731


def image_batch(B=2, H=64, W=64, dtype=torch.float64, seed=0, device="cpu"):
    """Alpha in [0, 1] with exact zeros and ones, a 0/0.5/1 trimap, colours in [0, 1]."""
    g = G(seed)
    alpha = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    alpha = torch.where(alpha < 0.25, 0.0, torch.where(alpha > 0.75, 1.0, alpha))
    trimap = torch.where((alpha > 0) & (alpha < 1), 0.5, alpha)
    trimap = torch.where(torch.rand(trimap.shape, generator=g, dtype=torch.float64) < 0.1, 0.5, trimap)
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    fg, bg = (torch.rand(B, 3, H, W, generator=g, dtype=torch.float64) for _ in range(2))
    image = alpha * fg + (1 - alpha) * bg
    out = dict(pred=pred, alpha=alpha, trimap=trimap, weight=(trimap == 0.5).double(), fg=fg, bg=bg, image=image)
    return {k: v.to(device=device, dtype=dtype) for k, v in out.items()}


def assert_dicts_equal(got, want, tol, grad=True):
    assert set(got) == set(want), (sorted(got), sorted(want))
    for key in want:
        assert max_rel_err(got[key], want[key]) <= tol, (key, got[key].item(), want[key].item())
    assert got["total"].requires_grad == grad and all(not v.requires_grad for k, v in got.items() if k != "total")


def grads(out, *inputs):
    return torch.autograd.grad(out["total"], inputs)


def test_vitmatte(device):
    x = image_batch(device=device)
    p = x["pred"].clone().requires_grad_()
    got = presets.vitmatte()(p, x["alpha"], x["trimap"])
    q = x["pred"].clone().requires_grad_()
    want = vitmatte_criterion(q, x["alpha"], x["trimap"])
    assert_dicts_equal(got, want, 1e-10)
    assert max_rel_err(grads(got, p)[0], grads(want, q)[0]) <= 1e-10


def test_vitmatte_options(device):
    """Weights, and the true crop size instead of ViTMatte's hard-coded 512^2."""
    x = image_batch(H=64, W=96, device=device)
    p = x["pred"].clone().requires_grad_()
    crit = presets.vitmatte(unknown_l1_weight=2.0, known_l1_weight=0.5, laplacian_weight=3.0,
                            gradient_weight=0.25, crop_size=None)
    got = crit(p, x["alpha"], x["trimap"])
    want = vitmatte_criterion(x["pred"], x["alpha"], x["trimap"])
    rescale = 64 * 96 / 512**2  # ViTMatte's terms with the true crop size
    for key in ("unknown_l1_loss", "known_l1_loss", "loss_gradient_penalty"):
        assert max_rel_err(got[key], want[key] * rescale) <= 1e-10
    assert max_rel_err(got["loss_pha_laplacian"], want["loss_pha_laplacian"]) <= 1e-10
    total = (2.0 * got["unknown_l1_loss"] + 0.5 * got["known_l1_loss"] + 3.0 * got["loss_pha_laplacian"]
             + 0.25 * got["loss_gradient_penalty"])
    assert max_rel_err(got["total"], total) <= 1e-12
    assert "crop_size=None" in repr(crit)


def video_batch(B=2, T=3, H=64, W=64, dtype=torch.float64, seed=0, device="cpu"):
    g = G(seed)
    true_pha = torch.rand(B, T, 1, H, W, generator=g, dtype=torch.float64)
    true_pha = torch.where(true_pha < 0.3, 0.0, true_pha)
    out = dict(pred_fgr=torch.rand(B, T, 3, H, W, generator=g, dtype=torch.float64),
               pred_pha=torch.rand(B, T, 1, H, W, generator=g, dtype=torch.float64),
               true_fgr=torch.rand(B, T, 3, H, W, generator=g, dtype=torch.float64), true_pha=true_pha)
    return {k: v.to(device=device, dtype=dtype) for k, v in out.items()}


def test_rvm(device):
    x = video_batch(device=device)
    f, a = x["pred_fgr"].clone().requires_grad_(), x["pred_pha"].clone().requires_grad_()
    got = presets.rvm()(f, a, x["true_fgr"], x["true_pha"])
    f2, a2 = x["pred_fgr"].clone().requires_grad_(), x["pred_pha"].clone().requires_grad_()
    lap = rvm_laplacian_loss(a2.flatten(0, 1), x["true_pha"].flatten(0, 1))
    want = rvm_matting_loss(f2, a2, x["true_fgr"], x["true_pha"], pha_laplacian=lap)
    assert_dicts_equal(got, want, 1e-10)
    for ours, theirs in zip(grads(got, f, a), grads(want, f2, a2)):
        assert max_rel_err(ours, theirs) <= 1e-10


def test_rvm_uint8_targets_and_weights(device):
    x = video_batch(device=device)
    true_pha8 = (x["true_pha"] * 255).round().to(torch.uint8)
    true_fgr8 = (x["true_fgr"] * 255).round().to(torch.uint8)
    weights = dict(pha_l1_weight=2.0, pha_laplacian_weight=0.5, pha_coherence_weight=3.0, fgr_l1_weight=0.0,
                   fgr_coherence_weight=1.5)
    got = presets.rvm(true_pha_scale=255, true_fgr_scale=255, **weights)(x["pred_fgr"], x["pred_pha"], true_fgr8,
                                                                        true_pha8)
    tp, tf = true_pha8.double() / 255, true_fgr8.double() / 255
    lap = rvm_laplacian_loss(x["pred_pha"].flatten(0, 1), tp.flatten(0, 1))
    want = rvm_matting_loss(x["pred_fgr"], x["pred_pha"], tf, tp, pha_laplacian=lap,
                            weights={k[:-len("_weight")]: v for k, v in weights.items()})
    assert_dicts_equal(got, want, 1e-10, grad=False)


@pytest.mark.parametrize("with_comp", [False, True])
def test_matteformer(device, with_comp):
    x = image_batch(device=device)
    colours = (x["image"], x["fg"], x["bg"]) if with_comp else ()
    p = x["pred"].clone().requires_grad_()
    got = presets.matteformer(rec_weight=1.0, comp_weight=2.0, lap_weight=0.5)(p, x["alpha"], x["weight"], *colours)
    q = x["pred"].clone().requires_grad_()
    want = matteformer_losses(q, x["alpha"], x["weight"], *colours, rec_weight=1.0, comp_weight=2.0, lap_weight=0.5)
    assert_dicts_equal(got, want, 1e-10)
    assert max_rel_err(grads(got, p)[0], grads(want, q)[0]) <= 1e-10


def test_matteformer_multi_head_sum(device):
    """The docstring's recipe for the trainer's (2 os1 + os4 + os8) / 5, os8 with all-ones weight."""
    x = image_batch(device=device)
    crit = presets.matteformer()
    heads = [(x["pred"], x["weight"]), (x["pred"].flip(-1), x["weight"]), (x["pred"].flip(-2), torch.ones_like(x["weight"]))]
    outs = [crit(p, x["alpha"], w) for p, w in heads]
    total = (2 * outs[0]["total"] + outs[1]["total"] + outs[2]["total"]) / 5
    refs = [matteformer_losses(p, x["alpha"], w)["total"] for p, w in heads]
    assert max_rel_err(total, (2 * refs[0] + refs[1] + refs[2]) / 5) <= 1e-10


@pytest.mark.parametrize("weights", [{}, dict(comp_weight=1.0, smooth_l1_weight=0.5, grad_weight=2.0)])
def test_gca(device, weights):
    x = image_batch(device=device)
    p = x["pred"].clone().requires_grad_()
    got = presets.gca(**weights)(p, x["alpha"], x["weight"], x["image"], x["fg"], x["bg"])
    q = x["pred"].clone().requires_grad_()
    want = gca_losses(q, x["alpha"], x["weight"], x["image"], x["fg"], x["bg"], **weights)
    assert_dicts_equal(got, want, 1e-10)
    assert max_rel_err(grads(got, p)[0], grads(want, q)[0]) <= 1e-10


def test_dim(device):
    x = make_inputs(2, 20, 24, device=device)
    p = x["pred_alpha"].clone().requires_grad_()
    got = presets.dim()(p, x["alpha"], x["trimap"], x["image"], x["fg"], x["bg"])
    q = x["pred_alpha"].clone().requires_grad_()
    la, lc = seed_gen_loss(x["image"], x["alpha"], x["fg"], x["bg"], x["trimap"], q)
    want = {"alpha_loss": la, "comp_loss": lc, "total": 0.5 * la + 0.5 * lc}
    assert_dicts_equal(got, want, 1e-10)
    assert max_rel_err(grads(got, p)[0], grads(want, q)[0]) <= 1e-10


@pytest.mark.parametrize("sample_wise", [False, True])
def test_mmagic_dim(device, sample_wise):
    x = make_inputs(3, 20, 24, device=device)
    unit = {k: (v / 255.0 if k != "pred_alpha" else v) for k, v in x.items()}
    trimap = x["trimap"] / 255.0  # mmagic's rescale_to_zero_one trimap
    weight = (trimap == 128 / 255).double()
    p = unit["pred_alpha"].clone().requires_grad_()
    got = presets.mmagic_dim(sample_wise=sample_wise)(p, unit["alpha"], trimap, unit["fg"], unit["bg"], unit["image"])
    q = unit["pred_alpha"].clone().requires_grad_()
    la = 0.5 * mmagic_charbonnier_loss(q, unit["alpha"], weight, sample_wise=sample_wise)
    lc = mmagic_charbonnier_comp_loss(q, unit["fg"], unit["bg"], unit["image"], weight, loss_weight=0.5,
                                      sample_wise=sample_wise)
    want = {"loss_alpha": la, "loss_comp": lc, "total": la + lc}
    assert max_rel_err(want["total"], mmagic_charbonnier_losses(q, unit["alpha"], unit["fg"], unit["bg"], unit["image"],
                                                                weight, sample_wise=sample_wise)) <= 1e-12
    assert_dicts_equal(got, want, 1e-10)  # mmagic's + 1e-12 on N: ~1e-14 relative here
    assert max_rel_err(grads(got, p)[0], grads(want, q)[0]) <= 1e-10


def test_float32_close_to_float64():
    """float32 inputs: every component within 1e-5 of the float64 values, gradients close in L2."""
    x64 = image_batch()
    x32 = {k: v.float() for k, v in x64.items()}
    for crit, args in ((presets.vitmatte(), ("pred", "alpha", "trimap")),
                       (presets.matteformer(), ("pred", "alpha", "weight", "image", "fg", "bg"))):
        p64 = x64["pred"].clone().requires_grad_()
        p32 = x32["pred"].clone().requires_grad_()
        out64 = crit(p64, *(x64[a] for a in args[1:]))
        out32 = crit(p32, *(x32[a] for a in args[1:]))
        for key in out64:
            assert max_rel_err(out32[key], out64[key]) <= 1e-5, key
        g64, g32 = grads(out64, p64)[0], grads(out32, p32)[0].double()
        assert ((g32 - g64).norm() / g64.norm()).item() <= 1e-4


def test_bfloat16_autocast_training_step():
    """ViTMatte and RVM train under autocast: a bfloat16 prediction gives a float32 loss
    and a bfloat16 gradient that trains the model."""
    x = image_batch(dtype=torch.float32)
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    crit = presets.vitmatte()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = torch.sigmoid(model(x["pred"]))
        assert pred.dtype == torch.bfloat16
        out = crit(pred, x["alpha"], x["trimap"])
    assert out["total"].dtype == torch.float32 and torch.isfinite(out["total"])
    out["total"].backward()
    assert model.weight.grad is not None and torch.isfinite(model.weight.grad).all()
    assert model.weight.grad.abs().sum() > 0


def test_bad_options_raise():
    with pytest.raises(ValueError, match="unknown_l1_weight: expected >= 0.0, got -1.0"):
        presets.vitmatte(unknown_l1_weight=-1)
    with pytest.raises(ValueError, match="crop_size: expected a positive int or None, got 0"):
        presets.vitmatte(crop_size=0)
    with pytest.raises(ValueError, match="alpha_weight/comp_weight: expected a positive sum"):
        presets.mmagic_dim(alpha_weight=0, comp_weight=0)
    x = image_batch()
    with pytest.raises(ValueError, match="image/fg/bg: comp_weight > 0 needs all three"):
        presets.gca(comp_weight=1.0)(x["pred"], x["alpha"], x["weight"])
    with pytest.raises(TypeError, match="rec_weight: expected a number"):
        presets.matteformer(rec_weight="1")


def preset_calls():
    x = image_batch(dtype=torch.float32)
    v = video_batch(H=64, W=64, dtype=torch.float32)
    d = {k: (t / 255.0 if k != "pred_alpha" else t) for k, t in make_inputs(2, 16, 16, dtype=torch.float32).items()}
    return [
        ("vitmatte", presets.vitmatte(), (x["pred"], x["alpha"], x["trimap"])),
        ("matteformer", presets.matteformer(), (x["pred"], x["alpha"], x["weight"], x["image"], x["fg"], x["bg"])),
        ("gca", presets.gca(), (x["pred"], x["alpha"], x["weight"])),
        ("rvm", presets.rvm(), (v["pred_fgr"], v["pred_pha"], v["true_fgr"], v["true_pha"])),
        ("dim", presets.dim(alpha_scale=1.0, color_scale=1.0, unknown_value=128 / 255),
         (d["pred_alpha"], d["alpha"], d["trimap"], d["image"], d["fg"], d["bg"])),
        ("mmagic_dim", presets.mmagic_dim(), (d["pred_alpha"], d["alpha"], d["trimap"], d["fg"], d["bg"], d["image"])),
    ]


@pytest.mark.parametrize("index", range(6), ids=[c[0] for c in preset_calls()])
def test_compile_fullgraph(index):
    """No graph break; the same values and gradients as eager."""
    torch._dynamo.reset()
    _, crit, args = preset_calls()[index]
    n_pred = 2 if isinstance(crit, presets.RVM) else 1
    eager_in = [a.clone().requires_grad_() for a in args[:n_pred]]
    compiled_in = [a.clone().requires_grad_() for a in args[:n_pred]]
    eager = crit(*eager_in, *args[n_pred:])
    compiled = torch.compile(crit, fullgraph=True)(*compiled_in, *args[n_pred:])
    assert set(compiled) == set(eager) and compiled["total"].requires_grad
    for key in eager:
        assert max_rel_err(compiled[key], eager[key]) <= 1e-6, key
    for ours, theirs in zip(grads(compiled, *compiled_in), grads(eager, *eager_in)):
        assert max_rel_err(ours, theirs) <= 1e-6


@pytest.mark.parametrize("name", ["matteformer", "gca"])
def test_weight_sign_checked_only_when_asked(name):
    """check_weight=True raises on a negative weight, naming it; the default reads no
    value (no host sync on CUDA) and gives the reference formula's number for it."""
    x = image_batch(dtype=torch.float64)
    weight = x["weight"].clone()
    weight[0, 0, 0, 0] = -1.0
    args = (x["pred"], x["alpha"], weight)
    with pytest.raises(ValueError, match="weight: expected non-negative weights"):
        getattr(presets, name)(check_weight=True)(*args)
    got = getattr(presets, name)()(*args)["rec"]
    # GCA's regression_loss: sum|p*w - a*w| / (sum(w) + 1e-8)
    want = ((x["pred"] * weight - x["alpha"] * weight).abs().sum() / (weight.sum() + 1e-8))
    assert max_rel_err(got, want) <= 1e-12
