"""The unknown region is exactly PyTorch's own `trimap == unknown_value` (or
`(lo < trimap) & (trimap < hi)`) for every trimap dtype and every pred_alpha
dtype, and a convention that matches nothing is not silent."""
import warnings

import pytest
import torch

import mattingloss._args as args_module
from mattingloss import DIMLoss, dim_loss
from mattingloss.reference import dim_loss_reference
from mattingloss.trimap import make_trimap

from conftest import make_inputs, max_rel_err

PRED_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
TRIMAP_DTYPES = [torch.uint8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
                 torch.float32, torch.float64]
UNKNOWN_VALUES = [128, 128 / 255, 0.5, 1]


def trimap_values(dtype):
    """Values of every convention, as each would be stored in `dtype`: 8-bit
    0/128/255, class indices 0/1/2, 0/0.5/1, and 128/255 computed in each float
    dtype (so that the value rounded in one dtype differs from it in another)."""
    values = [0, 1, 2, 127, 128, 129, 255]
    if dtype.is_floating_point:
        values += [0.5, 128 / 255] + [torch.tensor(128, dtype=d).div(255).item()
                                      for d in (torch.float16, torch.bfloat16, torch.float32)]
    return torch.tensor(values, dtype=torch.float64).to(dtype).unique()


def random_trimap(dtype, device, B=2, H=9, W=11, seed=0):
    values = trimap_values(dtype)
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(values), (B, 1, H, W), generator=g)
    return values[index].to(device)


def unknown_map(pred, trimap, **options):
    """Where the kernels put the unknown region: reduction='none' with eps=1 makes
    every unknown pixel's loss >= 1 and every other pixel's 0."""
    alpha = torch.zeros_like(pred)
    return dim_loss(pred, alpha, trimap, eps=1.0, alpha_scale=1.0, reduction="none", **options) != 0


@pytest.mark.parametrize("pred_dtype", PRED_DTYPES)
@pytest.mark.parametrize("trimap_dtype", TRIMAP_DTYPES)
def test_unknown_region_is_torchs_comparison(device, pred_dtype, trimap_dtype):
    trimap = random_trimap(trimap_dtype, device)
    pred = torch.rand(trimap.shape, generator=torch.Generator().manual_seed(1)).to(device, pred_dtype)
    cases = 0
    for v in UNKNOWN_VALUES:
        got = unknown_map(pred, trimap, unknown_value=v)
        assert torch.equal(got, trimap == v), (trimap_dtype, pred_dtype, v)
        for lo, hi in ((v - 1e-9, v + 1e-9), (v * 0.6, v * 1.4), (v, v + 1)):
            got = unknown_map(pred, trimap, unknown_range=(lo, hi))
            assert torch.equal(got, (lo < trimap) & (trimap < hi)), (trimap_dtype, pred_dtype, lo, hi)
            cases += 1
    # the test means something only if the conventions really differ in this dtype
    matched = [int((trimap == v).sum()) for v in UNKNOWN_VALUES]
    assert sum(matched) > 0 and cases == 12


def test_mmagic_style_float_trimap_is_not_silently_empty():
    """The reported case: uint8/255 in float32 with unknown_value=128/255 and a
    float64 prediction; and a float16 trimap with a float32 prediction."""
    x = make_inputs(2, 16, 20)
    trimap = x["trimap"].to(torch.uint8).float() / 255.0
    unit = dict(alpha_scale=1.0, color_scale=1.0, unknown_value=128 / 255)
    alpha = x["alpha"] / 255.0
    for pred, t in ((x["pred_alpha"], trimap), (x["pred_alpha"].float(), trimap.half())):
        n = int((t == 128 / 255).sum())
        assert n > 100
        pred = pred.clone().requires_grad_()
        loss = DIMLoss(**unit)(pred, alpha, t)
        loss.backward()
        want = dim_loss_reference(pred.detach(), alpha, t, **unit)
        assert loss.item() > 0 and max_rel_err(loss, want) <= 1e-6
        assert int((pred.grad != 0).sum()) == n


