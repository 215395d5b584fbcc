"""The masked alpha loss and ViTMatte's trio against each code base's
convention (mattingloss.reference.alpha / .gradient): float64 to rel 1e-10,
loss and gradient; kinks; dtypes; trimap comparisons; determinism; errors; opcheck."""
import pytest
import torch

import mattingloss
from mattingloss import AlphaLoss, VitMatteAlphaLosses, alpha_loss, vitmatte_alpha_losses
from mattingloss import _codes
from mattingloss import alpha as alpha_module
from mattingloss.reference import alpha as ref
from mattingloss.reference import gradient as ref_grad

from conftest import max_rel_err

TOL = 1e-10


def batch(B=2, H=9, W=13, *, seed=0, device="cpu", trimap_values=(0.0, 0.5, 1.0)):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    gt = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    values = torch.tensor(trimap_values, dtype=torch.float64)
    trimap = values[torch.randint(0, len(trimap_values), (B, 1, H, W), generator=g)]
    weight = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    weight[torch.rand(B, 1, H, W, generator=g) < 0.3] = 0  # some exact zeros: ViTMatte's known region
    return [t.to(device) for t in (pred, gt, trimap, weight)]


def loss_and_grad(fn, pred, *args, **kwargs):
    p = pred.detach().clone().requires_grad_()
    value = fn(p, *args, **kwargs)
    (grad,) = torch.autograd.grad(value, p)
    return value.detach(), grad


def sample_map(trimap):
    return ref.vitmatte_sample_map(trimap)


# (name, ours(pred, gt, trimap, weight), reference(pred, gt, trimap, weight))
CONVENTIONS = [
    ("vitmatte_unknown",
     lambda p, g, t, w: alpha_loss(p, g, t, unknown_value=0.5, reduction="vitmatte", mask_in_diff=True),
     lambda p, g, t, w: ref.vitmatte_unknown_l1_loss(sample_map(t), p, g)),
    ("vitmatte_known",
     lambda p, g, t, w: alpha_loss(p, g, t, unknown_value=0.5, region="known", reduction="vitmatte", mask_in_diff=True),
     lambda p, g, t, w: ref.vitmatte_known_l1_loss(sample_map(t), p, g)),
    ("vitmatte_unknown_soft_map",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, reduction="vitmatte", mask_in_diff=True),
     lambda p, g, t, w: ref.vitmatte_unknown_l1_loss(w, p, g)),
    ("vitmatte_known_soft_map",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, region="known", reduction="vitmatte", mask_in_diff=True),
     lambda p, g, t, w: ref.vitmatte_known_l1_loss(w, p, g)),
    ("gca_regression_l1",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, guard=1e-8, mask_in_diff=True),
     lambda p, g, t, w: ref.gca_regression_loss(p, g, w)),
    ("gca_regression_l1_trimap",
     lambda p, g, t, w: alpha_loss(p, g, t, unknown_value=0.5, guard=1e-8, mask_in_diff=True),
     lambda p, g, t, w: ref.gca_regression_loss(p, g, sample_map(t))),
    ("gca_smooth_l1",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-6, guard=1e-8, mask_in_diff=True),
     lambda p, g, t, w: ref.gca_smooth_l1(p, g, w)),
    ("mmagic_l1_mean",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, guard=1e-12),
     lambda p, g, t, w: ref.mmagic_l1_loss(p, g, w)),
    ("mmagic_l1_sample_wise",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, guard=1e-12, reduction="sample"),
     lambda p, g, t, w: ref.mmagic_l1_loss(p, g, w, sample_wise=True)),
    ("mmagic_l1_sum",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, reduction="sum"),
     lambda p, g, t, w: ref.mmagic_l1_loss(p, g, w, reduction="sum")),
    ("mmagic_l1_no_weight",
     lambda p, g, t, w: alpha_loss(p, g, region="all"),
     lambda p, g, t, w: ref.mmagic_l1_loss(p, g)),
    ("mmagic_charbonnier_mean",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-12, guard=1e-12),
     lambda p, g, t, w: ref.mmagic_charbonnier_loss(p, g, w)),
    ("mmagic_charbonnier_sample_wise",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-3, guard=1e-12, reduction="sample"),
     lambda p, g, t, w: ref.mmagic_charbonnier_loss(p, g, w, sample_wise=True, eps=1e-3)),
    ("rvm_l1",
     lambda p, g, t, w: alpha_loss(p, g, region="all"),
     lambda p, g, t, w: ref.rvm_l1_loss(p, g)),
    ("rvm_l1_numel",
     lambda p, g, t, w: alpha_loss(p, g, region="all", reduction="numel"),
     lambda p, g, t, w: ref.rvm_l1_loss(p, g)),
    ("vitmatte_trio",
     lambda p, g, t, w: vitmatte_alpha_losses(p, g, t)[0],
     lambda p, g, t, w: (ref.vitmatte_unknown_l1_loss(sample_map(t), p, g)
                         + ref.vitmatte_known_l1_loss(sample_map(t), p, g)
                         + ref_grad.vitmatte_gradient_penalty(sample_map(t), p, g))),
    ("vitmatte_trio_weighted",
     lambda p, g, t, w: vitmatte_alpha_losses(p, g, t, weights=(0.5, 2.0, 3.0))[0],
     lambda p, g, t, w: (0.5 * ref.vitmatte_unknown_l1_loss(sample_map(t), p, g)
                         + 2.0 * ref.vitmatte_known_l1_loss(sample_map(t), p, g)
                         + 3.0 * ref_grad.vitmatte_gradient_penalty(sample_map(t), p, g))),
    ("vitmatte_trio_soft_map",
     lambda p, g, t, w: vitmatte_alpha_losses(p, g, weight=w)[0],
     lambda p, g, t, w: (ref.vitmatte_unknown_l1_loss(w, p, g) + ref.vitmatte_known_l1_loss(w, p, g)
                         + ref_grad.vitmatte_gradient_penalty(w, p, g))),
]


