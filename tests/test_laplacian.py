"""The Laplacian-pyramid loss against each code base's reference (mattingloss.reference.laplacian)."""
import pytest
import torch

import mattingloss
from mattingloss import LaplacianLoss, laplacian_loss
from mattingloss.laplacian import laplacian_loss_forward
from mattingloss.reference import laplacian as R

from conftest import max_rel_err

F64 = dict(dtype=torch.float64)


def rand(shape, seed, device="cpu", dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def loss_and_grad(fn, pred, *args, **kwargs):
    p = pred.detach().clone().requires_grad_()
    loss = fn(p, *args, **kwargs)
    (grad,) = torch.autograd.grad(loss, p)
    return loss.detach(), grad


def assert_matches(ours, ref, tol=1e-10):
    (l1, g1), (l2, g2) = ours, ref
    assert max_rel_err(l1, l2) <= tol, (l1.item(), l2.item())
    assert max_rel_err(g1, g2) <= tol


def general_reference(pred, gt, levels, level_weights, padding, crop):
    """sum_i level_weights[i] * mean|L_i(pred) - L_i(gt)| from RVM's pyramid (crop) or MGMatting's (no crop)."""
    if crop:
        pp, pg = R.rvm_laplacian_pyramid(pred, levels, padding), R.rvm_laplacian_pyramid(gt, levels, padding)
    else:
        assert padding == "reflect"
        pp, pg = R.mgmatting_lap_pyramid(pred, levels), R.mgmatting_lap_pyramid(gt, levels)
    return sum(w * (a - b).abs().mean() for w, a, b in zip(level_weights, pp, pg))


# ---------------------------------------------------------------- conventions, float64


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (2, 1, 67, 93), (1, 2, 130, 77), (3, 1, 64, 96), (1, 1, 200, 129),
                                   (1, 1, 64, 1000)])
def test_default_is_rvm(device, shape):
    pred, gt = rand(shape, 0, device), rand(shape, 1, device)
    assert_matches(loss_and_grad(laplacian_loss, pred, gt), loss_and_grad(R.rvm_laplacian_loss, pred, gt))


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 1, 45, 33), (1, 3, 70, 101)])
def test_replicate_padding(device, shape):
    pred, gt = rand(shape, 2, device), rand(shape, 3, device)
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, padding="replicate"),
                   loss_and_grad(R.rvm_laplacian_loss, pred, gt, padding="replicate"))


@pytest.mark.parametrize("name", ["mgmatting", "matteformer", "mam", "matting-anything"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (3, 1, 96, 160)])
def test_mgmatting(device, name, weighted, shape):
    pred, gt = rand(shape, 4, device), rand(shape, 5, device)
    weight = rand(shape, 6, device) if weighted else None
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, weight, convention=name),
                   loss_and_grad(R.mgmatting_lap_loss, pred, gt, weight))


def test_mgmatting_binary_unknown_mask(device):
    """The trainers pass the unknown region (0/1) as the weight."""
    shape = (2, 1, 64, 128)
    pred, gt = rand(shape, 7, device), rand(shape, 8, device)
    weight = (rand(shape, 9, device) > 0.6).double()
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, weight, convention="mgmatting"),
                   loss_and_grad(R.mgmatting_lap_loss, pred, gt, weight))


def test_mgmatting_interleaving_is_rvm_zero_insertion():
    y = rand((2, 3, 5, 7), 10)
    assert torch.equal(R._zero_insert_interleaved(y), R._zero_insert(y))


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (2, 1, 71, 90), (1, 1, 128, 65)])
@pytest.mark.parametrize("known", [False, True])
def test_sdmatte(device, shape, known):
    pred, gt = rand(shape, 11, device), rand(shape, 12, device)
    mask = (rand(shape, 13, device) > 0.5).double()
    if known:
        mask = R.sdmatte_known_mask(mask)
    for size in (512, 300):
        assert_matches(loss_and_grad(laplacian_loss, pred, gt, mask, convention="sdmatte", size=size),
                       loss_and_grad(R.sdmatte_lap_loss, pred, gt, mask, size=size))


