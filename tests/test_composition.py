"""composition_loss against each code base's own convention (mattingloss.reference.composition)
and the eager oracle of every option: loss and gradients w.r.t. pred_alpha, fg and bg."""
import pytest
import torch

from mattingloss import CompositionLoss, composition_loss, dim_loss
from mattingloss.reference import (composition_reference, gca_composition_loss, mmagic_charbonnier_comp_loss,
                                   mmagic_l1_composition_loss, mmagic_mse_composition_loss, seed_gen_loss)

from conftest import make_inputs, max_rel_err

REDUCTIONS = ["mean", "sample", "sum", "none"]
RHOS = ["l1", "charbonnier", "l2"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def comp_inputs(B=2, H=7, W=9, *, device="cpu", dtype=torch.float64, target_dtype=None, unknown="random", seed=0):
    """pred in [0,1]; image, fg, bg, trimap in 0..255 (integers, exact in every dtype)."""
    x = make_inputs(B, H, W, unknown=unknown, seed=seed, dtype=dtype, device=device, target_dtype=target_dtype)
    del x["alpha"]
    return x


def grads_of(fn, inputs, grad_of, upstream=None):
    x = {k: (v.detach().clone().requires_grad_() if k in grad_of else v) for k, v in inputs.items()}
    loss = fn(x)
    grads = torch.autograd.grad(loss, [x[k] for k in grad_of],
                                upstream if upstream is not None else torch.ones_like(loss))
    return loss.detach(), grads


def assert_same(fused_fn, ref_fn, inputs, grad_of=("pred_alpha", "fg", "bg"), tol=1e-10, upstream=None,
                ref_upstream=None):
    loss, grads = grads_of(fused_fn, inputs, grad_of, upstream)
    want, want_grads = grads_of(ref_fn, inputs, grad_of, ref_upstream if ref_upstream is not None else upstream)
    assert max_rel_err(loss, want) <= tol, (loss, want)
    for name, g, w in zip(grad_of, grads, want_grads):
        assert g.dtype == inputs[name].dtype
        assert max_rel_err(g, w) <= tol, name
    return loss


def positional(x):
    return x["pred_alpha"], x["image"], x["fg"], x["bg"]


# ---- mmagic: L1CompositionLoss, MSECompositionLoss, CharbonnierCompLoss --------------------------------

MMAGIC = {"l1": mmagic_l1_composition_loss, "l2": mmagic_mse_composition_loss,
          "charbonnier": mmagic_charbonnier_comp_loss}


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("mode", ["mean", "sample_wise", "sum", "none"])
@pytest.mark.parametrize("weight_kind", ["unknown", "soft", "empty_sample"])
def test_mmagic(device, rho, mode, weight_kind):
    x = comp_inputs(3, 6, 8, device=device)
    x = {k: (v / 255.0 if k != "pred_alpha" else v) for k, v in x.items()}  # mmagic's data is in [0, 1]
    trimap = x.pop("trimap")
    if weight_kind == "soft":
        x["weight"] = torch.rand(trimap.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).to(device)
    else:
        x["weight"] = (trimap == 128 / 255.0).double()
        if weight_kind == "empty_sample":
            x["weight"][1] = 0
    ref = MMAGIC[rho]
    reduction = {"sample_wise": "mean"}.get(mode, mode)
    extra = {"eps": 1e-12} if rho == "charbonnier" else {}
    upstream = torch.rand(3, 1, 6, 8, dtype=torch.float64, device=device) if mode == "none" else None

    def fused(x):
        ours = composition_loss(*positional(x), weight=x["weight"], rho=rho, eps=1e-6, guard=1e-12,
                                reduction="sample" if mode == "sample_wise" else reduction)
        return 0.7 * ours

    def theirs(x):
        out = ref(x["pred_alpha"], x["fg"], x["bg"], x["image"], x["weight"], loss_weight=0.7,
                  reduction=reduction, sample_wise=mode == "sample_wise", **extra)
        return out.sum(1, keepdim=True) if mode == "none" else out  # theirs: per channel; ours: summed

    assert_same(fused, theirs, x, upstream=upstream)


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mmagic_without_weight(device, rho, reduction):
    """weight=None: a plain mean over B*3*H*W elements (or the sum): our all-pixels mode."""
    x = comp_inputs(2, 5, 7, device=device)
    del x["trimap"]
    extra = {"eps": 1e-12} if rho == "charbonnier" else {}
    assert_same(lambda x: composition_loss(*positional(x), rho=rho, reduction=reduction),
                lambda x: MMAGIC[rho](x["pred_alpha"], x["fg"], x["bg"], x["image"], reduction=reduction, **extra), x)


# ---- GCA-Matting / MGMatting / MatteFormer `composition_loss` ----------------------------------------------

def normalised(x):
    """As their data loaders give them: (x / 255 - mean) / std per channel."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


@pytest.mark.parametrize("weight_kind", ["class_trimap", "soft", "ones", "none"])
def test_gca_family(device, weight_kind):
    x = comp_inputs(3, 6, 8, device=device)
    trimap = (x.pop("trimap") / 127.5).round()  # class indices 0/1/2, as their loaders make them
    for k in ("image", "fg", "bg"):
        x[k] = normalised(x[k])
    if weight_kind == "class_trimap":  # weight = trimap.eq(1).float() (utils.get_unknown_tensor)
        fused = lambda x: composition_loss(*positional(x), trimap, unknown_value=1, count_channels=False, guard=1e-8)
        weight = trimap.eq(1).double()
    elif weight_kind == "soft":
        weight = torch.rand(trimap.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).to(device)
        fused = lambda x: composition_loss(*positional(x), weight=weight, count_channels=False, guard=1e-8)
    elif weight_kind == "ones":  # MatteFormer/MGMatting's os8 output: weight[...] = 1
        weight = torch.ones_like(trimap)
        fused = lambda x: composition_loss(*positional(x), count_channels=False, guard=1e-8)  # all pixels, unread
    else:  # weight=None: F.l1_loss(merged, image), a mean over every element
        weight = None
        fused = lambda x: composition_loss(*positional(x))
    assert_same(fused, lambda x: gca_composition_loss(x["pred_alpha"], x["fg"], x["bg"], x["image"], weight), x)


def test_gca_from_uint8_with_per_channel_scale(device):
    """Their normalised L1 is |d| / (255 * std_c) of the 0..255 difference (the means cancel in
    the composite): the same loss read straight from uint8 data."""
    x = comp_inputs(2, 6, 8, device=device)
    trimap = (x.pop("trimap") / 127.5).round()
    u8 = {k: x[k].to(torch.uint8) for k in ("image", "fg", "bg")}
    fused_loss, fused_grads = grads_of(
        lambda x: composition_loss(x["pred_alpha"], u8["image"], u8["fg"], u8["bg"], trimap, unknown_value=1,
                                   count_channels=False, guard=1e-8, color_scale=[255 * s for s in IMAGENET_STD]),
        x, ("pred_alpha",))
    norm = {k: normalised(x[k]) for k in ("image", "fg", "bg")}
    want, want_grads = grads_of(
        lambda x: gca_composition_loss(x["pred_alpha"], norm["fg"], norm["bg"], norm["image"], trimap.eq(1).double()),
        x, ("pred_alpha",))
    assert max_rel_err(fused_loss, want) <= 1e-10
    assert max_rel_err(fused_grads[0], want_grads[0]) <= 1e-10


# ---- DIM: the seed's gen_loss comp term, and DIMLoss's comp component ------------------------------------

@pytest.mark.parametrize("unknown", ["random", "single"])
def test_dim_comp_term(device, unknown):
    x = make_inputs(2, 7, 9, unknown=unknown, device=device)
    fused = lambda x: composition_loss(*positional(x), x["trimap"], rho="charbonnier", eps=1e-6, color_scale=255)
    seed = lambda x: seed_gen_loss(x["image"], x["alpha"], x["fg"], x["bg"], x["trimap"], x["pred_alpha"])[1]
    assert_same(fused, seed, x)
    # DIMLoss with wl=0 is its comp term alone: the same loss and gradients
    assert_same(fused, lambda x: dim_loss(**x, wl=0.0), x)


# ---- every option against the oracle -----------------------------------------------------------------------

MASKS = ["equal", "range", "weight", "all", "empty"]


def mask_args(kind, x, device):
    if kind == "equal":
        return dict(trimap=x["trimap"])
    if kind == "range":
        g = torch.Generator().manual_seed(1)
        return dict(trimap=torch.randint(0, 256, x["trimap"].shape, generator=g).double().to(device),
                    unknown_range=(85, 170))
    if kind == "weight":
        return dict(weight=torch.rand(x["trimap"].shape, dtype=torch.float64,
                                      generator=torch.Generator().manual_seed(2)).to(device))
    if kind == "empty":
        return dict(trimap=torch.zeros_like(x["trimap"]))
    return {}


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("count_channels,guard", [(True, 0.0), (False, 1e-8), (True, 1e-12)])
def test_options(device, rho, reduction, mask, count_channels, guard):
    x = comp_inputs(3, 6, 7, device=device)
    m = mask_args(mask, x, device)
    x.pop("trimap")
    opts = dict(rho=rho, eps=0.7, reduction=reduction, count_channels=count_channels, guard=guard,
                color_scale=(2.0, 255.0, 0.5), **m)
    upstream = torch.rand(3, 1, 6, 7, dtype=torch.float64, device=device) if reduction == "none" else None
    loss = assert_same(lambda x: composition_loss(*positional(x), **opts),
                       lambda x: composition_reference(*positional(x), **opts), x, upstream=upstream)
    if mask == "empty" and reduction != "none":
        assert loss.item() == 0.0


def test_sum_is_sum_of_none_map(device):
    x = comp_inputs(2, 6, 7, device=device)
    total = composition_loss(*positional(x), x["trimap"], reduction="sum")
    assert max_rel_err(total, composition_loss(*positional(x), x["trimap"], reduction="none").sum()) <= 1e-12


def test_module_matches_functional(device):
    x = comp_inputs(2, 6, 7, device=device)
    crit = CompositionLoss(rho="charbonnier", reduction="sample", count_channels=False, guard=1e-8, color_scale=255)
    want = composition_loss(*positional(x), x["trimap"], rho="charbonnier", reduction="sample",
                            count_channels=False, guard=1e-8, color_scale=255)
    assert torch.equal(crit(*positional(x), x["trimap"]), want)
    w = torch.rand_like(x["trimap"])
    assert torch.equal(crit(*positional(x), weight=w), composition_loss(
        *positional(x), weight=w, rho="charbonnier", reduction="sample", count_channels=False, guard=1e-8,
        color_scale=255))
    assert "charbonnier" in repr(crit)


# ---- L1's kink: torch's abs backward gives 0 at d = 0 -----------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_l1_kink(device, reduction):
    """Pixels whose composite equals the image exactly (products exact in binary), where the
    reference's gradient uses sign(0) = 0: the fused gradients equal it there, and the
    channel with d = 0 contributes nothing."""
    B, H, W = 2, 4, 6
    g = torch.Generator().manual_seed(7)
    pred = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.75, 0.125], dtype=torch.float64)[
        torch.randint(0, 6, (B, 1, H, W), generator=g)]
    fg = torch.randint(0, 256, (B, 3, H, W), generator=g).double()
    bg = torch.randint(0, 256, (B, 3, H, W), generator=g).double()
    image = pred * fg + (1 - pred) * bg  # exact: d = 0 in every channel ...
    image[:, 1] += torch.randint(-2, 3, (B, H, W), generator=g).double()  # ... but some of channel 1
    x = {k: v.to(device) for k, v in dict(pred_alpha=pred, image=image, fg=fg, bg=bg).items()}
    d = x["pred_alpha"] * x["fg"] + (1 - x["pred_alpha"]) * x["bg"] - x["image"]
    assert (d == 0).sum() > 2 * B * H * W and (d != 0).any()
    upstream = torch.rand(B, 1, H, W, dtype=torch.float64, device=device) if reduction == "none" else None
    if reduction == "mean":
        assert_same(lambda x: composition_loss(*positional(x)),
                    lambda x: mmagic_l1_composition_loss(x["pred_alpha"], x["fg"], x["bg"], x["image"]), x)
    else:
        assert_same(lambda x: composition_loss(*positional(x), reduction="none"),
                    lambda x: composition_reference(*positional(x), reduction="none"), x, upstream=upstream)
    # exact values at the kink: with d = 0 everywhere, every gradient is exactly 0
    flat = dict(x, image=x["pred_alpha"] * x["fg"] + (1 - x["pred_alpha"]) * x["bg"])
    loss, grads = grads_of(lambda x: composition_loss(*positional(x), reduction=reduction), flat,
                           ("pred_alpha", "fg", "bg"), upstream)
    assert (loss == 0).all()
    for gr in grads:
        assert (gr == 0).all()
    # only channel 1 off the kink: the gradient is that channel's alone
    _, (gp, gf, gb) = grads_of(lambda x: composition_loss(*positional(x), reduction="sum"), x,
                               ("pred_alpha", "fg", "bg"))
    s = torch.sign(d)
    assert torch.equal(gp, (s * (x["fg"] - x["bg"])).sum(1, keepdim=True))
    assert torch.equal(gf, s * x["pred_alpha"])
    assert torch.equal(gb, s * (1 - x["pred_alpha"]))


# ---- dtypes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pred_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("target_dtype", [torch.uint8, torch.float32, torch.float16])
@pytest.mark.parametrize("rho", ["l1", "charbonnier"])
def test_dtypes(device, pred_dtype, target_dtype, rho):
    """Targets read as stored, pred of any floating dtype, accumulation in float32: against the
    oracle in float64 on the same values. For L1, pixels where float32 rounding of the composite
    could flip the sign of d (|d| below 1e-3) are left out of the elementwise gradient check."""
    x = comp_inputs(2, 33, 47, device=device, dtype=pred_dtype, target_dtype=target_dtype)
    opts = dict(rho=rho, color_scale=255.0, reduction="mean")
    fused_loss, fused = grads_of(lambda x: composition_loss(*positional(x), x["trimap"], **opts), x,
                                 ("pred_alpha", "fg", "bg") if target_dtype != torch.uint8 else ("pred_alpha",))
    as64 = {k: v.double() for k, v in x.items()}
    want_loss, want = grads_of(lambda x: composition_reference(*positional(x), x["trimap"], **opts), as64,
                               ("pred_alpha", "fg", "bg") if target_dtype != torch.uint8 else ("pred_alpha",))
    assert fused_loss.dtype == torch.float32
    assert max_rel_err(fused_loss, want_loss) <= 1e-5
    d = as64["pred_alpha"] * as64["fg"] + (1 - as64["pred_alpha"]) * as64["bg"] - as64["image"]
    ok = (d.abs() > 1e-3).all(1, keepdim=True) if rho == "l1" else torch.ones_like(d[:, :1], dtype=torch.bool)
    for g, w in zip(fused, want):
        assert g.dtype != torch.float64
        keep = ok.expand_as(g)
        g, w = g.double()[keep], w[keep]
        if g.dtype == torch.float32:
            assert max_rel_err(g, w) <= 1e-5
        else:  # a float16/bfloat16 gradient: within its rounding, subnormal spacing included
            ulp = 2.0 ** -10 if g.dtype == torch.float16 else 2.0 ** -7
            assert ((g - w).abs() <= ulp * w.abs() + 2.0 ** -24).all()


def test_comparison_bound_rounded_like_torch(device):
    """trimap == value compares in torch.result_type(trimap, value): a float32 trimap holding
    128/255 matches unknown_value=128/255 there (rounded to float32), also with a float64
    prediction; so does a float16 trimap with 0.3."""
    x = comp_inputs(2, 6, 7, device=device)
    t32 = (x["trimap"] / 255.0).float()
    loss = assert_same(lambda x: composition_loss(*positional(x), t32, unknown_value=128 / 255.0),
                       lambda x: composition_reference(*positional(x), t32, unknown_value=128 / 255.0), x)
    assert loss.item() > 0
    t16 = torch.where(x["trimap"] == 128, 0.3, 0.0).half()
    loss = assert_same(lambda x: composition_loss(*positional(x), t16, unknown_value=0.3),
                       lambda x: composition_reference(*positional(x), t16, unknown_value=0.3), x)
    assert loss.item() > 0
    lo = 128 / 255.0 - 1e-9  # rounds to float32(128/255): open range empty in torch, as here
    loss = assert_same(lambda x: composition_loss(*positional(x), t32, unknown_range=(lo, 0.6)),
                       lambda x: composition_reference(*positional(x), t32, unknown_range=(lo, 0.6)), x)


# ---- autograd, op, compile, determinism --------------------------------------------------------------------

@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(device, rho, reduction):
    x = comp_inputs(2, 4, 5, device=device)
    x = {k: (v / 255.0 if k != "pred_alpha" else v) for k, v in x.items()}
    w = torch.rand(x["trimap"].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4)).to(device)
    p, fg, bg = (x[k].clone().requires_grad_() for k in ("pred_alpha", "fg", "bg"))
    assert torch.autograd.gradcheck(
        lambda p, fg, bg: composition_loss(p, x["image"], fg, bg, weight=w, rho=rho, reduction=reduction, eps=0.1),
        (p, fg, bg))


def op_samples(device):
    x = comp_inputs(2, 6, 8, device=device)
    p, t, i, f, b = (x[k] for k in ("pred_alpha", "trimap", "image", "fg", "bg"))
    u8 = {k: v.to(torch.uint8) for k, v in x.items() if k != "pred_alpha"}
    scale = [1.0, 2.0, 255.0]
    yield (p, i, f, b, t, 0, 128.0, 128.0, 0, 1e-6, scale, True, 0.0, 0, True, True, True)
    yield (p.float(), u8["image"], u8["fg"], u8["bg"], u8["trimap"], 1, 85.0, 170.0, 1, 1e-3, scale, False,
           1e-8, 1, True, False, False)
    yield (p.to(torch.bfloat16), u8["image"], f.float(), b.float(), None, 3, 0.0, 0.0, 2, 1e-6, scale, True,
           0.0, 2, True, True, False)
    yield (p.clone(), i, f, b, torch.rand_like(t), 2, 0.0, 0.0, 0, 1e-6, scale, True, 1e-12, 3, True, False, True)


def test_opcheck(device):
    for args in op_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.composition_loss_forward.default, args)


def test_op_rejects_bad_shapes_directly(device):
    args = list(next(op_samples(device)))
    args[2] = args[2][:, :, :3]
    with pytest.raises(RuntimeError, match="fg has shape"):
        torch.ops.mattingloss.composition_loss_forward(*args)


@pytest.mark.parametrize("dynamic", [None, False, True])
def test_compile_fullgraph(device, dynamic):
    """No graph break, module and functional forms. With dynamic=True torch.compile traces
    every Python float as a symbol, which the option checks cannot take (math.isfinite):
    there the options go through the module (checked at construction), as for DIMLoss."""
    crit = CompositionLoss(count_channels=False, guard=1e-8, unknown_value=128 / 255.0)
    crit_all = CompositionLoss(rho="charbonnier", reduction="sample")
    conv = torch.nn.Conv2d(3, 1, 3, padding=1).to(device)

    def step(image, fg, bg, trimap):
        pred = torch.sigmoid(conv(image))
        if dynamic:
            return crit(pred, image, fg, bg, trimap) + crit_all(pred, image, fg, bg)
        return crit(pred, image, fg, bg, trimap) + composition_loss(pred, image, fg, bg, rho="charbonnier",
                                                                    reduction="sample")

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for size in (8, 12) if dynamic is not False else (8,):
        x = comp_inputs(2, size, size + 3, device=device, dtype=torch.float32)
        args = (x["image"] / 255, x["fg"] / 255, x["bg"] / 255, x["trimap"] / 255)
        want = step(*args)
        (want_grad,) = torch.autograd.grad(want, conv.weight)
        got = compiled(*args)
        (got_grad,) = torch.autograd.grad(got, conv.weight)
        assert max_rel_err(got, want) <= 1e-6
        assert max_rel_err(got_grad, want_grad) <= 1e-5


def test_deterministic_and_thread_count_independent():
    x = comp_inputs(3, 150, 171, dtype=torch.float32)  # several 4096-pixel chunks per sample

    def run():
        out = grads_of(lambda x: composition_loss(*positional(x), x["trimap"], rho="charbonnier",
                                                  reduction="sample"), x, ("pred_alpha", "fg", "bg"))
        return [out[0]] + list(out[1])

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run()
        torch.set_num_threads(2)
        two, again = run(), run()
    finally:
        torch.set_num_threads(threads)
    for a, b, c in zip(one, two, again):
        assert torch.equal(a, b) and torch.equal(b, c)


def test_user_tensors_untouched(device):
    x = comp_inputs(2, 6, 7, device=device, dtype=torch.float32)
    x["pred_alpha"].requires_grad_()
    x["fg"].requires_grad_()
    before = {k: v.detach().clone() for k, v in x.items()}
    for reduction in REDUCTIONS:
        loss = composition_loss(*positional(x), x["trimap"], reduction=reduction)
        loss.sum().backward()
    for k, v in x.items():
        assert torch.equal(v.detach(), before[k]), k


# ---- errors -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change,kind,match", [
    (dict(rho="huber"), ValueError, "rho"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(eps=0.0), ValueError, "eps"),
    (dict(guard=-1.0), ValueError, "guard"),
    (dict(color_scale=(1.0, 2.0)), ValueError, "color_scale"),
    (dict(color_scale=0.0), ValueError, "color_scale"),
    (dict(count_channels=1), TypeError, "count_channels"),
    (dict(unknown_value=1, unknown_range=(1, 2)), ValueError, "unknown_value and unknown_range"),
])
def test_bad_options(change, kind, match):
    x = comp_inputs(1, 4, 4)
    with pytest.raises(kind, match=match):
        composition_loss(*positional(x), x["trimap"], **change)
    with pytest.raises(kind, match=match):
        CompositionLoss(**change)


def test_bad_inputs():
    x = comp_inputs(2, 4, 5)
    p, i, f, b, t = x["pred_alpha"], x["image"], x["fg"], x["bg"], x["trimap"]
    cases = [
        ((p[:, :, :3], i, f, b), {}, ValueError, "image: expected shape"),
        ((p.long(), i, f, b), {}, TypeError, "pred_alpha"),
        ((p, i[:, :1], f, b), {}, ValueError, "image"),
        ((p, i, f[:1], b), {}, ValueError, "fg"),
        ((p, i, f, "bg"), {}, TypeError, "bg"),
        ((p, i, f, b), dict(trimap=t[:, :, :2]), ValueError, "trimap"),
        ((p, i, f, b), dict(trimap=t, weight=t), ValueError, "trimap/weight"),
        ((p, i, f, b), dict(weight=-t), ValueError, "weight: expected non-negative"),
        ((p, i, f, b), dict(unknown_value=1), ValueError, "no trimap"),
        ((p, i, f, b), dict(weight=t, unknown_value=1), ValueError, "weight= was given"),
        ((p, i.clone().requires_grad_(), f, b), {}, ValueError, "image: requires grad"),
        ((p[:0], i[:0], f[:0], b[:0]), {}, ValueError, "pred_alpha"),
    ]
    for args, kwargs, kind, match in cases:
        with pytest.raises(kind, match=match):
            composition_loss(*args, **kwargs)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_no_host_sync_in_loss_path():
    x = comp_inputs(4, 64, 64, dtype=torch.float32, device="cuda")
    x["pred_alpha"].requires_grad_()
    x["fg"].requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for reduction in REDUCTIONS:
            composition_loss(*positional(x), x["trimap"], reduction=reduction).sum().backward()
        composition_loss(*positional(x), rho="charbonnier").backward()
        composition_loss(*positional(x), weight=torch.ones_like(x["trimap"]), check_weight=False).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
def test_cuda_matches_cpu():
    x = comp_inputs(3, 67, 45, dtype=torch.float64)
    for opts in (dict(rho="l1"), dict(rho="charbonnier", reduction="sample"), dict(rho="l2", reduction="sum")):
        cpu = grads_of(lambda x: composition_loss(*positional(x), x["trimap"], **opts), x, ("pred_alpha", "fg", "bg"))
        xc = {k: v.cuda() for k, v in x.items()}
        gpu = grads_of(lambda x: composition_loss(*positional(x), x["trimap"], **opts), xc, ("pred_alpha", "fg", "bg"))
        assert max_rel_err(gpu[0], cpu[0]) <= 1e-12
        for a, b in zip(gpu[1], cpu[1]):
            assert max_rel_err(a, b) <= 1e-12


def test_many_chunks_with_tails(device):
    """Samples of several 4096-pixel chunks and 256-pixel blocks with ragged ends, every dtype path."""
    x = comp_inputs(2, 67, 131, device=device)
    for opts in (dict(rho="l1", reduction="mean"), dict(rho="charbonnier", reduction="sample", guard=1e-12),
                 dict(rho="l2", reduction="none")):
        upstream = torch.rand(2, 1, 67, 131, dtype=torch.float64, device=device) if opts["reduction"] == "none" else None
        assert_same(lambda x: composition_loss(*positional(x), x["trimap"], **opts),
                    lambda x: composition_reference(*positional(x), x["trimap"], **opts), x, upstream=upstream)
    u8 = {k: (v.to(torch.uint8) if k != "pred_alpha" else v.float()) for k, v in x.items()}
    got = composition_loss(*positional(u8), u8["trimap"], color_scale=255.0)
    want = composition_reference(*positional(x), x["trimap"], color_scale=255.0)
    assert max_rel_err(got, want) <= 1e-5


def test_layouts_and_integer_trimaps(device):
    """channels_last / non-contiguous inputs (one contiguous copy) and int64 class-index trimaps
    (converted once) give the contiguous float64 result."""
    x = comp_inputs(2, 6, 8, device=device)
    classes = (x["trimap"] / 127.5).round().long()
    want = composition_reference(*positional(x), classes, unknown_value=1)
    assert max_rel_err(composition_loss(*positional(x), classes, unknown_value=1), want) <= 1e-12
    strided = {k: v.to(memory_format=torch.channels_last) for k, v in x.items()}
    strided["fg"] = torch.stack([x["fg"], x["fg"]], -1)[..., 0]  # a non-contiguous view
    assert not strided["fg"].is_contiguous()
    assert max_rel_err(composition_loss(*positional(strided), classes, unknown_value=1), want) <= 1e-12