@pytest.mark.parametrize("shape", [(2, 9, 13), (1, 1, 7), (3, 6, 1), (2, 40, 1000), (1, 3, 2)])
@pytest.mark.parametrize("name, ours, theirs", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_matches_reference_float64(device, name, ours, theirs, shape):
    pred, gt, trimap, weight = batch(*shape, device=device)
    value, grad = loss_and_grad(ours, pred, gt, trimap, weight)
    expected, expected_grad = loss_and_grad(theirs, pred, gt, trimap, weight)
    assert value.dtype == torch.float64
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL


@pytest.mark.parametrize("form", ["function", "module"])
def test_trio_components(device, form):
    pred, gt, trimap, _ = batch(2, 17, 11, device=device)
    fn = vitmatte_alpha_losses if form == "function" else VitMatteAlphaLosses()
    total, unknown, known, penalty = fn(pred, gt, trimap)
    m = sample_map(trimap)
    assert max_rel_err(unknown, ref.vitmatte_unknown_l1_loss(m, pred, gt)) <= TOL
    assert max_rel_err(known, ref.vitmatte_known_l1_loss(m, pred, gt)) <= TOL
    assert max_rel_err(penalty, ref_grad.vitmatte_gradient_penalty(m, pred, gt)) <= TOL
    assert not unknown.requires_grad and not known.requires_grad and not penalty.requires_grad


def test_uint8_ground_truth_with_alpha_scale(device):
    pred, _, trimap, weight = batch(2, 8, 9, device=device)
    gt8 = torch.randint(0, 256, pred.shape, dtype=torch.uint8, device=device)
    value, grad = loss_and_grad(lambda p: vitmatte_alpha_losses(p, gt8, trimap, alpha_scale=255.0)[0], pred)
    g = gt8.double() / 255.0
    m = sample_map(trimap)
    expected, expected_grad = loss_and_grad(
        lambda p: ref.vitmatte_unknown_l1_loss(m, p, g) + ref.vitmatte_known_l1_loss(m, p, g)
        + ref_grad.vitmatte_gradient_penalty(m, p, g), pred)
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL


@pytest.mark.parametrize("name, ours, theirs", CONVENTIONS[:2] + CONVENTIONS[4:9], ids=[c[0] for c in CONVENTIONS[:2] + CONVENTIONS[4:9]])
def test_kinks_give_torch_abs_backward(device, name, ours, theirs):
    """Where pred == gt exactly, torch's abs backward gives 0 (sign(0) = 0): so do we."""
    pred, gt, trimap, weight = batch(2, 7, 8, device=device)
    pred[:, :, ::2] = gt[:, :, ::2]  # every other row exactly on the kink
    value, grad = loss_and_grad(ours, pred, gt, trimap, weight)
    expected, expected_grad = loss_and_grad(theirs, pred, gt, trimap, weight)
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL
    if "smooth" not in name and "charbonnier" not in name:
        assert torch.equal(grad[:, :, ::2], torch.zeros_like(grad[:, :, ::2]))
        assert torch.equal(expected_grad[:, :, ::2], torch.zeros_like(grad[:, :, ::2]))


def test_kinks_trio(device):
    """Exact kinks of all three terms: pred == gt in a block (alpha and Sobel
    differences 0) and a constant block (the penalty's Sobel responses 0)."""
    pred, gt, trimap, _ = batch(1, 12, 12, device=device)
    gt[..., 2:9, 2:9] = 0.25
    pred[..., 2:9, 2:9] = 0.25
    trimap[..., 1:10, 1:10] = 0.5
    value, grad = loss_and_grad(lambda p: vitmatte_alpha_losses(p, gt, trimap)[0], pred)
    m = sample_map(trimap)
    expected, expected_grad = loss_and_grad(
        lambda p: ref.vitmatte_unknown_l1_loss(m, p, gt) + ref.vitmatte_known_l1_loss(m, p, gt)
        + ref_grad.vitmatte_gradient_penalty(m, p, gt), pred)
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL
    # Deep inside the block every term sits on its kink: exactly 0, as torch's.
    assert torch.equal(grad[..., 4:7, 4:7], torch.zeros(1, 1, 3, 3, dtype=grad.dtype, device=device))
    assert torch.equal(expected_grad[..., 4:7, 4:7], grad[..., 4:7, 4:7])


@pytest.mark.parametrize("reduction", ["mean", "sample", "sum", "numel", "vitmatte"])
@pytest.mark.parametrize("rho", ["l1", "charbonnier"])
@pytest.mark.parametrize("mask_in_diff", [False, True])
def test_gradcheck(device, reduction, rho, mask_in_diff):
    pred, gt, trimap, weight = batch(2, 5, 6, device=device)

    def f(p):
        return alpha_loss(p, gt, weight=weight, rho=rho, eps=1e-3, reduction=reduction, guard=1e-3,
                          mask_in_diff=mask_in_diff)

    assert torch.autograd.gradcheck(f, (pred.requires_grad_(),))


def test_gradcheck_trio(device):
    pred, gt, trimap, _ = batch(2, 6, 7, device=device)
    f = lambda p: vitmatte_alpha_losses(p, gt, trimap, weights=(0.3, 0.7, 1.1))[0]  # noqa: E731
    assert torch.autograd.gradcheck(f, (pred.requires_grad_(),))


# reduction="none": (name, ours(pred, gt, trimap, weight), the reference's per-pixel map)
PER_PIXEL = [
    ("mmagic_l1_none",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, reduction="none"),
     lambda p, g, t, w: ref.mmagic_l1_loss(p, g, w, reduction="none")),
    ("mmagic_charbonnier_none",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-3, reduction="none"),
     lambda p, g, t, w: ref.mmagic_charbonnier_loss(p, g, w, reduction="none", eps=1e-3)),
    ("l1_in_diff_none",  # F.l1_loss(p * w, g * w, reduction="none"), GCA's form
     lambda p, g, t, w: alpha_loss(p, g, weight=w, mask_in_diff=True, reduction="none"),
     lambda p, g, t, w: torch.nn.functional.l1_loss(p * w, g * w, reduction="none")),
    ("charbonnier_in_diff_none",
     lambda p, g, t, w: alpha_loss(p, g, weight=w, rho="charbonnier", eps=1e-3, mask_in_diff=True, reduction="none"),
     lambda p, g, t, w: torch.sqrt((p * w - g * w) ** 2 + 1e-3)),
    ("known_trimap_none",
     lambda p, g, t, w: alpha_loss(p, g, t, unknown_value=0.5, region="known", reduction="none"),
     lambda p, g, t, w: ref.mmagic_l1_loss(p, g, (sample_map(t) == 0).to(p.dtype), reduction="none")),
    ("all_none",
     lambda p, g, t, w: AlphaLoss(region="all", reduction="none")(p, g),
     lambda p, g, t, w: torch.nn.functional.l1_loss(p, g, reduction="none")),
]


