"""_args.usual, the one-branch check of the usual call (DIM and the alpha losses), against
each input's own check: whatever it accepts, the own checks accept and return the same
tensors; whatever else, it answers None (and the own checks convert or raise)."""
import random

import pytest
import torch

from mattingloss import _args, _codes

from conftest import DEVICES

SHAPE = (2, 1, 5, 7)
CHANGES = ["grad", "noncontig", "shape", "dtype", "device", "parameter", "list"]


def _own_checks(pred, alpha, trimap, lo, hi, composite, mode):
    """What DIM's checks return input by input (the path usual stands in for)."""
    p = _args.prediction(pred)
    a = _args.image_like("alpha", alpha, p)
    region = _args.read_region(trimap, None, p, mode, lo, hi)
    if composite is None:
        colors = (None, None, None)
    else:  # input by input (composite_like's own branch shares usual's predicate)
        image, fg, bg = composite
        colors = (_args.image_like("image", image, p, 3), _args.image_like("fg", fg, p, 3, allow_grad=True),
                  _args.image_like("bg", bg, p, 3, allow_grad=True))
    return (p, a, region.mask, *colors), region


def _variant(rng, device):
    """One random call: mostly usual inputs, each input altered with some probability."""
    pdt = rng.choice([torch.float32, torch.float64, torch.float16, torch.bfloat16])
    pred = torch.rand(SHAPE, dtype=pdt, device=device)
    alpha = (torch.rand(SHAPE, device=device) * 255).round()
    trimap = torch.randint(0, 3, SHAPE, device=device).float() * 127.5
    trimap = trimap.round()
    image, fg, bg = (torch.rand(2, 3, 5, 7, device=device) * 255 for _ in range(3))
    lo, hi, mode = 128.0, 128.0, _codes.MASK_EQUAL

    def maybe(p):
        return rng.random() < p

    if maybe(0.04):
        pred = pred.to(rng.choice([torch.uint8, torch.int64]))  # not a prediction's dtype
    elif maybe(0.5):
        pred.requires_grad_()
    if maybe(0.2):
        alpha = alpha.to(rng.choice([torch.uint8, torch.float16, torch.float64, torch.int64, torch.bool]))
    if maybe(0.25):
        trimap = trimap.to(rng.choice([torch.uint8, torch.float16, torch.bfloat16, torch.float64, torch.int32,
                                       torch.bool]))
    if maybe(0.15):
        lo, hi, mode = 127.5, 128.5, _codes.MASK_RANGE
    if maybe(0.1):
        lo = hi = 0.5  # a fractional bound: uint8 trimaps compare in the default dtype
    inputs = {"alpha": alpha, "trimap": trimap, "image": image, "fg": fg, "bg": bg}
    for name, t in inputs.items():
        if maybe(0.06):
            change = rng.choice(CHANGES)
            if change == "grad" and t.is_floating_point():
                t = t.clone().requires_grad_()
            elif change == "noncontig":
                t = t.transpose(2, 3).contiguous().transpose(2, 3)
            elif change == "shape":
                t = t[:, :, :4]
            elif change == "dtype":
                t = t.to(rng.choice([torch.int64, torch.bool, torch.uint8, torch.float64]))
            elif change == "device":
                t = t.to("meta" if device == "cpu" else "cpu")
            elif change == "parameter" and t.is_floating_point():
                t = torch.nn.Parameter(t, requires_grad=False)
            elif change == "list":
                t = t.tolist()
            inputs[name] = t
    alpha, trimap, image, fg, bg = inputs.values()
    if maybe(0.05):
        pred = pred.transpose(2, 3).contiguous().transpose(2, 3)
    if maybe(0.05):  # an empty batch: every input empty alike
        pred, alpha, trimap, image, fg, bg = (t[:, :, :0] if isinstance(t, torch.Tensor) else t
                                              for t in (pred, alpha, trimap, image, fg, bg))
    composite = None if maybe(0.3) else (image, fg, bg)
    return pred, alpha, trimap, lo, hi, composite, mode


def _same(a, b):
    if a is None or b is None:
        return a is b
    return (type(a) is type(b) and a.dtype == b.dtype and a.device == b.device and a.shape == b.shape
            and a.is_contiguous() and b.is_contiguous() and a.requires_grad == b.requires_grad
            and torch.equal(a, b))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("default_dtype", [torch.float32, torch.float64])
