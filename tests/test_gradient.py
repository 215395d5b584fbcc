"""The Sobel gradient loss against ViTMatte's, mmagic's and GCA's
(mattingloss.reference.gradient): float64 to rel 1e-10, loss and gradient
(the adjoint stencil at every border), kinks, gradcheck, dtypes, errors."""
import pytest
import torch

from mattingloss import GradientLoss, gradient_loss
from mattingloss.reference import alpha as ref
from mattingloss.reference import gradient as ref_grad

from conftest import available_gib, max_rel_err
from test_alpha import batch, loss_and_grad, sample_map

TOL = 1e-10

CONVENTIONS = [
    ("vitmatte", lambda p, g, t, w: gradient_loss(p, g, t),
     lambda p, g, t, w: ref_grad.vitmatte_gradient_penalty(sample_map(t), p, g)),
    ("vitmatte_soft_map", lambda p, g, t, w: gradient_loss(p, g, weight=w),
     lambda p, g, t, w: ref_grad.vitmatte_gradient_penalty(w, p, g)),
    ("mmagic_weight", lambda p, g, t, w: gradient_loss(p, g, weight=w, style="mmagic"),
     lambda p, g, t, w: ref_grad.mmagic_gradient_loss(p, g, w)),
    ("mmagic_no_weight", lambda p, g, t, w: gradient_loss(p, g, style="mmagic"),
     lambda p, g, t, w: ref_grad.mmagic_gradient_loss(p, g)),
    ("mmagic_sum", lambda p, g, t, w: gradient_loss(p, g, weight=w, style="mmagic", reduction="sum"),
     lambda p, g, t, w: ref_grad.mmagic_gradient_loss(p, g, w, reduction="sum")),
    ("gca_weight", lambda p, g, t, w: gradient_loss(p, g, weight=w, style="gca"),
     lambda p, g, t, w: ref_grad.gca_grad_loss(p, g, w)),
    ("gca_trimap", lambda p, g, t, w: gradient_loss(p, g, t, style="gca", unknown_value=0.5),
     lambda p, g, t, w: ref_grad.gca_grad_loss(p, g, sample_map(t))),
    ("gca_no_weight", lambda p, g, t, w: gradient_loss(p, g, style="gca"),
     lambda p, g, t, w: ref_grad.gca_grad_loss(p, g)),
]


@pytest.mark.parametrize("shape", [(2, 9, 13), (1, 1, 1), (1, 1, 7), (3, 6, 1), (2, 2, 2), (2, 40, 1000), (1, 70, 300)])
@pytest.mark.parametrize("name, ours, theirs", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_matches_reference_float64(device, name, ours, theirs, shape):
    """Any H, W >= 1: F.conv2d(padding=1) zero-pads, and so do the stencil and its
    adjoint; (2, 40, 1000) and (1, 70, 300) span several row bands (halo rows)."""
    pred, gt, trimap, weight = batch(*shape, device=device)
    value, grad = loss_and_grad(ours, pred, gt, trimap, weight)
    expected, expected_grad = loss_and_grad(theirs, pred, gt, trimap, weight)
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL


def test_mmagic_kernels_are_vitmattes_negatives():
    """mmagic's kx, ky are -Sobel_x, -Sobel_y; the L1 of a difference does not see the sign."""
    pred, gt, _, weight = batch(2, 7, 9)
    a = ref_grad.mmagic_gradient_loss(pred, gt, weight)
    b = gradient_loss(pred, gt, weight=weight, style="vitmatte", reduction="mean", guard=1e-12, penalty=0.0)
    assert max_rel_err(b, a) <= TOL


@pytest.mark.parametrize("name, ours, theirs", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_kinks_give_torch_abs_backward(device, name, ours, theirs):
    """pred == gt on a block: every Sobel difference there is exactly 0, and a
    constant block zeroes the prediction's responses (ViTMatte's penalty): the
    gradient takes torch's abs-backward value 0 at each, as the reference's."""
    pred, gt, trimap, weight = batch(2, 12, 14, device=device)
    gt[..., 2:10, 3:12] = 0.75
    pred[..., 2:10, 3:12] = 0.75
    pred[..., 0, :] = gt[..., 0, :]  # a border row on the kink too
    value, grad = loss_and_grad(ours, pred, gt, trimap, weight)
    expected, expected_grad = loss_and_grad(theirs, pred, gt, trimap, weight)
    assert max_rel_err(value, expected) <= TOL
    assert max_rel_err(grad, expected_grad) <= TOL
    if "gca" not in name:  # GCA's magnitude sqrt(. + 1e-8) has no kink at a zero response
        inner = (..., slice(4, 8), slice(5, 10))
        assert torch.equal(grad[inner], torch.zeros_like(grad[inner]))
        assert torch.equal(expected_grad[inner], torch.zeros_like(grad[inner]))


@pytest.mark.parametrize("style", ["vitmatte", "mmagic", "gca"])
@pytest.mark.parametrize("mask", ["trimap", "weight", None])
def test_gradcheck(device, style, mask):
    pred, gt, trimap, weight = batch(2, 5, 6, device=device)
    kwargs = {"trimap": dict(trimap=trimap, unknown_value=0.5), "weight": dict(weight=weight), None: {}}[mask]
    f = lambda p: gradient_loss(p, gt, style=style, **kwargs)  # noqa: E731
    assert torch.autograd.gradcheck(f, (pred.requires_grad_(),))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_dtypes(device, dtype):
    """Low-precision pred, uint8 gt: the float32 computation of the values as stored.
    GCA's magnitude loss is smooth away from equal magnitudes, so compare its gradient."""
    g = torch.Generator().manual_seed(5)
    B, H, W = 2, 10, 33
    pred = torch.rand(B, 1, H, W, generator=g).to(dtype).to(device)
    gt8 = torch.randint(0, 256, (B, 1, H, W), generator=g, dtype=torch.uint8).to(device)
    weight = torch.rand(B, 1, H, W, generator=g).to(device)
    ours, grad = loss_and_grad(lambda p: gradient_loss(p, gt8, weight=weight, style="gca", alpha_scale=255.0), pred)
    expected, expected_grad = loss_and_grad(lambda p: ref_grad.gca_grad_loss(p, gt8.double() / 255, weight.double()),
                                            pred.double())
    assert ours.dtype == torch.float32 and grad.dtype == dtype
    assert max_rel_err(ours, expected) <= 1e-5
    assert max_rel_err(grad, expected_grad) <= {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]


def test_module_matches_functional(device):
    pred, gt, trimap, weight = batch(2, 8, 9, device=device)
    for style in ("vitmatte", "mmagic", "gca"):
        module = GradientLoss(style=style)
        assert torch.equal(module(pred, gt, weight=weight), gradient_loss(pred, gt, weight=weight, style=style))
        assert torch.equal(module(pred, gt), gradient_loss(pred, gt, style=style))
    assert torch.equal(GradientLoss()(pred, gt, trimap), gradient_loss(pred, gt, trimap))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(style="sobel"), ValueError, r"style: expected one of \['vitmatte', 'mmagic', 'gca'\], got 'sobel'"),
        (dict(style="gca", penalty=0.01), ValueError, r"penalty: the 'gca' style has no penalty term, got 0.01"),
        (dict(penalty=-1), ValueError, r"penalty: expected >= 0.0, got -1.0"),
        (dict(grad_eps=0.0), ValueError, r"grad_eps: expected > 0.0, got 0.0"),
        (dict(reduction="none"), ValueError, r"reduction: expected one of"),
        (dict(guard=float("inf")), ValueError, r"guard: expected a finite number, got inf"),
        (dict(mask_in_diff="yes"), TypeError, r"mask_in_diff: expected a bool, got 'yes'"),
    ],
)
def test_bad_options(kwargs, error, match):
    pred, gt, trimap, _ = batch(1, 4, 4)
    with pytest.raises(error, match=match):
        gradient_loss(pred, gt, trimap, **kwargs)
    with pytest.raises(error, match=match):
        GradientLoss(**kwargs)