@pytest.mark.parametrize("name, ours, theirs", PER_PIXEL, ids=[c[0] for c in PER_PIXEL])
def test_reduction_none_matches_reference_float64(device, name, ours, theirs):
    """The (B,1,H,W) map of per-pixel terms and its gradient for a grad_output map, as
    mmagic's reduction='none' (and the mask-in-difference forms) give them; kinks included."""
    pred, gt, trimap, weight = batch(2, 9, 13, device=device)
    pred[:, :, ::3] = gt[:, :, ::3]  # every third row on the L1 kink
    v = torch.rand(pred.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64).to(device) + 0.5
    results = []
    for fn in (ours, theirs):
        p = pred.clone().requires_grad_()
        out = fn(p, gt, trimap, weight)
        results.append((out.detach(), *torch.autograd.grad(out, p, v)))
    (value, grad), (expected, expected_grad) = (r[:2] for r in results)
    assert value.shape == pred.shape and value.dtype == torch.float64
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL
    if "charbonnier" not in name:
        assert torch.equal(grad[:, :, ::3], torch.zeros_like(grad[:, :, ::3]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reduction_none_sums_to_sum_and_keeps_dtypes(device, dtype):
    """The map adds up to reduction="sum"; float32 for half-precision pred (as DIMLoss's
    map), the gradient in pred's dtype."""
    pred, gt, _, weight = batch(2, 16, 24, device=device)
    p = pred.to(dtype).requires_grad_()
    values = alpha_loss(p, gt, weight=weight, rho="charbonnier", eps=1e-6, reduction="none")
    total = alpha_loss(p, gt, weight=weight, rho="charbonnier", eps=1e-6, reduction="sum")
    assert values.dtype == torch.float32 and values.shape == pred.shape
    assert max_rel_err(values.double().sum(), total.double()) <= 1e-6
    (grad,) = torch.autograd.grad(values.sum(), p)
    (grad_sum,) = torch.autograd.grad(alpha_loss(p, gt, weight=weight, rho="charbonnier", eps=1e-6, reduction="sum"), p)
    assert grad.dtype == dtype and torch.equal(grad, grad_sum)


@pytest.mark.parametrize("rho", ["l1", "charbonnier"])
def test_gradcheck_reduction_none(device, rho):
    pred, gt, trimap, weight = batch(2, 5, 6, device=device)
    f = lambda p: alpha_loss(p, gt, weight=weight, rho=rho, eps=1e-3, reduction="none")  # noqa: E731
    assert torch.autograd.gradcheck(f, (pred.requires_grad_(),))


def test_reduction_none_compiles_fullgraph(device):
    """The per-pixel output through the fake kernel: no graph break, the same map and gradient."""
    pred, gt, _, weight = (t.float() for t in batch(2, 12, 10, device=device))
    v = torch.rand(pred.shape, generator=torch.Generator().manual_seed(3)).to(device)

    def step(p):
        return (alpha_loss(p, gt, weight=weight, rho="charbonnier", eps=1e-6, reduction="none") * v).sum()

    value, grad = loss_and_grad(step, pred)
    c_value, c_grad = loss_and_grad(torch.compile(step, fullgraph=True), pred)
    assert max_rel_err(c_value, value) <= 1e-6
    assert max_rel_err(c_grad, grad) <= 1e-6


def test_reduction_none_is_the_pointwise_losses_only(device):
    pred, gt, trimap, _ = batch(1, 6, 6, device=device)
    with pytest.raises(ValueError, match="reduction: expected one of .*got 'none' .'none' is alpha_loss's"):
        mattingloss.gradient_loss(pred, gt, trimap, reduction="none")
    with pytest.raises(ValueError, match="reduction: expected one of"):
        alpha_loss(pred, gt, trimap, reduction="per_pixel")


def test_mask_in_diff_differs_for_charbonnier():
    """Charbonnier: rho(p*w - g*w) adds sqrt(eps) at every w = 0 pixel, w * rho(p - g) does not."""
    pred, gt, _, weight = batch(1, 4, 5)
    eps = 1e-2
    weighted = alpha_loss(pred, gt, weight=weight, rho="charbonnier", eps=eps, reduction="sum")
    in_diff = alpha_loss(pred, gt, weight=weight, rho="charbonnier", eps=eps, reduction="sum", mask_in_diff=True)
    assert weighted.item() == pytest.approx((weight * torch.sqrt((pred - gt) ** 2 + eps)).sum().item(), rel=1e-12)
    assert in_diff.item() == pytest.approx(torch.sqrt((pred * weight - gt * weight) ** 2 + eps).sum().item(), rel=1e-12)
    assert in_diff.item() - weighted.item() > (weight == 0).sum().item() * eps**0.5 * 0.5
    l1_weighted = alpha_loss(pred, gt, weight=weight, reduction="sum")
    l1_in_diff = alpha_loss(pred, gt, weight=weight, reduction="sum", mask_in_diff=True)
    assert l1_in_diff.item() == pytest.approx(l1_weighted.item(), rel=1e-14)


def test_empty_regions(device):
    """ViTMatte's known term is 0 when the known region is empty (as its code); its
    unknown term would be NaN (0 * inf), ours is 0 with a zero gradient."""
    pred, gt, _, _ = batch(2, 5, 6, device=device)
    all_unknown = torch.full_like(pred, 0.5)
    value, grad = loss_and_grad(lambda p: alpha_loss(p, gt, all_unknown, unknown_value=0.5, region="known",
                                                     reduction="vitmatte", mask_in_diff=True), pred)
    expected, expected_grad = loss_and_grad(lambda p: ref.vitmatte_known_l1_loss(sample_map(all_unknown), p, gt), pred)
    assert value.item() == expected.item() == 0.0
    assert torch.equal(grad, expected_grad)
    none_unknown = torch.zeros_like(pred)
    total, unknown, known, penalty = vitmatte_alpha_losses(pred.requires_grad_(), gt, none_unknown)
    assert unknown.item() == 0.0 and penalty.item() == 0.0
    assert torch.isnan(ref.vitmatte_unknown_l1_loss(sample_map(none_unknown), pred, gt)).item()
    assert known.item() == pytest.approx(ref.vitmatte_known_l1_loss(sample_map(none_unknown), pred, gt).item(), rel=TOL)
    for reduction in ("mean", "sample"):
        v = alpha_loss(pred, gt, none_unknown, unknown_value=0.5, reduction=reduction)
        (g,) = torch.autograd.grad(v, pred)
        assert v.item() == 0.0 and torch.equal(g, torch.zeros_like(g))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("target", ["uint8", "float32", "float16"])
def test_dtypes_read_as_stored(device, dtype, target):
    """Lower-precision inputs: the float32 computation of the values as stored.
    Pred is kept 1/64 away from gt so that no L1 sign depends on rounding."""
    g = torch.Generator().manual_seed(3)
    B, H, W = 2, 11, 37
    gt8 = torch.randint(0, 256, (B, 1, H, W), generator=g, dtype=torch.uint8)
    sign = torch.where(torch.rand(B, 1, H, W, generator=g) < 0.5, -1.0, 1.0).double()
    pred = (gt8.double() / 255 + sign / 64).to(dtype)
    trimap8 = torch.tensor([0, 128, 255], dtype=torch.uint8)[torch.randint(0, 3, (B, 1, H, W), generator=g)]
    gt = gt8 if target == "uint8" else gt8.to(getattr(torch, target))
    trimap = trimap8 if target == "uint8" else trimap8.to(getattr(torch, target))
    pred, gt, trimap = pred.to(device), gt.to(device), trimap.to(device)
    ours, grad = loss_and_grad(lambda p: alpha_loss(p, gt, trimap, alpha_scale=255.0, mask_in_diff=True), pred)
    m = (trimap8 == 128).double().to(device)
    expected, expected_grad = loss_and_grad(
        lambda p: ref.gca_regression_loss(p, gt8.double().to(device) / 255, m) * (m.sum() + 1e-8) / m.sum(),
        pred.double())
    assert ours.dtype == torch.float32 and grad.dtype == dtype
    assert max_rel_err(ours, expected) <= 1e-5
    # The gradient is sign * w / N: exact up to its rounding to pred's dtype.
    assert max_rel_err(grad, expected_grad) <= {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]


@pytest.mark.parametrize("sobel", [0, 1, 2])
def test_converted_rows_match_rows_read_in_place(device, sobel):
    """Inputs that are not the accumulation type are converted row by row into a
    small ring of staging rows (CPU); float32 ones are read in place. The same
    values either way give bitwise the same sums and gradient maps, over several
    bands per sample (70 rows of 600: 54-row bands), their halo rows and the edges."""
    g = torch.Generator().manual_seed(7)
    B, H, W = 2, 70, 600
    pred = torch.rand(B, 1, H, W, generator=g).to(torch.bfloat16).to(device)
    gt8 = torch.randint(0, 256, (B, 1, H, W), generator=g, dtype=torch.uint8).to(device)
    trimap8 = torch.tensor([0, 128, 255], dtype=torch.uint8)[torch.randint(0, 3, (B, 1, H, W), generator=g)].to(device)

    def op(p, gt, trimap):
        return torch.ops.mattingloss.alpha_sobel_forward(
            p, gt, trimap, 0, 128.0, 128.0, 255.0, 0, 0.0, True, True, True, sobel, 1e-8, [1.0, 1.0, 1.0, 0.01],
            [0, 1, 0], 2, True)

    sums, grad, _ = op(pred, gt8, trimap8)
    f_sums, f_grad, _ = op(pred.float(), gt8.float(), trimap8.float())
    assert grad.dtype == torch.bfloat16 and f_grad.dtype == torch.float32
    assert torch.equal(sums, f_sums)
    assert torch.equal(grad, f_grad.to(torch.bfloat16))
    assert f_grad.abs().sum() > 0


@pytest.mark.parametrize("sobel", [0, 1, 2])
def test_binary_mask_shortcut_is_bitwise_the_general_formula(device, sobel):
    """A trimap's 0/1 region takes shortcuts: with L1 terms, the CPU's fast form (each
    term added where its region holds it, its derivative the coefficient with the
    difference's sign: alpha_pixel_binary, sobel_pixel_binary; sobel 0 and 1), else
    |(p - g) * w| for |p*w - g*w| (one product, and sign0 for sign0 * w; sobel 2, and
    CUDA): the same values and gradients, bitwise, as a weight map holding the same 0/1
    values, which takes the general formula; ties (p = g, equal Sobel responses), zeros,
    negative values and a negative coefficient included."""
    g = torch.Generator().manual_seed(23)
    B, H, W = 2, 37, 53
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    gt = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    pred[0, 0, :10] = gt[0, 0, :10]
    pred[1, 0, 5:9] = 0.0
    gt[1, 0, 5:9] = 0.0
    pred[1, 0, 20:] = -pred[1, 0, 20:]
    trimap = torch.randint(0, 3, (B, 1, H, W), generator=g).double() / 2
    weight = (trimap == 0.5).double()
    for dtype in (torch.float32, torch.float64):
        p, gt_, t, w = (x.to(dtype).to(device) for x in (pred, gt, trimap, weight))

        def op(mask, mode, lo):
            return torch.ops.mattingloss.alpha_sobel_forward(
                p, gt_, mask, mode, lo, lo, 1.0, 0, 0.0, True, True, True, sobel, 1e-8, [1.0, -0.7, 1.3, 0.01],
                [0, 1, 2], 3, True)

        (sums, maps, _), (w_sums, w_maps, _) = op(t, 0, 0.5), op(w, 2, 0.0)
        assert torch.equal(sums, w_sums) and torch.equal(maps, w_maps)
        assert maps.abs().sum() > 0


NON_FINITE_SPOTS = {"pred_known": (0, 0, 3, 5), "pred_unknown": (0, 0, 40, 300), "gt_edge": (1, 0, 69, 599)}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e37])
@pytest.mark.parametrize("spot", list(NON_FINITE_SPOTS))
@pytest.mark.parametrize("sobel", [0, 1])
def test_non_finite_inputs_keep_the_general_formulas_sums(device, sobel, spot, value):
    """The CPU's fast form for a trimap's region with L1 terms (alpha_pixel_binary,
    sobel_pixel_binary) adds each term only where its region holds it, while the
    references' |x * 0| elsewhere is NaN for a non-finite x: a band whose values were
    not all finite is computed again in the general form. So, with NaN, +-inf or a huge
    value in a known pixel, an unknown one or the image's last pixel, the sums (their
    NaN included) and the gradient maps equal a 0/1 weight map's (the general formula)
    exactly, in one band of a sample whose other bands stay in the fast form
    (70 rows of 600: two 54-row bands per sample)."""
    g = torch.Generator().manual_seed(29)
    B, H, W = 2, 70, 600
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    gt = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    trimap = torch.randint(0, 3, (B, 1, H, W), generator=g).double() / 2
    b, c, y, x = NON_FINITE_SPOTS[spot]
    trimap[b, c, y, x] = 0.0 if spot == "pred_known" else 0.5
    (gt if spot == "gt_edge" else pred)[b, c, y, x] = value
    weight = (trimap == 0.5).double()
    for dtype in (torch.float32, torch.float64):
        p, gt_, t, w = (v.to(dtype).to(device) for v in (pred, gt, trimap, weight))

        def op(mask, mode, lo):
            return torch.ops.mattingloss.alpha_sobel_forward(
                p, gt_, mask, mode, lo, lo, 1.0, 0, 0.0, True, True, True, sobel, 1e-8, [1.0, 0.7, 1.3, 0.01],
                [0, 1, 2], 3, True)

        (sums, maps, _), (w_sums, w_maps, _) = op(t, 0, 0.5), op(w, 2, 0.0)
        torch.testing.assert_close(sums, w_sums, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(maps, w_maps, rtol=0, atol=0, equal_nan=True)
        assert sums[1 - b].isfinite().all()
        assert sums[b].isfinite().all() == (value == 1e37)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("region", [0.0, 0.5])
def test_non_finite_prediction_gives_the_references_trio(device, value, region):
    """NaN or inf in pred_alpha, in the known or the unknown region: each of the trio's
    terms is what ViTMatte's code gives (NaN or inf where it gives them)."""
    pred, gt, trimap, _ = batch(2, 17, 11, device=device)
    trimap[1, 0, 8, 5] = region
    pred[1, 0, 8, 5] = value
    total, unknown, known, penalty = vitmatte_alpha_losses(pred, gt, trimap)
    m = sample_map(trimap)
    expected = (ref.vitmatte_unknown_l1_loss(m, pred, gt), ref.vitmatte_known_l1_loss(m, pred, gt),
                ref_grad.vitmatte_gradient_penalty(m, pred, gt))
    for got, want in zip((unknown, known, penalty), expected):
        torch.testing.assert_close(got, want, rtol=TOL, atol=0, equal_nan=True)
    assert not total.isfinite()


@pytest.mark.parametrize("trimap_dtype, value", [(torch.float16, 0.3), (torch.bfloat16, 0.3), (torch.float32, 0.1),
                                                 (torch.float64, 0.1), (torch.uint8, 128.0), (torch.uint8, 128.5),
                                                 (torch.int64, 2.0), (torch.bool, 1.0)])
@pytest.mark.parametrize("pred_dtype", [torch.float32, torch.float64])
def test_trimap_compared_as_torch_does(device, trimap_dtype, value, pred_dtype):
    """`trimap == unknown_value` gives exactly the pixels torch's comparison gives for
    that trimap dtype (the bound rounded to torch.result_type(trimap, value))."""
    g = torch.Generator().manual_seed(1)
    B, H, W = 2, 6, 7
    if trimap_dtype == torch.bool:
        trimap = torch.rand(B, 1, H, W, generator=g) < 0.5
    elif trimap_dtype.is_floating_point:
        trimap = torch.tensor([0.0, value, 1.0], dtype=torch.float64)[torch.randint(0, 3, (B, 1, H, W), generator=g)]
        trimap = trimap.to(trimap_dtype)
    else:
        trimap = torch.tensor([0, 2, 128, 255])[torch.randint(0, 4, (B, 1, H, W), generator=g)].to(trimap_dtype)
    trimap = trimap.to(device)
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64).to(device)
    gt = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64).to(device)
    mask = (trimap == value).double()
    ours = alpha_loss(pred.to(pred_dtype), gt, trimap, unknown_value=value, reduction="sum")
    expected = ((pred.to(pred_dtype).double() - gt).abs() * mask).sum()
    assert max_rel_err(ours, expected) <= (TOL if pred_dtype == torch.float64 else 1e-6)
    ranged = alpha_loss(pred.to(pred_dtype), gt, trimap, unknown_range=(value - 0.01, value + 0.01), reduction="sum")
    rmask = ((trimap > value - 0.01) & (trimap < value + 0.01)).double()
    r_expected = ((pred.to(pred_dtype).double() - gt).abs() * rmask).sum()
    assert max_rel_err(ranged, r_expected) <= (TOL if pred_dtype == torch.float64 else 1e-6)


