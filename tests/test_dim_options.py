"""Every option of dim_loss against the eager oracle (mattingloss.reference)."""
import pytest
import torch

from mattingloss import dim_loss
from mattingloss.reference import dim_loss_reference

from conftest import make_inputs, max_rel_err

REDUCTIONS = ["mean", "sample", "sum", "none"]


def both(inputs, grad_of=("pred_alpha",), upstream=None, **kwargs):
    """(loss, grads) from the fused loss and from the oracle, on the same inputs."""
    results = []
    for fn in (dim_loss, dim_loss_reference):
        x = {k: (v.detach().clone().requires_grad_() if k in grad_of else v) for k, v in inputs.items()}
        loss = fn(**x, **kwargs)
        grads = torch.autograd.grad(loss, [x[k] for k in grad_of], upstream if upstream is not None else torch.ones_like(loss))
        results.append((loss.detach(), grads))
    return results


def assert_matches(inputs, tol=1e-10, **kwargs):
    (loss, grads), (want_loss, want_grads) = both(inputs, **kwargs)
    assert loss.shape == want_loss.shape
    assert max_rel_err(loss, want_loss) <= tol
    for g, w in zip(grads, want_grads):
        assert max_rel_err(g, w) <= tol


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("unknown", ["random", "none", "single"])
def test_reductions(device, reduction, unknown):
    inputs = make_inputs(3, 9, 10, unknown=unknown, device=device)
    upstream = torch.rand(3, 1, 9, 10, dtype=torch.float64, device=device) if reduction == "none" else None
    assert_matches(inputs, reduction=reduction, wl=0.3, upstream=upstream)


def test_sample_reduction_counts_empty_samples(device):
    inputs = make_inputs(2, 6, 6, device=device)
    inputs["trimap"][1] = 0  # sample 1 has no unknown pixel
    per_sample_0 = dim_loss(**{k: v[:1] for k, v in inputs.items()})
    assert dim_loss(**inputs, reduction="sample").item() == pytest.approx(per_sample_0.item() / 2, rel=1e-12)


def test_sum_is_sum_of_none_map(device):
    inputs = make_inputs(2, 6, 7, device=device)
    total = dim_loss(**inputs, reduction="sum")
    assert max_rel_err(total, dim_loss(**inputs, reduction="none").sum()) <= 1e-12


@pytest.mark.parametrize("reduction", ["mean", "sample", "sum"])
def test_components(device, reduction):
    inputs = make_inputs(2, 8, 8, device=device)
    total, la, lc = dim_loss(**inputs, reduction=reduction, wl=0.3, return_components=True)
    want = dim_loss_reference(**inputs, reduction=reduction, wl=0.3, return_components=True)
    for got, exp in zip((total, la, lc), want):
        assert max_rel_err(got, exp) <= 1e-10
    assert not la.requires_grad and not lc.requires_grad


def test_normalised_conventions(device):
    """Data in [0,1] and a normalised trimap: alpha_scale=color_scale=1, unknown_value=128/255."""
    inputs = make_inputs(2, 8, 9, device=device)
    scaled = {k: (v / 255.0 if k != "pred_alpha" else v) for k, v in inputs.items()}
    assert_matches(scaled, alpha_scale=1.0, color_scale=1.0, unknown_value=128 / 255.0,
                   grad_of=("pred_alpha", "fg", "bg"))


def test_class_index_trimap(device):
    inputs = make_inputs(2, 8, 9, device=device)
    inputs["trimap"] = (inputs["trimap"] / 127.5).round().to(torch.int64)  # 0/1/2, int64: converted once
    assert_matches(inputs, unknown_value=1)


def test_unknown_range(device):
    inputs = make_inputs(2, 16, 16, device=device)
    g = torch.Generator().manual_seed(1)
    inputs["trimap"] = torch.randint(0, 256, (2, 1, 16, 16), generator=g).double().to(device)
    assert_matches(inputs, unknown_range=(85, 170))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_weight(device, reduction):
    inputs = make_inputs(2, 8, 9, device=device)
    del inputs["trimap"]
    inputs["weight"] = torch.rand(2, 1, 8, 9, dtype=torch.float64, device=device)
    upstream = torch.rand(2, 1, 8, 9, dtype=torch.float64, device=device) if reduction == "none" else None
    assert_matches(inputs, reduction=reduction, upstream=upstream)


def test_bool_weight(device):
    inputs = make_inputs(2, 8, 9, device=device)
    weight = inputs.pop("trimap") == 128
    assert_matches({**inputs, "weight": weight})
    assert torch.equal(dim_loss(**inputs, weight=weight), dim_loss(**inputs, trimap=weight.double() * 128))


