"""Bad input: a ValueError or TypeError naming the argument, before any kernel runs."""
import pytest
import torch

from mattingloss import DIMLoss, dim_loss

from conftest import make_inputs


@pytest.fixture
def x(device):
    return make_inputs(2, 6, 7, dtype=torch.float32, device=device)


def call(x, **changes):
    args = {**x, **changes}
    args = {k: v for k, v in args.items() if v is not None or k in ("trimap",)}
    return dim_loss(**args)


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(pred_alpha=[0.5]), TypeError, r"pred_alpha: expected a torch.Tensor, got list"),
        (dict(pred_alpha="int"), TypeError, r"pred_alpha: expected float16, bfloat16, float32 or float64, got shape \(2, 1, 6, 7\), dtype torch.int64"),
        (dict(pred_alpha="3d"), ValueError, r"pred_alpha: expected shape \(B, 1, H, W\), got shape \(2, 6, 7\)"),
        (dict(pred_alpha="3ch"), ValueError, r"pred_alpha: expected shape \(B, 1, H, W\), got shape \(2, 3, 6, 7\)"),
        (dict(alpha="short"), ValueError, r"alpha: expected shape \(2, 1, 6, 7\) to match pred_alpha, got shape \(2, 1, 6, 6\)"),
        (dict(alpha="complex"), TypeError, r"alpha: expected a real dtype \(uint8 or floating\), got .*complex64"),
        (dict(image="1ch"), ValueError, r"image: expected shape \(2, 3, 6, 7\) to match pred_alpha, got shape \(2, 1, 6, 7\)"),
        (dict(fg=None), ValueError, r"image/fg/bg: the compositional loss needs all three, got \['image', 'bg'\], missing \['fg'\]"),
        (dict(trimap=None), ValueError, r"trimap/weight: expected exactly one of them, got neither"),
        (dict(weight="ones"), ValueError, r"trimap/weight: expected exactly one of them, got both"),
        (dict(alpha="grad"), ValueError, r"alpha: requires grad, but DIMLoss differentiates pred_alpha, fg and bg only"),
        (dict(trimap="meta"), ValueError, r"trimap: expected device .* \(pred_alpha's\), got shape \(2, 1, 6, 7\), dtype torch.float32, device meta"),
    ],
)
def test_bad_tensors(x, changes, error, match):
    pred = x["pred_alpha"]
    concrete = {
        "int": pred.to(torch.int64),
        "3d": pred[:, 0],
        "3ch": pred.expand(2, 3, 6, 7),
        "short": x["alpha"][..., :6],
        "complex": x["alpha"].to(torch.complex64),
        "1ch": x["image"][:, :1],
        "ones": torch.ones_like(pred),
        "grad": x["alpha"].clone().requires_grad_(),
        "meta": x["trimap"].to("meta"),
    }
    changes = {k: concrete.get(v, v) if isinstance(v, str) else v for k, v in changes.items()}
    with pytest.raises(error, match=match):
        call(x, **changes)


@pytest.mark.parametrize("shape", [(0, 1, 6, 7), (2, 1, 0, 7), (2, 1, 6, 0)])
def test_empty(device, shape):
    empty = torch.zeros(shape, device=device)
    with pytest.raises(ValueError, match=r"pred_alpha: expected a non-empty batch and image, got shape"):
        dim_loss(empty, empty, empty)


def test_negative_weight(x):
    weight = torch.ones_like(x["pred_alpha"])
    weight[1, 0, 2, 2] = -0.5
    with pytest.raises(ValueError, match=r"weight: expected non-negative weights, got a minimum of -0.5"):
        call(x, trimap=None, weight=weight)
    # the check can be turned off (e.g. to avoid its host sync on CUDA)
    dim_loss(x["pred_alpha"], x["alpha"], weight=weight, check_weight=False)


def test_pred_on_unsupported_device():
    pred = torch.zeros(1, 1, 2, 2, device="meta")
    with pytest.raises(ValueError, match=r"pred_alpha: expected a cpu or cuda tensor, got .*device meta"):
        dim_loss(pred, pred, pred)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(reduction="avg"), ValueError, r"reduction: expected one of \['mean', 'none', 'sample', 'sum'\], got 'avg'"),
        (dict(reduction=None), ValueError, r"reduction: expected one of .*got None"),
        (dict(eps=0.0), ValueError, r"eps: expected > 0.0, got 0.0"),
        (dict(eps=-1e-6), ValueError, r"eps: expected > 0.0, got -1e-06"),
        (dict(eps=float("nan")), ValueError, r"eps: expected a finite number, got nan"),
        (dict(wl=1.5), ValueError, r"wl: expected <= 1.0, got 1.5"),
        (dict(wl=-0.1), ValueError, r"wl: expected >= 0.0, got -0.1"),
        (dict(wl=True), TypeError, r"wl: expected a number, got True \(bool\)"),
        (dict(wl="0.5"), TypeError, r"wl: expected a number, got '0.5' \(str\)"),
        (dict(alpha_scale=0), ValueError, r"alpha_scale: expected > 0.0, got 0.0"),
        (dict(color_scale=-255), ValueError, r"color_scale: expected > 0.0, got -255.0"),
        (dict(unknown_range=(170, 85)), ValueError, r"unknown_range: expected lo < hi, got \(170.0, 85.0\)"),
        (dict(unknown_range=(1, 2, 3)), ValueError, r"unknown_range: expected \(lo, hi\), got \(1, 2, 3\)"),
        (dict(unknown_value=128, unknown_range=(85, 170)), ValueError, r"unknown_value and unknown_range: give one, got both"),
    ],
)
def test_bad_options(x, options, error, match):
    with pytest.raises(error, match=match):
        dim_loss(**x, **options)
    if "reduction" not in options or options["reduction"] is not None:
        with pytest.raises(error, match=match):
            DIMLoss(**options)  # at construction, not mid-training


def test_trimap_options_with_weight(x):
    with pytest.raises(ValueError, match=r"unknown_value/unknown_range: they describe a trimap, but weight= was given"):
        dim_loss(x["pred_alpha"], x["alpha"], weight=torch.ones_like(x["pred_alpha"]), unknown_value=1)
    criterion = DIMLoss(unknown_value=1)
    with pytest.raises(ValueError, match=r"unknown_value/unknown_range: they describe a trimap"):
        criterion(x["pred_alpha"], x["alpha"], weight=torch.ones_like(x["pred_alpha"]))


def test_components_need_scalar_reduction(x):
    with pytest.raises(ValueError, match=r"return_components: needs a scalar reduction .* got reduction='none'"):
        dim_loss(**x, reduction="none", return_components=True)


@pytest.mark.parametrize("good, bad, match", [
    (dict(wl=1), dict(wl=True), r"wl: expected a number, got True \(bool\)"),
    (dict(unknown_range=(0, 255)), dict(unknown_range=(False, 255)), r"unknown_range\[0\]: expected a number"),
])
def test_remembered_options_tell_equal_values_of_other_types_apart(x, good, bad, match):
    # The functional call remembers checked options; 1 == True and (0, 255) == (False, 255),
    # so the memory must key on the types too, or the bad value would pass as the good one.
    dim_loss(**x, **good)
    with pytest.raises(TypeError, match=match):
        dim_loss(**x, **bad)