def test_deterministic_across_calls_and_threads():
    """Bitwise the same with any thread count: 3 threads on CI's 2 cores leave a share
    to be taken over by another thread (common/cpu_parallel.h); 8 chunks (2 samples of 4
    bands of 127 rows), not a multiple of 3."""
    pred, gt, trimap, _ = batch(2, 400, 257, device="cpu")
    pred = pred.float()

    def once():
        value, grad = loss_and_grad(lambda p: vitmatte_alpha_losses(p, gt.float(), trimap.float())[0], pred)
        return value, grad

    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 1, 2, 3):
            torch.set_num_threads(n)
            results.append(once())
    finally:
        torch.set_num_threads(threads)
    for value, grad in results[1:]:
        assert torch.equal(value, results[0][0]) and torch.equal(grad, results[0][1])


def test_user_tensors_untouched(device):
    pred, gt, trimap, weight = batch(2, 8, 9, device=device)
    copies = [t.clone() for t in (pred, gt, trimap, weight)]
    p = pred.requires_grad_()
    vitmatte_alpha_losses(p, gt, trimap)[0].backward()
    alpha_loss(p, gt, weight=weight, rho="charbonnier").backward()
    for t, c in zip((pred, gt, trimap, weight), copies):
        assert torch.equal(t.detach(), c)