def test_alpha_loss_alone(device):
    inputs = make_inputs(2, 8, 9, device=device)
    alone = {k: inputs[k] for k in ("pred_alpha", "alpha", "trimap")}
    assert_matches(alone, wl=0.3)  # wl is unused without image/fg/bg
    assert dim_loss(**alone).item() == pytest.approx(dim_loss(**inputs, wl=1.0).item(), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fg_bg_gradients(device, reduction):
    inputs = make_inputs(2, 7, 8, device=device)
    upstream = torch.rand(2, 1, 7, 8, dtype=torch.float64, device=device) if reduction == "none" else None
    assert_matches(inputs, grad_of=("pred_alpha", "fg", "bg"), reduction=reduction, wl=0.4, upstream=upstream)
    assert_matches(inputs, grad_of=("fg",), reduction=reduction, upstream=upstream)
    assert_matches(inputs, grad_of=("bg",), reduction=reduction, upstream=upstream)


@pytest.mark.parametrize("eps", [1e-6, 1e-3, 0.5])
def test_eps(device, eps):
    assert_matches(make_inputs(2, 8, 8, device=device), eps=eps)


@pytest.mark.parametrize("pred_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("target_dtype", [torch.uint8, torch.float32, "pred", torch.float64])
def test_low_precision_and_uint8(device, pred_dtype, target_dtype):
    """Inputs are read as stored: compare with the oracle fed the same (exact) values in float64."""
    target = pred_dtype if target_dtype == "pred" else target_dtype
    inputs = make_inputs(2, 33, 17, dtype=torch.float64, device=device)
    inputs["pred_alpha"] = inputs["pred_alpha"].to(pred_dtype)
    low = {k: (v if k == "pred_alpha" else v.to(target)) for k, v in inputs.items()}
    pred = low["pred_alpha"].clone().requires_grad_()
    loss = dim_loss(**{**low, "pred_alpha": pred})
    (grad,) = torch.autograd.grad(loss, pred)
    assert loss.dtype == torch.float32 and grad.dtype == pred_dtype
    exact = {k: v.double() for k, v in inputs.items()}
    p64 = exact["pred_alpha"].clone().requires_grad_()
    want = dim_loss_reference(**{**exact, "pred_alpha": p64})
    (want_grad,) = torch.autograd.grad(want, p64)
    assert max_rel_err(loss, want) <= 1e-5
    # the gradient is rounded once to pred's dtype
    assert max_rel_err(grad, want_grad) <= (1e-2 if pred_dtype == torch.bfloat16 else 2e-3 if pred_dtype == torch.float16 else 1e-5)


@pytest.mark.parametrize("pred_dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("mixed", [False, True])
def test_uint8_targets_same_bits_as_float(device, pred_dtype, mixed):
    """All-uint8 targets are converted inside the math loop, other dtypes before it: the same
    values must give bitwise the same loss and gradient either way (mixed: one target stays
    float32, which takes the other path for all of them)."""
    inputs = make_inputs(3, 37, 29, dtype=torch.float32, device=device)
    inputs["pred_alpha"] = inputs["pred_alpha"].to(pred_dtype)
    u8 = {k: (v if k == "pred_alpha" else v.to(torch.uint8)) for k, v in inputs.items()}
    if mixed:
        u8["bg"] = inputs["bg"]
    results = []
    for batch in (inputs, u8):
        pred = batch["pred_alpha"].clone().requires_grad_()
        loss, alpha_loss, comp_loss = dim_loss(**{**batch, "pred_alpha": pred}, wl=0.3, return_components=True)
        (grad,) = torch.autograd.grad(loss, pred)
        results.append((loss, alpha_loss, comp_loss, grad))
    for want, got in zip(*results):
        assert torch.equal(want, got)


def test_autocast(device):
    inputs = make_inputs(2, 16, 16, dtype=torch.float32, device=device)
    pred_logits = torch.randn(2, 1, 16, 16, device=device, requires_grad=True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        pred = torch.sigmoid(pred_logits @ torch.eye(16, device=device))  # bf16 under autocast
        loss = dim_loss(**{**inputs, "pred_alpha": pred})
    loss.backward()
    assert loss.dtype == torch.float32 and pred_logits.grad is not None
    assert torch.isfinite(pred_logits.grad).all()


def test_layouts(device):
    inputs = make_inputs(2, 12, 10, dtype=torch.float32, device=device)
    reference = dim_loss(**inputs)
    channels_last = {k: v.contiguous(memory_format=torch.channels_last) for k, v in inputs.items()}
    transposed = {k: v.transpose(2, 3).contiguous().transpose(2, 3) for k, v in inputs.items()}
    assert torch.equal(dim_loss(**channels_last), reference)
    assert torch.equal(dim_loss(**transposed), reference)
    sliced = make_inputs(2, 12, 20, dtype=torch.float32, device=device)
    sliced = {k: v[..., ::2] for k, v in sliced.items()}
    assert max_rel_err(dim_loss(**sliced), dim_loss_reference(**sliced)) <= 1e-5


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_inf_propagate(device, bad):
    inputs = make_inputs(2, 6, 6, device=device)
    inputs["pred_alpha"][1, 0, 2, 3] = bad
    loss = dim_loss(**inputs)
    want = dim_loss_reference(**inputs)
    assert not torch.isfinite(loss) and not torch.isfinite(want)


def test_deterministic_across_calls_and_threads(device):
    inputs = make_inputs(3, 97, 211, dtype=torch.float32, device=device)
    inputs["fg"].requires_grad_()

    def run():
        pred = inputs["pred_alpha"].clone().requires_grad_()
        loss = dim_loss(**{**inputs, "pred_alpha": pred}, reduction="sample")
        return (loss.detach(),) + torch.autograd.grad(loss, [pred, inputs["fg"]])

    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 1, 2):
            torch.set_num_threads(n)
            results.append(run())
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)