def test_bad_tensors():
    pred, gt, trimap, weight = batch(2, 6, 7)
    with pytest.raises(ValueError, match=r"alpha: expected shape \(2, 1, 6, 7\) to match pred_alpha"):
        gradient_loss(pred, gt[:, :, 1:], trimap)
    with pytest.raises(ValueError, match=r"trimap/weight: expected exactly one of them, got both"):
        gradient_loss(pred, gt, trimap, weight=weight)
    with pytest.raises(ValueError, match=r"unknown_value/unknown_range: no trimap was given"):
        gradient_loss(pred, gt, unknown_value=0.5)
    with pytest.raises(TypeError, match=r"pred_alpha: expected float16, bfloat16, float32 or float64"):
        gradient_loss(pred.int(), gt, trimap)


def test_user_tensors_untouched():
    pred, gt, trimap, weight = batch(2, 8, 9)
    copies = [t.clone() for t in (pred, gt, trimap, weight)]
    p = pred.requires_grad_()
    for style in ("vitmatte", "mmagic", "gca"):
        gradient_loss(p, gt, weight=weight, style=style).backward()
    for t, c in zip((pred, gt, trimap, weight), copies):
        assert torch.equal(t.detach(), c)


def test_compile_fullgraph(device):
    pred, gt, _, weight = (t.float() for t in batch(2, 16, 12, device=device))
    step = lambda p, g, w: gradient_loss(p, g, weight=w, style="gca") + gradient_loss(p, g, style="mmagic")  # noqa: E731
    compiled = torch.compile(step, fullgraph=True)
    value, grad = loss_and_grad(step, pred, gt, weight)
    c_value, c_grad = loss_and_grad(compiled, pred, gt, weight)
    assert max_rel_err(c_value, value) <= 1e-6
    assert max_rel_err(c_grad, grad) <= 1e-6


@pytest.mark.slow
def test_more_than_2_31_elements():
    """64-bit offsets: one (1, 1, 46400, 46400) float16 image (2.15e9 > 2^31 pixels, ~13 GiB at peak)."""
    if available_gib() < 16:
        pytest.skip("needs about 16 GiB of free memory")
    H = W = 46400
    pred = torch.zeros(1, 1, H, W, dtype=torch.float16)
    gt = torch.zeros(1, 1, H, W, dtype=torch.uint8)
    gt[0, 0, -1, -1] = 255  # the last pixel, element index > 2^31
    pred.requires_grad_()
    loss = gradient_loss(pred, gt, style="mmagic", reduction="sum", alpha_scale=255.0)
    loss.backward()
    # |Sx| + |Sy| of a single one at a corner: 3 responses each way with |1|, |2|... as the reference on a crop.
    small_pred = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    small_gt = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    small_gt[0, 0, -1, -1] = 1.0
    expected = ref_grad.mmagic_gradient_loss(small_pred, small_gt, reduction="sum")
    (expected_grad,) = torch.autograd.grad(expected, small_pred)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(pred.grad[0, 0, -4:, -4:].double(), expected_grad[0, 0])
    assert pred.grad[0, 0, :-4].abs().max().item() == 0.0