def test_module_matches_functional(device):
    pred, gt, trimap, weight = batch(2, 8, 9, device=device)
    module = AlphaLoss(rho="charbonnier", eps=1e-6, guard=1e-8, mask_in_diff=True)
    assert torch.equal(module(pred, gt, weight=weight),
                       alpha_loss(pred, gt, weight=weight, rho="charbonnier", eps=1e-6, guard=1e-8, mask_in_diff=True))
    module = AlphaLoss(unknown_value=0.5, reduction="vitmatte")
    assert torch.equal(module(pred, gt, trimap), alpha_loss(pred, gt, trimap, unknown_value=0.5, reduction="vitmatte"))
    assert "unknown_value=0.5" in repr(module)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(region="inside"), ValueError, r"region: expected one of \['unknown', 'known', 'all'\], got 'inside'"),
        (dict(rho="l2"), ValueError, r"rho: expected one of \['l1', 'charbonnier'\], got 'l2'"),
        (dict(rho="charbonnier", eps=0.0), ValueError, r"eps: expected > 0.0, got 0.0"),
        (dict(reduction="avg"), ValueError, r"reduction: expected one of .*got 'avg'"),
        (dict(guard=-1.0), ValueError, r"guard: expected >= 0.0, got -1.0"),
        (dict(alpha_scale=0), ValueError, r"alpha_scale: expected > 0.0, got 0.0"),
        (dict(mask_in_diff=1), TypeError, r"mask_in_diff: expected a bool, got 1"),
        (dict(unknown_value=0.5, unknown_range=(0, 1)), ValueError, r"unknown_value and unknown_range: give one"),
        (dict(unknown_range=(1, 0)), ValueError, r"unknown_range: expected lo < hi, got \(1.0, 0.0\)"),
        (dict(unknown_value=float("nan")), ValueError, r"unknown_value: expected a finite number, got nan"),
    ],
)
def test_bad_options(kwargs, error, match):
    pred, gt, trimap, _ = batch(1, 4, 4)
    with pytest.raises(error, match=match):
        alpha_loss(pred, gt, trimap, **kwargs)
    if not kwargs.get("unknown_value") == 0.5:
        with pytest.raises(error, match=match):
            AlphaLoss(**kwargs)