def test_sdmatte_soft_mask_and_empty_mask(device):
    shape = (2, 1, 64, 80)
    pred, gt = rand(shape, 14, device), rand(shape, 15, device)
    soft = rand(shape, 16, device)
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, soft, convention="sdmatte"),
                   loss_and_grad(R.sdmatte_lap_loss, pred, gt, soft))
    empty = torch.zeros(shape, device=device, **F64)
    loss, grad = loss_and_grad(laplacian_loss, pred, gt, empty, convention="sdmatte")
    ref_loss, ref_grad = loss_and_grad(R.sdmatte_lap_loss, pred, gt, empty)
    assert loss.item() == 0.0 and ref_loss.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad)) and torch.equal(ref_grad, torch.zeros_like(ref_grad))


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("levels", [1, 2, 3, 6])
@pytest.mark.parametrize("padding", ["reflect", "replicate"])
def test_levels_and_level_weights(device, levels, padding):
    shape = (2, 1, 150, 133)
    pred, gt = rand(shape, 17, device), rand(shape, 18, device)
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, levels=levels, padding=padding),
                   loss_and_grad(R.rvm_laplacian_loss, pred, gt, levels, padding=padding))
    weights = [0.3 + i for i in range(levels)]
    assert_matches(
        loss_and_grad(laplacian_loss, pred, gt, levels=levels, padding=padding, level_weights=weights),
        loss_and_grad(general_reference, pred, gt, levels, weights, padding, True))


def test_crop_to_even_option(device):
    """crop_to_even=False on the rvm convention is MGMatting's pyramid (and the same
    numbers as RVM's where nothing is cropped); crop_to_even=True on mgmatting crops."""
    even = (2, 1, 64, 96)
    pred, gt = rand(even, 19, device), rand(even, 20, device)
    ours = loss_and_grad(laplacian_loss, pred, gt, crop_to_even=False)
    assert_matches(ours, loss_and_grad(R.rvm_laplacian_loss, pred, gt))
    assert_matches(ours, loss_and_grad(general_reference, pred, gt, 5, [2.0**i / 5 for i in range(5)], "reflect", False))
    odd = (2, 1, 67, 99)
    pred, gt = rand(odd, 21, device), rand(odd, 22, device)
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, convention="mgmatting", crop_to_even=True),
                   loss_and_grad(general_reference, pred, gt, 5, [2.0**i for i in range(5)], "reflect", True))


def test_module_form(device):
    shape = (2, 1, 64, 64)
    pred, gt, w = rand(shape, 23, device), rand(shape, 24, device), rand(shape, 25, device)
    assert torch.equal(LaplacianLoss()(pred, gt), laplacian_loss(pred, gt))
    assert torch.equal(LaplacianLoss(convention="mgmatting")(pred, gt, w), laplacian_loss(pred, gt, w, convention="mgmatting"))
    assert "mgmatting" in repr(LaplacianLoss(convention="matteformer"))


# ---------------------------------------------------------------- the L1 kink


@pytest.mark.parametrize("convention", ["rvm", "mgmatting", "sdmatte"])
def test_kinks(device, convention):
    """Where pred == gt over a region, L_i(pred) - L_i(gt) is exactly 0 in both the
    reference's two pyramids and our one pyramid of the difference; the gradient
    there uses sign(0) = 0, as torch's abs backward does."""
    shape = (2, 1, 64, 96)
    gt = rand(shape, 26, device)
    pred = rand(shape, 27, device)
    pred[:, :, :40] = gt[:, :, :40]  # equal over the top rows: exact zeros in every level there
    pred[1, :, :, 50:] = gt[1, :, :, 50:]
    weight = (rand(shape, 28, device) > 0.3).double() if convention != "rvm" else None
    ref = {"rvm": R.rvm_laplacian_loss, "mgmatting": R.mgmatting_lap_loss, "sdmatte": R.sdmatte_lap_loss}[convention]
    args = () if weight is None else (weight,)
    ours = loss_and_grad(laplacian_loss, pred, gt, *args, convention=convention)
    assert_matches(ours, loss_and_grad(ref, pred, gt, *args))
    # the kink is really hit: level 0 of the difference is exactly 0 on many pixels
    level0 = R.rvm_laplacian_pyramid(pred - gt)[0]
    assert (level0 == 0).sum() > 1000