def test_float64_trimap_compared_in_float64_for_a_float32_prediction():
    """A float64 trimap holding float32(128/255) has no pixel equal to the float64
    128/255 for torch; comparing in float32 would find them all."""
    x = make_inputs(1, 8, 8, unknown="all")
    trimap = (x["trimap"].float() / 255.0).double()
    got = unknown_map(x["pred_alpha"].float(), trimap, unknown_value=128 / 255)
    assert not got.any() and not (trimap == 128 / 255).any()
    got = unknown_map(x["pred_alpha"].float(), trimap, unknown_value=torch.tensor(128 / 255).float().item())
    assert got.all()


@pytest.mark.parametrize("weight_dtype", [torch.bool, torch.uint8, torch.float16, torch.float32, torch.float64])
def test_weight_of_any_dtype(device, weight_dtype):
    """weight= reads the weights' values: bool/uint8 0/1 masks equal the trimap's region."""
    x = make_inputs(2, 10, 12, device=device)
    mask = x["trimap"] == 128
    weight = mask.to(weight_dtype)
    got = dim_loss(**{**x, "trimap": None}, weight=weight)
    want = dim_loss(**x)
    assert max_rel_err(got, want) <= 1e-12
    assert max_rel_err(got, dim_loss_reference(**{**x, "trimap": None}, weight=mask.double())) <= 1e-10


def test_make_trimap_output_feeds_dim_loss(device):
    x = make_inputs(2, 32, 32, device=device)
    alpha_u8 = x["alpha"].to(torch.uint8)
    trimap = make_trimap(alpha_u8, 5, 5)
    assert trimap.dtype == torch.uint8 and bool((trimap == 128).any())
    got = DIMLoss()(x["pred_alpha"], alpha_u8, trimap, x["image"], x["fg"], x["bg"])
    want = dim_loss_reference(x["pred_alpha"], alpha_u8.double(), trimap.double(), x["image"], x["fg"], x["bg"])
    assert max_rel_err(got, want) <= 1e-10


@pytest.fixture
def fresh_convention_check(monkeypatch):
    monkeypatch.setattr(args_module, "_convention_checked", False)


CONVENTION_CASES = [
    # trimap values, what the user asked, a hint the warning must give
    (torch.tensor([0.0, 0.5, 1.0]), {}, "unknown_value=0.5"),
    (torch.tensor([0, 128, 255]).float() / 255, {}, "unknown_value=128/255"),
    (torch.tensor([0, 1, 2]), {}, "unknown_value=1 for class-index"),
    (torch.tensor([0, 128, 255], dtype=torch.uint8), {"unknown_value": 0.5}, "unknown_value=128 (the default)"),
]


@pytest.mark.parametrize("values, options, hint", CONVENTION_CASES)
def test_warns_once_when_the_convention_matches_nothing(fresh_convention_check, values, options, hint):
    x = make_inputs(2, 6, 6)
    trimap = values[torch.arange(72) % len(values)].view(2, 1, 6, 6)
    with pytest.warns(UserWarning, match="no pixel of this batch's trimap is unknown") as record:
        loss = dim_loss(x["pred_alpha"], x["alpha"], trimap, **options)
    assert loss.item() == 0.0
    assert hint in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call checks nothing
        dim_loss(x["pred_alpha"], x["alpha"], trimap, **options)


@pytest.mark.parametrize("values, options", [
    (torch.tensor([0, 255], dtype=torch.uint8), {}),  # 8-bit, no unknown pixel in this crop
    (torch.tensor([0.0, 1.0]), {"unknown_value": 0.5}),
    (torch.tensor([0.0]), {}),
    (torch.tensor([0, 2]), {"unknown_value": 1}),
])
def test_no_warning_for_a_crop_with_no_unknown_pixel(fresh_convention_check, values, options):
    """Values that fit the convention asked for: a genuinely empty region, loss 0, no warning."""
    x = make_inputs(2, 6, 6)
    trimap = values[torch.arange(72) % len(values)].view(2, 1, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dim_loss(x["pred_alpha"], x["alpha"], trimap, **options).item() == 0.0
    assert args_module._convention_checked