def test_bad_tensors(device):
    pred, gt, trimap, weight = batch(2, 6, 7, device=device)
    cases = [
        (dict(pred_alpha=[0.5]), TypeError, r"pred_alpha: expected a torch.Tensor, got list"),
        (dict(pred_alpha=pred.long()), TypeError, r"pred_alpha: expected float16, bfloat16, float32 or float64"),
        (dict(pred_alpha=pred[:, 0]), ValueError, r"pred_alpha: expected shape \(B, 1, H, W\), got shape \(2, 6, 7\)"),
        (dict(pred_alpha=pred[:, :, :0]), ValueError, r"pred_alpha: expected a non-empty batch and image"),
        (dict(alpha=gt[..., :3]), ValueError, r"alpha: expected shape \(2, 1, 6, 7\) to match pred_alpha, got shape \(2, 1, 6, 3\)"),
        (dict(alpha=gt.to(torch.complex64)), TypeError, r"alpha: expected a real dtype"),
        (dict(alpha=gt.clone().requires_grad_()), ValueError, r"alpha: requires grad, but this loss differentiates pred_alpha only"),
        (dict(trimap=trimap.to("meta")), ValueError, r"trimap: expected device .*pred_alpha's.*device meta"),
        (dict(trimap=trimap[:1]), ValueError, r"trimap: expected shape \(2, 1, 6, 7\) to match pred_alpha"),
        (dict(trimap=None), ValueError, r"trimap/weight: expected exactly one of them, got neither"),
        (dict(weight=weight), ValueError, r"trimap/weight: expected exactly one of them, got both"),
    ]
    for changes, error, match in cases:
        args = dict(pred_alpha=pred, alpha=gt, trimap=trimap)
        args.update(changes)
        with pytest.raises(error, match=match):
            alpha_loss(**args)
    with pytest.raises(ValueError, match=r"trimap/weight: region='all' reads no mask"):
        alpha_loss(pred, gt, trimap, region="all")
    with pytest.raises(ValueError, match=r"unknown_value/unknown_range: they describe a trimap, but weight= was given"):
        alpha_loss(pred, gt, weight=weight, unknown_value=0.5)
    with pytest.raises(ValueError, match=r"weights: expected \(unknown, known, gradient\)"):
        vitmatte_alpha_losses(pred, gt, trimap, weights=(1.0, 1.0))


@pytest.mark.parametrize("call", [
    lambda p, g, w, **k: alpha_loss(p, g, weight=w, **k),
    lambda p, g, w, **k: AlphaLoss(**k)(p, g, weight=w),
    lambda p, g, w, **k: vitmatte_alpha_losses(p, g, weight=w, **k)[0],
    lambda p, g, w, **k: VitMatteAlphaLosses(**k)(p, g, weight=w)[0],
    lambda p, g, w, **k: mattingloss.gradient_loss(p, g, weight=w, **k),
    lambda p, g, w, **k: mattingloss.GradientLoss(**k)(p, g, weight=w),
], ids=["alpha_loss", "AlphaLoss", "vitmatte_alpha_losses", "VitMatteAlphaLosses", "gradient_loss", "GradientLoss"])
def test_negative_weight_is_rejected_unless_check_weight_is_false(device, call):
    pred, gt, _, weight = batch(device=device)
    weight = weight.clone()
    weight[1, 0, 2, 3] = -0.25
    with pytest.raises(ValueError, match=r"weight: expected non-negative weights, got a minimum of -0.25"):
        call(pred, gt, weight)
    unchecked = call(pred, gt, weight, check_weight=False)  # the caller's choice: computed as given
    assert torch.isfinite(unchecked)


def op_samples(device):
    pred, gt, trimap, weight = batch(2, 6, 8, device=device)
    op_args = dict(alpha_scale=1.0, rho=0, eps=0.0, mask_in_diff=True, unknown_term=True, known_term=True,
                   sobel=1, grad_eps=1e-8, coef=[1.0, 1.0, 1.0, 0.01], group=[0, 1, 0], groups=2, grad=True,
                   per_pixel=False)

    def args(p, g, m, mode, lo, hi, **changes):
        a = {**op_args, **changes}
        return (p, g, m, mode, lo, hi, a["alpha_scale"], a["rho"], a["eps"], a["mask_in_diff"], a["unknown_term"],
                a["known_term"], a["sobel"], a["grad_eps"], a["coef"], a["group"], a["groups"], a["grad"],
                a["per_pixel"])

    yield args(pred, gt, trimap, 0, 0.5, 0.5)
    yield args(pred.float(), (gt * 255).to(torch.uint8), (trimap * 255).to(torch.uint8), 1, 100.0, 200.0,
               alpha_scale=255.0, rho=1, eps=1e-6, sobel=2)
    yield args(pred.to(torch.bfloat16), gt.float(), weight, 2, 0.0, 0.0, groups=1, group=[0, 0, 0], sobel=0)
    yield args(pred.to(torch.float16), gt, None, 3, 0.0, 0.0, known_term=False, groups=1, group=[0, 0, 0],
               grad=False)
    yield args(pred, gt, weight, 2, 0.0, 0.0, groups=3, group=[2, 1, 0], mask_in_diff=False)
    yield args(pred.to(torch.bfloat16), gt, weight, 2, 0.0, 0.0, known_term=False, sobel=0, groups=1,
               group=[0, 0, 0], coef=[1.0, 0.0, 0.0, 0.0], per_pixel=True)
    factors = torch.tensor([[0.5, 2.0], [0.25, 3.0]], device=device)
    yield (*args(pred.float(), gt, trimap, 0, 0.5, 0.5), factors)  # the total's gradient as one map


def test_opcheck(device):
    for args in op_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.alpha_sobel_forward.default, args)


def test_op_rejects_bad_arguments_directly(device):
    args = list(next(op_samples(device)))
    bad = [(1, args[1][..., :3], "alpha has shape"), (3, 7, "bad mask_mode"), (7, 5, "bad rho"),
           (12, 9, "bad sobel"), (16, 4, "groups must be in 1..3"), (15, [0, 2, 0], "group index 2 out of 0..1"),
           (2, None, "mask must be given"), (18, True, "per_pixel values need sobel == 0")]
    assert_op_rejects(torch.ops.mattingloss.alpha_sobel_forward, args, bad)
    factors = torch.ones(2, 2, dtype=torch.float64, device=device)
    with_factors = [*args, factors]
    bad = [(19, factors[:1], r"factors has shape \[1, 2\], expected \(2, 2\)"),
           (19, factors.float(), "factors must be Double, got Float"),
           (17, False, "factors scale the gradient: they need grad=True")]
    assert_op_rejects(torch.ops.mattingloss.alpha_sobel_forward, with_factors, bad)