@pytest.mark.parametrize("convention", ["rvm", "mgmatting", "sdmatte"])
def test_pred_equal_gt(device, convention):
    shape = (2, 1, 64, 64)
    gt = rand(shape, 29, device)
    weight = None if convention == "rvm" else rand(shape, 30, device)
    args = () if weight is None else (weight,)
    loss, grad = loss_and_grad(laplacian_loss, gt, gt, *args, convention=convention)
    assert loss.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


# ---------------------------------------------------------------- autograd, op, compile


@pytest.mark.parametrize("case", ["rvm", "replicate", "mgmatting", "mgmatting-weight", "sdmatte"])
def test_gradcheck(device, case):
    shape = (2, 1, 16, 24) if case != "replicate" else (1, 2, 9, 12)
    pred = rand(shape, 31, device).requires_grad_()
    gt = rand(shape, 32, device)
    w = rand(shape, 33, device)
    call = {
        "rvm": lambda p: laplacian_loss(p, gt, levels=3),
        "replicate": lambda p: laplacian_loss(p, gt, levels=3, padding="replicate"),
        "mgmatting": lambda p: laplacian_loss(p, gt, levels=3, convention="mgmatting"),
        "mgmatting-weight": lambda p: laplacian_loss(p, gt, w, levels=3, convention="mgmatting"),
        "sdmatte": lambda p: laplacian_loss(p, gt, w, levels=3, convention="sdmatte"),
    }[case]
    assert torch.autograd.gradcheck(call, (pred,))


def test_backward_scales_by_grad_output_and_retain_graph(device):
    shape = (2, 1, 64, 64)
    pred = rand(shape, 34, device).requires_grad_()
    gt = rand(shape, 35, device)
    loss = laplacian_loss(pred, gt)
    (g1,) = torch.autograd.grad(loss * 3.0, pred, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, pred)
    assert max_rel_err(g1, 3.0 * g2) <= 1e-15