def test_usual_returns_what_the_own_checks_return(device, default_dtype, monkeypatch):
    monkeypatch.setattr(_args, "_convention_checked", True)
    rng = random.Random(0)
    taken = declined = 0
    old = torch.get_default_dtype()
    torch.set_default_dtype(default_dtype)
    try:
        for _ in range(600):
            pred, alpha, trimap, lo, hi, composite, mode = _variant(rng, device)
            usual = _args.usual(pred, alpha, trimap, lo, hi, composite)
            try:
                own, region = _own_checks(pred, alpha, trimap, lo, hi, composite, mode)
            except (TypeError, ValueError):
                assert usual is None  # what the own checks reject, usual never accepts
                declined += 1
                continue
            if usual is None:
                declined += 1
                continue
            taken += 1
            assert all(_same(u, o) for u, o in zip(usual, own))
            assert (region.mode, region.lo, region.hi) == (mode, lo, hi)  # what usual's callers pass on
            # as stored: no copy where the input was already what the kernels read
            assert usual[0] is pred or not pred.is_contiguous()
    finally:
        torch.set_default_dtype(old)
    assert taken > 150 and declined > 150  # both sides of the branch exercised


def test_usual_declines_before_the_convention_check(monkeypatch):
    """The first call's trimap-convention check runs on the own-checks path."""
    monkeypatch.setattr(_args, "_convention_checked", False)
    pred, alpha = torch.rand(SHAPE), torch.rand(SHAPE)
    trimap = torch.full(SHAPE, 128.0)
    assert _args.usual(pred, alpha, trimap, 128.0, 128.0) is None
    monkeypatch.setattr(_args, "_convention_checked", True)
    assert _args.usual(pred, alpha, trimap, 128.0, 128.0)[2] is trimap


@pytest.mark.parametrize("trimap_dtype, pred_dtype, bounds, default, taken", [
    (torch.float64, torch.float32, 128.0, torch.float32, False),  # float64 values compared in float32: not exact
    (torch.float64, torch.float64, 128.0, torch.float32, True),
    (torch.uint8, torch.float32, 0.5, torch.float64, False),  # PyTorch compares in float64 there
    (torch.uint8, torch.float32, 0.5, torch.float32, True),
    (torch.int64, torch.float32, 128.0, torch.float32, False),  # converted to uint8 masks by the own checks
    (torch.bool, torch.float32, 1.0, torch.float32, False),
])
def test_usual_trimap_compared_as_stored(trimap_dtype, pred_dtype, bounds, default, taken, monkeypatch):
    monkeypatch.setattr(_args, "_convention_checked", True)
    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        pred, alpha = torch.rand(SHAPE, dtype=pred_dtype), torch.rand(SHAPE)
        trimap = torch.randint(0, 2, SHAPE).to(trimap_dtype)
        assert (_args.usual(pred, alpha, trimap, bounds, bounds) is not None) == taken
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("grad_input", ["fg", "bg"])
def test_usual_lets_fg_and_bg_require_grad(grad_input, monkeypatch):
    monkeypatch.setattr(_args, "_convention_checked", True)
    pred, alpha, trimap = torch.rand(SHAPE), torch.rand(SHAPE), torch.full(SHAPE, 128.0)
    composite = {name: torch.rand(2, 3, 5, 7) for name in ("image", "fg", "bg")}
    composite[grad_input].requires_grad_()
    usual = _args.usual(pred, alpha, trimap, 128.0, 128.0, tuple(composite.values()))
    assert usual is not None and usual[("image", "fg", "bg").index(grad_input) + 3] is composite[grad_input]
    composite["image"].requires_grad_()
    assert _args.usual(pred, alpha, trimap, 128.0, 128.0, tuple(composite.values())) is None


def test_usual_both_paths_give_the_same_loss(monkeypatch):
    """A DIM call through usual and through the own checks: bitwise the same loss and gradients."""
    from mattingloss import dim_loss
    torch.manual_seed(0)
    pred = torch.rand(SHAPE, dtype=torch.float64, requires_grad=True)
    alpha = (torch.rand(SHAPE) * 255).round().to(torch.uint8)
    trimap = (torch.randint(0, 3, SHAPE) * 127.5).round().to(torch.uint8)
    image, fg, bg = (torch.rand(2, 3, 5, 7, dtype=torch.float64) * 255 for _ in range(3))
    fg.requires_grad_()
    results = []
    for usual in (True, False):
        if not usual:
            monkeypatch.setattr(_args, "usual", lambda *args: None)
        loss = dim_loss(pred, alpha, trimap, image, fg, bg)
        results.append((loss, *torch.autograd.grad(loss, (pred, fg))))
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_variants_cover_every_change():
    """The random variants above reach each kind of change, so the first test checks them all."""
    rng = random.Random(0)
    seen = set()
    for _ in range(600):
        _pred, alpha, trimap, _lo, _hi, composite, _mode = _variant(rng, "cpu")
        for t in (alpha, trimap, *(composite or ())):
            if isinstance(t, list):
                seen.add("list")
            elif type(t) is not torch.Tensor:
                seen.add("parameter")
            elif t.device.type == "meta":
                seen.add("device")
            elif t.requires_grad:
                seen.add("grad")
            elif t.shape[2] not in (SHAPE[2], 0):
                seen.add("shape")
            elif t.dtype in (torch.int64, torch.bool) and t.shape[1] == 3:
                seen.add("dtype")
            elif not t.is_contiguous():
                seen.add("noncontig")
    assert seen == set(CHANGES)