def weights_samples(device):
    """(forward's arguments, weights' arguments): every mask mode, several bands per
    sample (70 rows of 600), a uint8 trimap and a float64 prediction."""
    g = torch.Generator().manual_seed(11)
    B, H, W = 2, 70, 600
    pred = torch.rand(B, 1, H, W, generator=g)
    gt = torch.rand(B, 1, H, W, generator=g)
    trimap8 = torch.tensor([0, 128, 255], dtype=torch.uint8)[torch.randint(0, 3, (B, 1, H, W), generator=g)]
    weight = torch.rand(B, 1, H, W, generator=g) * (torch.rand(B, 1, H, W, generator=g) > 0.4)
    for p, m, mode, lo, hi in ((pred, trimap8, 0, 128.0, 128.0), (pred.double(), trimap8.float() / 255, 1, 0.0, 1.0),
                               (pred, weight, 2, 0.0, 0.0), (pred.double(), None, 3, 0.0, 0.0)):
        p, m = p.to(device), None if m is None else m.to(device)
        forward = (p, gt.to(device), m, mode, lo, hi, 1.0, 0, 0.0, True, True, True, 1, 1e-8, [1.0, 1.0, 1.0, 0.01],
                   [0, 1, 0], 2, True)
        yield forward, (p, m, mode, lo, hi)


def test_weights_op_gives_the_forward_weight_sums_bitwise(device):
    """alpha_sobel_weights reads the mask alone and sums the weights in the forward's
    order: its columns are the forward's, bitwise (the factors the gradient is scaled
    by are then those of the loss); the other columns are 0."""
    w_cols = [_codes.SUM_W_UNKNOWN, _codes.SUM_W_KNOWN]
    for forward, weights in weights_samples(device):
        sums = torch.ops.mattingloss.alpha_sobel_forward(*forward)[0]
        w = torch.ops.mattingloss.alpha_sobel_weights(*weights)
        assert w.dtype == sums.dtype and w.shape == sums.shape
        assert torch.equal(w[:, w_cols], sums[:, w_cols])
        others = [c for c in range(_codes.N_SUMS) if c not in w_cols]
        assert torch.equal(w[:, others], torch.zeros_like(w[:, others]))
        assert w[:, w_cols].sum() > 0


def test_factors_give_one_map_the_scaled_sum_of_the_maps(device):
    """With factors, the forward writes one map: sum_g factors[g][b] * map g, each term's
    coefficient scaled before the stencil (so rounded differently, not bitwise);
    the sums are unchanged."""
    g = torch.Generator().manual_seed(13)
    for forward, _ in weights_samples(device):
        acc = torch.float64 if forward[0].dtype == torch.float64 else torch.float32
        factors = (torch.rand(2, forward[0].shape[0], generator=g, dtype=torch.float64) + 0.5).to(acc).to(device)
        sums, maps, _ = torch.ops.mattingloss.alpha_sobel_forward(*forward)
        f_sums, f_map, _ = torch.ops.mattingloss.alpha_sobel_forward(*forward, False, factors)
        expected = (maps.to(acc) * factors[:, :, None, None, None]).sum(0, keepdim=True)
        assert f_map.shape == (1, *maps.shape[1:]) and f_map.dtype == maps.dtype
        assert torch.equal(f_sums, sums)
        tol = 1e-13 if acc == torch.float64 else 1e-5
        assert torch.allclose(f_map.to(acc), expected, rtol=tol, atol=tol * expected.abs().max().item())


def prescaled_samples(device):
    """(prescaled's arguments, its compose arguments): weights_samples' passes with
    ViTMatte's norms, and a mean/sample pair with guards (two factor groups)."""
    composes = (([4, 4, 4], [0.0, 0.0, 0.0], 262144, 0.01, [1.0, 2.0, 0.5]),
                ([0, 1, 0], [1e-8, 1e-12, 1e-8], 0, 0.01, [0.3, 1.0, 1.5]))
    for i, (forward, _) in enumerate(weights_samples(device)):
        yield (*forward[:17], *composes[i % 2]), composes[i % 2]


def test_prescaled_op_is_its_four_ops_bitwise(device):
    """alpha_sobel_prescaled runs weights, compose, forward with the factors and
    compose: the same total, components and gradient map, bitwise, as those four calls
    (on CUDA two kernels, each compose run by the last block of the kernel before it)."""
    ops = torch.ops.mattingloss
    for args, (norm, guard, crop, penalty, weights) in prescaled_samples(device):
        pred, mask, mode, lo, hi, group, groups = args[0], args[2], args[3], args[4], args[5], args[15], args[16]
        pixels = pred.shape[2] * pred.shape[3]

        def compose(sums):
            return ops.alpha_sobel_compose(sums, pixels, norm, guard, crop, penalty, weights, group, groups,
                                              mode == 3)

        factors = compose(ops.alpha_sobel_weights(pred, mask, mode, lo, hi))[2]
        sums, maps, _ = ops.alpha_sobel_forward(*args[:17], True, False, factors)
        total, components, _ = compose(sums)
        got = ops.alpha_sobel_prescaled(*args)
        for a, b in zip(got, (total, components, maps[0])):
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        assert maps.abs().sum() > 0 and total > 0


def test_prescaled_has_its_own_cuda_kernel():
    """A CUDA build registers the two-launch prescaled op for CUDA (issue 27's launch
    budget); the composite of the four ops serves the CPU and Meta."""
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    name = "mattingloss::alpha_sobel_prescaled"
    assert has(name, "CUDA") == mattingloss._ops.cuda_kernels_built()
    assert has(name, "CompositeExplicitAutograd") and not has(name, "CPU")


def test_prescaled_opcheck(device):
    for args, _ in prescaled_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.alpha_sobel_prescaled.default, args)


def test_weights_opcheck(device):
    for _, weights in weights_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.alpha_sobel_weights.default, weights)


def test_weights_rejects_bad_arguments_directly(device):
    _, args = next(weights_samples(device))
    bad = [(1, args[1][:, :, :5], "mask has shape"), (2, 7, "bad mask_mode"), (1, None, "mask must be given"),
           (0, args[0].int(), "pred_alpha must be floating")]
    assert_op_rejects(torch.ops.mattingloss.alpha_sobel_weights, args, bad)


def assert_op_rejects(op, args, bad):
    """op(*args) with args[index] = value raises a RuntimeError matching `match`, for each (index, value, match)."""
    for index, value, match in bad:
        changed = list(args)
        changed[index] = value
        with pytest.raises(RuntimeError, match=match):
            op(*changed)


def compose_samples(device):
    g = torch.Generator().manual_seed(3)
    sums = torch.rand(3, _codes.N_SUMS, generator=g, dtype=torch.float64) * 50
    sums[1, _codes.SUM_W_UNKNOWN] = 0.0  # an empty unknown region in one sample
    sums = sums.to(device)
    # (sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups, count_all)
    yield sums, 48, [4, 4, 4], [0.0, 0.0, 0.0], 262144, 0.01, [1.0, 1.0, 1.0], [0, 1, 0], 2, False
    yield sums.float(), 48, [1, 0, -1], [1e-8, 1e-12, 0.0], 0, 0.0, [2.0, 0.5, 1.0], [0, 1, 0], 2, False
    yield sums, 48, [3, -1, 2], [0.0, 0.0, 0.0], 0, 0.0, [1.0, 1.0, 3.0], [0, 0, 1], 2, True
    yield sums.float(), 48, [0, 0, 1], [0.0, 1e-8, 1e-8], 0, 0.01, [1.0, 1.0, 1.0], [0, 1, 2], 3, False