def op_samples(device):
    shape = (2, 1, 64, 64)
    p, g, w = rand(shape, 36, device), rand(shape, 37, device), rand(shape, 38, device)
    lw5 = [2.0**i / 5 for i in range(5)]
    yield (p, g, None, 5, lw5, 0, True, 0, 1.0, 0.0, True)
    yield (p.float(), (g * 255).to(torch.uint8), None, 3, [1.0, 2.0, 3.0], 1, True, 0, 255.0, 0.0, True)
    yield (p.to(torch.bfloat16), g.float(), w.float(), 5, [2.0**i for i in range(5)], 0, False, 1, 1.0, 0.0, True)
    yield (p, g, (w > 0.5).to(torch.uint8), 5, lw5, 0, True, 2, 1.0, 2 * 512.0**2, False)
    base = rand(shape, 39, device)
    yield (p, g, None, 5, lw5, 0, True, 0, 1.0, 0.0, True, base, -2.0)
    yield (p.float(), g, (w > 0.5).to(torch.uint8), 5, lw5, 0, True, 2, 1.0, 2 * 512.0**2, True, base.float(), 1.5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("weight_mode", [0, 1, 2])
@pytest.mark.parametrize("base_dtype", ["same", "float32"])
def test_grad_base_is_folded_into_the_gradient(device, dtype, weight_mode, base_dtype):
    """grad = coef * (the Laplacian's gradient) + base, as the presets use it: computed
    in the accumulation type, rounded once to pred's dtype. The base is read in pred's
    element order whatever its shape (RVM's (B, T, 1, H, W) gradient for B*T frames)."""
    shape = (2, 1, 48, 80)
    p, g = rand(shape, 41, device).to(dtype), rand(shape, 42, device)
    weight = None if weight_mode == 0 else rand(shape, 43, device)
    if weight_mode == 2:
        weight = (weight > 0.4).to(torch.uint8)
    base = rand(shape, 44, device).to(dtype if base_dtype == "same" else torch.float32)
    args = (p, g, weight, 4, [1.0, 0.5, 2.0, 4.0], 0, True, weight_mode, 1.0, 3.0 if weight_mode == 2 else 0.0, True)
    loss, levels, own = laplacian_loss_forward(*args)
    folded_loss, folded_levels, folded = laplacian_loss_forward(*args, base.view(1, 2, 48, 80), 2.5)
    assert torch.equal(folded_loss, loss) and torch.equal(folded_levels, levels)
    # The op folds in the accumulation type from the unrounded gradient: compare with
    # the float64 op's own gradient, within one rounding of dtype.
    own64 = laplacian_loss_forward(p.double(), *args[1:])[2]
    want = 2.5 * own64 + base.double()
    tol = {torch.float64: 1e-13, torch.float32: 1e-6, torch.bfloat16: 1e-2}[dtype]
    assert folded.dtype == dtype and folded.shape == p.shape
    assert max_rel_err(folded, want) <= tol


def test_grad_base_bad_arguments(device):
    args = list(next(op_samples(device)))
    base = torch.zeros(args[0].shape, **F64, device=device)
    cases = [
        (base[:, :, :, :32], "grad_base must be"),
        (base.transpose(2, 3), "grad_base must be"),
        (base.to(torch.uint8), "grad_base must be"),
    ]
    for bad, match in cases:
        with pytest.raises(RuntimeError, match=match):
            laplacian_loss_forward(*args, bad, 2.0)
    no_grad = list(args)
    no_grad[10] = False
    with pytest.raises(RuntimeError, match="grad_base needs grad_pred"):
        laplacian_loss_forward(*no_grad, base, 2.0)


def test_op_reads_leading_dimensions_as_images(device):
    """(B, T, 1, H, W), as the RVM preset passes its frames: the same as (B*T, 1, H, W)."""
    p, g = rand((2, 3, 1, 40, 56), 45, device), rand((2, 3, 1, 40, 56), 46, device)
    lw = [1.0, 2.0, 4.0]
    five = laplacian_loss_forward(p, g, None, 3, lw, 0, True, 0, 1.0, 0.0, True)
    four = laplacian_loss_forward(p.flatten(0, 1), g.flatten(0, 1), None, 3, lw, 0, True, 0, 1.0, 0.0, True)
    assert torch.equal(five[0], four[0]) and torch.equal(five[1], four[1])
    assert five[2].shape == p.shape and torch.equal(five[2].flatten(0, 1), four[2])


def test_opcheck(device):
    for args in op_samples(device):
        torch.library.opcheck(laplacian_loss_forward, args)


def test_op_rejects_bad_arguments_directly(device):
    args = list(next(op_samples(device)))
    bad = dict(enumerate(args))
    bad[1] = args[1][:, :, :60]
    with pytest.raises(RuntimeError, match="gt has shape"):
        laplacian_loss_forward(*bad.values())
    small = list(args)
    small[0], small[1] = args[0][:, :, :60].contiguous(), args[1][:, :, :60].contiguous()
    with pytest.raises(RuntimeError, match="has no 5-level pyramid"):
        laplacian_loss_forward(*small)
    wrong = list(args)
    wrong[4] = [1.0]
    with pytest.raises(RuntimeError, match="level weights"):
        laplacian_loss_forward(*wrong)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(device, dynamic):
    # float64: the check is that the compiled graph calls the same op, not float32 summation order
    net = torch.nn.Conv2d(1, 1, 3, padding=1).to(device=device, dtype=torch.float64)

    def step(x, gt, w):
        pred = torch.sigmoid(net(x))
        return laplacian_loss(pred, gt) + laplacian_loss(pred, gt, w, convention="mgmatting")

    x, gt, w = (torch.rand(2, 1, 64, 96, device=device, **F64) for _ in range(3))
    explanation = torch._dynamo.explain(step)(x, gt, w)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for H, W in ((64, 96), (96, 128)) if dynamic else ((64, 96),):
        x, gt, w = (torch.rand(2, 1, H, W, device=device, **F64) for _ in range(3))
        expected = step(x, gt, w)
        eager = torch.autograd.grad(expected, list(net.parameters()))
        got = compiled(x, gt, w)
        grads = torch.autograd.grad(got, list(net.parameters()))
        assert max_rel_err(got, expected) <= 1e-12
        for a, b in zip(grads, eager):
            assert max_rel_err(a, b) <= 1e-10


# ---------------------------------------------------------------- determinism, dtypes, inputs


@pytest.mark.parametrize("convention", ["rvm", "mgmatting", "sdmatte"])
def test_bitwise_deterministic(device, convention):
    shape = (3, 1, 256, 192)
    pred, gt, w = (rand(shape, s, device, torch.float32) for s in (39, 40, 41))
    args = () if convention == "rvm" else (w,)
    first = loss_and_grad(laplacian_loss, pred, gt, *args, convention=convention)
    second = loss_and_grad(laplacian_loss, pred, gt, *args, convention=convention)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    if device == "cpu":
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            single = loss_and_grad(laplacian_loss, pred, gt, *args, convention=convention)
            torch.set_num_threads(2)
            double = loss_and_grad(laplacian_loss, pred, gt, *args, convention=convention)
            torch.set_num_threads(3)  # more threads than CI's cores: shares taken by the others
            triple = loss_and_grad(laplacian_loss, pred, gt, *args, convention=convention)
        finally:
            torch.set_num_threads(threads)
        for other in (single, double, triple):
            assert torch.equal(other[0], first[0]) and torch.equal(other[1], first[1])


def test_float32_matches_float64_reference(device):
    """float32 against the float64 reference on the same (rounded) values. The
    seed is chosen so that no Laplacian value of the difference is within 1e-6
    of the kink (where float32 rounding could flip a sign); asserted below."""
    shape = (2, 1, 96, 128)
    pred, gt = rand(shape, 42, device, torch.float32), rand(shape, 43, device, torch.float32)
    ref = loss_and_grad(R.rvm_laplacian_loss, pred.double(), gt.double())
    pyr_p, pyr_g = R.rvm_laplacian_pyramid(pred.double()), R.rvm_laplacian_pyramid(gt.double())
    assert min((a - b).abs().min().item() for a, b in zip(pyr_p, pyr_g)) > 1e-6
    loss, grad = loss_and_grad(laplacian_loss, pred, gt)
    assert loss.dtype == torch.float32 and grad.dtype == torch.float32
    assert max_rel_err(loss, ref[0]) <= 1e-6
    assert max_rel_err(grad, ref[1]) <= 1e-5


@pytest.mark.parametrize("pred_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("gt_kind", ["uint8", "float16", "float32", "float64"])
def test_dtypes_read_as_stored(device, pred_dtype, gt_kind):
    shape = (2, 1, 64, 64)
    pred = rand(shape, 44, device, pred_dtype)
    if gt_kind == "uint8":
        gt = (rand(shape, 45, device) * 255).round().to(torch.uint8)
        kwargs, gt_exact = dict(gt_scale=255), gt.double() / 255
    else:
        gt = rand(shape, 45, device, getattr(torch, gt_kind))
        kwargs, gt_exact = {}, gt.double()
    loss, grad = loss_and_grad(laplacian_loss, pred, gt, **kwargs)
    assert grad.dtype == pred_dtype and loss.dtype == torch.float32
    ref_loss, ref_grad = loss_and_grad(R.rvm_laplacian_loss, pred.double(), gt_exact)
    assert max_rel_err(loss, ref_loss) <= 1e-5
    # The gradient is rounded to pred's dtype. float32 arithmetic could flip the
    # sign of a Laplacian value within ~1e-6 of the kink; this seed has none.
    pyr = R.rvm_laplacian_pyramid(pred.double() - gt_exact)
    assert min(level.abs().min().item() for level in pyr) > 1e-6
    tol = {torch.float16: 1e-3, torch.bfloat16: 8e-3, torch.float32: 1e-5}[pred_dtype]
    assert max_rel_err(grad, ref_grad) <= tol


def test_uint8_gt_needs_gt_scale(device):
    pred = rand((1, 1, 64, 64), 46, device, torch.float32)
    gt = torch.zeros(1, 1, 64, 64, dtype=torch.uint8, device=device)
    with pytest.raises(ValueError, match=r"gt_scale: gt is uint8"):
        laplacian_loss(pred, gt)


def test_gt_scale_float(device):
    shape = (2, 1, 64, 64)
    pred, gt = rand(shape, 47, device), rand(shape, 48, device) * 255
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, gt_scale=255.0),
                   loss_and_grad(R.rvm_laplacian_loss, pred, gt / 255.0))


def test_user_tensors_untouched(device):
    shape = (2, 1, 64, 64)
    pred = rand(shape, 49, device, torch.float32).requires_grad_()
    gt, w = rand(shape, 50, device, torch.float32), rand(shape, 51, device, torch.float32)
    copies = [t.detach().clone() for t in (pred, gt, w)]
    for convention in ("rvm", "mgmatting", "sdmatte"):
        args = () if convention == "rvm" else (w,)
        laplacian_loss(pred, gt, *args, convention=convention).backward()
    for t, c in zip((pred, gt, w), copies):
        assert torch.equal(t.detach(), c)


def test_non_contiguous_and_no_grad(device):
    shape = (2, 1, 64, 64)
    pred, gt = rand(shape, 52, device), rand(shape, 53, device)
    strided = torch.rand(2, 1, 64, 128, **F64, device=device)[..., ::2]
    strided.copy_(pred)
    assert max_rel_err(laplacian_loss(strided, gt), R.rvm_laplacian_loss(pred, gt)) <= 1e-12
    with torch.no_grad():
        assert torch.equal(laplacian_loss(pred, gt), laplacian_loss(pred.requires_grad_(), gt).detach())


# ---------------------------------------------------------------- sizes and bad input


@pytest.mark.parametrize("padding, least", [("reflect", 64), ("replicate", 32)])
def test_minimum_size(device, padding, least):
    """The reference runs at the minimum size and we give its numbers; one pixel
    less, the reference fails and we raise a ValueError naming the minimum."""
    for shape in ((1, 1, least, least + 7), (1, 1, least + 3, least)):
        pred, gt = rand(shape, 54, device), rand(shape, 55, device)
        assert_matches(loss_and_grad(laplacian_loss, pred, gt, padding=padding),
                       loss_and_grad(R.rvm_laplacian_loss, pred, gt, padding=padding))
    for shape in ((1, 1, least - 1, least), (1, 1, least, least - 1)):
        pred, gt = rand(shape, 56, device), rand(shape, 57, device)
        with pytest.raises(RuntimeError):
            R.rvm_laplacian_loss(pred, gt, padding=padding)
        with pytest.raises(ValueError, match=rf"pred: 5 levels with {padding} padding need H and W of at least {least}"):
            laplacian_loss(pred, gt, padding=padding)