def compose_reference(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups, count_all):
    """What alpha_sobel_compose computes, term by term in float64 (csrc/alpha_sobel.h
    compose_alpha_losses; AlphaNorm codes 0 mean, 1 sample, 2 sum, 3 numel, 4 vitmatte)."""
    s = sums.double().cpu()
    B = s.shape[0]
    w_unknown = torch.full((B,), float(pixels), dtype=torch.float64) if count_all else s[:, 2]
    terms = [(w_unknown, s[:, 0]), (s[:, 3], s[:, 1]), (w_unknown, s[:, 4] + s[:, 5] + penalty * (s[:, 6] + s[:, 7]))]
    factors = torch.zeros(groups, B, dtype=torch.float64)
    components = torch.zeros(3, dtype=torch.float64)
    for t, (w, term) in enumerate(terms):
        if norm[t] == -1:
            continue
        total_w = w.sum().item()
        if norm[t] == 0:
            f = [1.0 / (total_w + guard[t]) if total_w + guard[t] > 0 else 0.0] * B
        elif norm[t] == 1:
            f = [1.0 / (x + guard[t]) / B if x + guard[t] > 0 else 0.0 for x in w.tolist()]
        elif norm[t] == 2:
            f = [1.0] * B
        elif norm[t] == 3:
            f = [1.0 / (B * pixels)] * B
        else:
            crop = crop_pixels or pixels
            f = [B * crop / total_w / (B * pixels) if total_w > 0 else 0.0] * B
        f = torch.tensor(f, dtype=torch.float64)
        factors[group[t]] = f
        components[t] = (f * term).sum()
    return (components * torch.tensor(weights, dtype=torch.float64)).sum(), components, factors


def test_compose_op_matches_its_formula(device):
    for args in compose_samples(device):
        total, components, factors = torch.ops.mattingloss.alpha_sobel_compose(*args)
        ref_total, ref_components, ref_factors = compose_reference(*args)
        tol = 1e-12 if args[0].dtype == torch.float64 else 1e-6
        assert total.dtype == components.dtype == factors.dtype == args[0].dtype
        assert factors.shape == (args[8], args[0].shape[0])
        assert max_rel_err(total.cpu(), ref_total) <= tol
        assert max_rel_err(components.cpu(), ref_components) <= tol
        assert max_rel_err(factors.cpu(), ref_factors) <= tol
    # An empty unknown region: ViTMatte's scale is 0 there (its code divides by 0).
    sums = torch.zeros(2, _codes.N_SUMS, dtype=torch.float64, device=device)
    sums[:, _codes.SUM_UNKNOWN] = 1.0
    total, components, factors = torch.ops.mattingloss.alpha_sobel_compose(
        sums, 16, [4, -1, -1], [0.0] * 3, 262144, 0.0, [1.0] * 3, [0, 0, 0], 1, False)
    assert total.item() == 0.0 and factors.abs().sum().item() == 0.0


def test_compose_opcheck(device):
    for args in compose_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.alpha_sobel_compose.default, args)


def test_compose_rejects_bad_arguments_directly(device):
    args = list(next(compose_samples(device)))
    bad = [(0, args[0][:, :5], "sums has shape"), (0, args[0].half(), "sums must be float32 or float64"),
           (1, 0, "pixels must be >= 1"), (2, [4, 5, 4], "bad norm 5"), (3, [0.0, -1.0, 0.0], "guard must be >= 0"),
           (4, -1, "crop_pixels must be >= 0"), (7, [0, 2, 0], "group index 2 out of 0..1"),
           (8, 4, "groups must be in 1..3"), (6, [1.0, 1.0], "need 3 values each")]
    assert_op_rejects(torch.ops.mattingloss.alpha_sobel_compose, args, bad)


def test_backward_in_place_and_retained_give_the_same_gradient(device):
    """backward scales the stored gradient in place (scale_gradient_) when the graph is
    freed, out of place with retain_graph: the same gradient either way, for terms of
    two different scales (ViTMatte's) and per-sample ones ("sample")."""
    pred, gt, trimap, weight = batch(2, 9, 11, device=device)
    pred = pred.float().requires_grad_(True)
    for call in (lambda p: vitmatte_alpha_losses(p, gt, trimap)[0],
                 lambda p: vitmatte_alpha_losses(p, gt, weight=weight, crop_size=None)[0],
                 lambda p: alpha_loss(p, gt, weight=weight, reduction="sample")):
        (kept,) = torch.autograd.grad(call(pred), pred, retain_graph=True)
        (freed,) = torch.autograd.grad(call(pred), pred)
        assert max_rel_err(freed, kept) <= 1e-6 and kept.abs().sum() > 0


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(device, dynamic):
    """Functional forms with static shapes; Modules (options checked at construction)
    with dynamic ones, where Python-float option checks cannot be traced."""
    if dynamic:
        trio = VitMatteAlphaLosses()
        sample = AlphaLoss(rho="charbonnier", eps=1e-6, reduction="sample")

        def step(p, gt, trimap, weight):
            return trio(p, gt, trimap)[0] + sample(p, gt, weight=weight)
    else:
        def step(p, gt, trimap, weight):
            total = vitmatte_alpha_losses(p, gt, trimap)[0]
            return total + alpha_loss(p, gt, weight=weight, rho="charbonnier", eps=1e-6, reduction="sample")

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for size in ((16, 16), (20, 18)) if dynamic else ((16, 16),):
        pred, gt, trimap, weight = (t.float() for t in batch(2, *size, device=device))
        value, grad = loss_and_grad(step, pred, gt, trimap, weight)
        c_value, c_grad = loss_and_grad(compiled, pred, gt, trimap, weight)
        assert max_rel_err(c_value, value) <= 1e-6
        assert max_rel_err(c_grad, grad) <= 1e-6


def test_exports():
    assert mattingloss.alpha_loss is alpha_loss and mattingloss.vitmatte_alpha_losses is vitmatte_alpha_losses
    assert alpha_module.alpha_sobel_forward is torch.ops.mattingloss.alpha_sobel_forward.default
    assert alpha_module.alpha_sobel_compose is torch.ops.mattingloss.alpha_sobel_compose.default
    assert alpha_module.alpha_sobel_prescaled is torch.ops.mattingloss.alpha_sobel_prescaled.default
    assert mattingloss._ops.scale_gradient_ is torch.ops.mattingloss.scale_gradient_.default