def test_mgmatting_sizes(device):
    pred, gt = rand((1, 1, 64, 80), 58, device), rand((1, 1, 64, 80), 59, device)
    with pytest.raises(RuntimeError):
        R.mgmatting_lap_loss(pred, gt)
    with pytest.raises(ValueError, match=r"pred: without crop_to_even, 5 levels need H and W divisible by 2\*\*levels = 32 and at least 64"):
        laplacian_loss(pred, gt, convention="mgmatting")
    ok = (1, 1, 64, 32 * 5)
    pred, gt = rand(ok, 60, device), rand(ok, 61, device)
    assert_matches(loss_and_grad(laplacian_loss, pred, gt, convention="mgmatting"),
                   loss_and_grad(R.mgmatting_lap_loss, pred, gt))


@pytest.fixture
def x(device):
    return dict(pred=rand((2, 1, 64, 64), 62, device, torch.float32), gt=rand((2, 1, 64, 64), 63, device, torch.float32))


@pytest.mark.parametrize(
    "changes, options, error, match",
    [
        (dict(pred=[0.5]), {}, TypeError, r"pred: expected a torch.Tensor, got list"),
        (dict(pred="int"), {}, TypeError, r"pred: expected float16, bfloat16, float32 or float64, got shape \(2, 1, 64, 64\), dtype torch.int64"),
        (dict(pred="3d"), {}, ValueError, r"pred: expected shape \(B, C, H, W\), got shape \(2, 64, 64\)"),
        (dict(pred="empty"), {}, ValueError, r"pred: expected a non-empty batch and image"),
        (dict(gt="short"), {}, ValueError, r"gt: expected shape \(2, 1, 64, 64\) to match pred, got shape \(2, 1, 64, 63\)"),
        (dict(gt="complex"), {}, TypeError, r"gt: expected a real dtype"),
        (dict(gt="grad"), {}, ValueError, r"gt: requires grad, but the Laplacian loss differentiates pred only"),
        (dict(gt="meta"), {}, ValueError, r"gt: expected device .* \(pred's\)"),
        (dict(weight="ones"), {}, ValueError, r"weight: the 'rvm' convention takes no weight"),
        (dict(weight="short"), dict(convention="mgmatting"), ValueError, r"weight: expected shape \(2, 1, 64, 64\) to match pred"),
        (dict(weight="grad"), dict(convention="sdmatte"), ValueError, r"weight: requires grad"),
        ({}, dict(convention="sdmatte"), ValueError, r"weight: the 'sdmatte' convention needs the mask"),
        ({}, dict(convention="fba"), ValueError, r"convention: expected one of"),
        ({}, dict(levels=0), ValueError, r"levels: expected an int in \[1, 16\], got 0"),
        ({}, dict(levels=2.0), ValueError, r"levels: expected an int in \[1, 16\], got 2.0"),
        ({}, dict(level_weights=[1.0, 2.0]), ValueError, r"level_weights: expected 5 numbers \(one per level\), got 2"),
        ({}, dict(level_weights=[1.0, 2.0, float("nan"), 1.0, 1.0]), ValueError, r"level_weights\[2\]: expected a finite number"),
        ({}, dict(level_weights=torch.ones(5)), TypeError, r"level_weights: expected a sequence of 5 numbers"),
        ({}, dict(padding="zeros"), ValueError, r"padding: expected one of \['reflect', 'replicate'\], got 'zeros'"),
        ({}, dict(crop_to_even=1), TypeError, r"crop_to_even: expected a bool or None, got 1"),
        ({}, dict(gt_scale=0), ValueError, r"gt_scale: expected > 0.0, got 0.0"),
        ({}, dict(size=-1), ValueError, r"size: expected > 0.0, got -1.0"),
    ],
)
def test_bad_input(x, changes, options, error, match):
    pred, gt = x["pred"], x["gt"]
    concrete = {
        "int": pred.to(torch.int64),
        "3d": pred[:, 0],
        "empty": pred[:0],
        "short": gt[..., :63],
        "complex": gt.to(torch.complex64),
        "grad": gt.clone().requires_grad_(),
        "meta": gt.to("meta"),
        "ones": torch.ones_like(pred),
    }
    args = {"pred": pred, "gt": gt, "weight": None}
    args.update({k: concrete.get(v, v) if isinstance(v, str) else v for k, v in changes.items()})
    with pytest.raises(error, match=match):
        laplacian_loss(args["pred"], args["gt"], args["weight"], **options)


def test_exported():
    assert mattingloss.laplacian_loss is laplacian_loss
    assert mattingloss.LaplacianLoss is LaplacianLoss


def sweep_cases(count=40):
    """Seeded random shapes (odd, even, minimal), level counts, paddings and conventions."""
    g = torch.Generator().manual_seed(1234)
    cases = []
    while len(cases) < count:
        convention = ["rvm", "mgmatting", "sdmatte"][int(torch.randint(0, 3, (1,), generator=g))]
        levels = int(torch.randint(1, 7, (1,), generator=g))
        padding = "replicate" if convention == "rvm" and torch.rand(1, generator=g).item() < 0.4 else "reflect"
        least = (4 if padding == "reflect" else 2) * 2 ** (levels - 1)
        if convention == "mgmatting":
            step = 2**levels
            H, W = (step * int(torch.randint(max(1, least // step), max(2, least // step) + 3, (1,), generator=g))
                    for _ in range(2))
        else:
            H, W = (least + int(torch.randint(0, 3 * least + 5, (1,), generator=g)) for _ in range(2))
        B, C = int(torch.randint(1, 3, (1,), generator=g)), int(torch.randint(1, 3, (1,), generator=g))
        if H * W * B * C > 300_000:
            continue
        cases.append((convention, levels, padding, (B, C, H, W), len(cases)))
    return cases


@pytest.mark.parametrize("convention, levels, padding, shape, seed", sweep_cases())
def test_sweep(convention, levels, padding, shape, seed):
    pred, gt, w = rand(shape, 100 + seed), rand(shape, 200 + seed), rand(shape, 300 + seed)
    weights = [2.0**i / levels for i in range(levels)]
    if convention == "rvm":
        ref = loss_and_grad(R.rvm_laplacian_loss, pred, gt, levels, padding=padding)
        ours = loss_and_grad(laplacian_loss, pred, gt, levels=levels, padding=padding)
    elif convention == "mgmatting":
        ref = loss_and_grad(R.mgmatting_lap_loss, pred, gt, w, levels)
        ours = loss_and_grad(laplacian_loss, pred, gt, w, convention="mgmatting", levels=levels)
    else:
        mask = (w > 0.5).double()
        scale = shape[0] * 512.0**2 / mask.sum()
        ref = loss_and_grad(lambda p, g: general_reference(p * mask, g * mask, levels, weights, "reflect", True) * scale,
                            pred, gt)
        ours = loss_and_grad(laplacian_loss, pred, gt, mask, convention="sdmatte", levels=levels)
    assert_matches(ours, ref)


@pytest.mark.parametrize("pred_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("convention", ["mgmatting", "sdmatte"])
def test_weighted_conventions_in_low_precision(device, pred_dtype, convention):
    """float16/bfloat16 gradients are computed in float32 and rounded once: the
    weighted paths that recompute the level-0 seeds (gradient not in float32) too."""
    shape = (2, 1, 64, 96)
    pred = rand(shape, 70, device, pred_dtype)
    gt, w = rand(shape, 71, device, torch.float32), (rand(shape, 72, device) > 0.4).to(torch.uint8)
    ref = {"mgmatting": R.mgmatting_lap_loss, "sdmatte": R.sdmatte_lap_loss}[convention]
    loss, grad = loss_and_grad(laplacian_loss, pred, gt, w, convention=convention)
    ref_loss, ref_grad = loss_and_grad(ref, pred.double(), gt.double(), w.double())
    assert grad.dtype == pred_dtype
    assert max_rel_err(loss, ref_loss) <= 1e-5
    tol = {torch.float16: 1e-3, torch.bfloat16: 8e-3, torch.float32: 1e-5}[pred_dtype]
    assert max_rel_err(grad, ref_grad) <= tol


def test_tap_streams_match_tap_lists(tmp_path):
    """csrc/laplacian.h's register-only evaluators (the CUDA kernels') equal its tap lists (the CPU's), bitwise."""
    import os
    import shutil
    import subprocess

    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = tmp_path / "laplacian_taps"
    subprocess.run([cxx, "-std=c++17", "-O1", "-I", os.path.join(root, "csrc"), "-o", str(exe),
                    os.path.join(root, "tests", "cpp", "laplacian_taps.cpp")], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
