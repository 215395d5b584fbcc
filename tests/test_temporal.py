"""RVM's L1 and temporal-coherence terms (mattingloss.temporal) against our
reference of RobustVideoMatting's matting_loss (mattingloss/reference/rvm.py)."""
import pytest
import torch

from mattingloss import _ops
from mattingloss.reference.rvm import rvm_matting_loss
from mattingloss.temporal import TERMS, temporal_loss_forward, video_matting_losses

from conftest import available_gib, max_rel_err

KEYS = TERMS + ("total",)
WEIGHT_ARGS = ("pha_l1_weight", "pha_coherence_weight", "fgr_l1_weight", "fgr_coherence_weight")


def make_clip(B=2, T=4, H=5, W=7, *, seed=0, dtype=torch.float64, device="cpu", zero_fraction=0.3):
    """A batch in RVM's conventions: everything in [0, 1], true_pha exactly 0 on
    about `zero_fraction` of the elements (where RVM masks the foreground)."""
    g = torch.Generator().manual_seed(seed)
    pred_fgr = torch.rand(B, T, 3, H, W, generator=g, dtype=torch.float64)
    pred_pha = torch.rand(B, T, 1, H, W, generator=g, dtype=torch.float64)
    true_fgr = torch.rand(B, T, 3, H, W, generator=g, dtype=torch.float64)
    true_pha = torch.rand(B, T, 1, H, W, generator=g, dtype=torch.float64)
    true_pha[torch.rand(B, T, 1, H, W, generator=g) < zero_fraction] = 0
    return [t.to(dtype=dtype, device=device) for t in (pred_fgr, pred_pha, true_fgr, true_pha)]


def ours_and_reference(pred_fgr, pred_pha, true_fgr, true_pha, ref_dtype=torch.float64, **options):
    """Both dicts and both gradients (w.r.t. pred_fgr, pred_pha) of their totals.
    The reference runs in ref_dtype on the same stored values."""
    pf, pp = pred_fgr.detach().requires_grad_(), pred_pha.detach().requires_grad_()
    out = video_matting_losses(pf, pp, true_fgr, true_pha, **options)
    grads = torch.autograd.grad(out["total"], (pf, pp))
    rf = pred_fgr.detach().to(ref_dtype).requires_grad_()
    rp = pred_pha.detach().to(ref_dtype).requires_grad_()
    weights = {name: options[arg] for name, arg in zip(TERMS, WEIGHT_ARGS) if arg in options}
    scales = {k: options[k] for k in ("true_pha_scale", "true_fgr_scale") if k in options}
    ref = rvm_matting_loss(rf, rp, true_fgr.to(ref_dtype), true_pha.to(ref_dtype), weights=weights, **scales)
    ref_grads = torch.autograd.grad(ref["total"], (rf, rp))
    return out, grads, ref, ref_grads


@pytest.mark.parametrize("shape", [(2, 4, 5, 7), (1, 2, 1, 1), (3, 3, 9, 4), (1, 6, 33, 40), (2, 5, 40, 70)])
def test_float64_equals_rvm(device, shape):
    B, T, H, W = shape
    out, grads, ref, ref_grads = ours_and_reference(*make_clip(B, T, H, W, device=device, seed=sum(shape)))
    for key in KEYS:
        assert out[key].dtype == torch.float64
        assert max_rel_err(out[key], ref[key].detach()) < 1e-10, key
    for g, r in zip(grads, ref_grads):
        assert max_rel_err(g, r) < 1e-10


def test_weights_and_scales(device):
    """Any weighted total, and 8-bit targets read with their scale."""
    pf, pp, tf, tp = make_clip(2, 3, 6, 5, device=device, seed=3)
    tf8, tp8 = (tf * 255).round().to(torch.uint8), (tp * 255).round().to(torch.uint8)
    options = dict(pha_l1_weight=0.5, pha_coherence_weight=2.0, fgr_l1_weight=0.0, fgr_coherence_weight=3.25,
                   true_pha_scale=255.0, true_fgr_scale=255.0)
    out, grads, ref, ref_grads = ours_and_reference(pf, pp, tf8, tp8, **options)
    for key in KEYS:
        assert max_rel_err(out[key], ref[key].detach()) < 1e-10, key
    for g, r in zip(grads, ref_grads):
        assert max_rel_err(g, r) < 1e-10
    # the unweighted terms are RVM's, whatever the weights
    plain = video_matting_losses(pf, pp, tf8, tp8, true_pha_scale=255.0, true_fgr_scale=255.0)
    for key in TERMS:
        assert torch.equal(plain[key], out[key])


def test_single_frame_coherence_is_zero_where_rvm_is_nan(device):
    """T == 1: RVM's F.mse_loss of empty frame differences is NaN (so is its
    total); ours is 0 (documented) and everything else is RVM's."""
    pf, pp, tf, tp = make_clip(2, 1, 6, 5, device=device, seed=4)
    out, grads, ref, _ = ours_and_reference(pf, pp, tf, tp)
    assert torch.isnan(ref["pha_coherence"]) and torch.isnan(ref["fgr_coherence"]) and torch.isnan(ref["total"])
    assert out["pha_coherence"].item() == 0 and out["fgr_coherence"].item() == 0
    for key in ("pha_l1", "fgr_l1"):
        assert max_rel_err(out[key], ref[key].detach()) < 1e-10
    rf, rp = pf.clone().requires_grad_(), pp.clone().requires_grad_()
    ref = rvm_matting_loss(rf, rp, tf, tp)
    ref_grads = torch.autograd.grad(ref["pha_l1"] + ref["fgr_l1"], (rf, rp))
    assert max_rel_err(out["total"], (ref["pha_l1"] + ref["fgr_l1"]).detach()) < 1e-10
    for g, r in zip(grads, ref_grads):
        assert max_rel_err(g, r) < 1e-10


def test_l1_kink_has_zero_derivative(device):
    """Where pred == true exactly, |pred - true|'s derivative is 0 (torch's abs
    backward): with the coherence weights 0 the gradient is exactly 0 there and
    +-1/count elsewhere."""
    pf, pp, tf, tp = make_clip(2, 3, 4, 6, device=device, seed=5, zero_fraction=0.0)
    equal_p = torch.rand(pp.shape, generator=torch.Generator().manual_seed(1)) < 0.5
    equal_f = torch.rand(pf.shape, generator=torch.Generator().manual_seed(2)) < 0.5
    pp = torch.where(equal_p.to(device), tp, pp).requires_grad_()
    pf = torch.where(equal_f.to(device), tf, pf).requires_grad_()
    out = video_matting_losses(pf, pp, tf, tp, pha_coherence_weight=0.0, fgr_coherence_weight=0.0)
    gf, gp = torch.autograd.grad(out["total"], (pf, pp))
    assert torch.equal(gp, torch.sign(pp - tp).detach() / pp.numel())
    assert torch.equal(gf, torch.sign(pf - tf).detach() / pf.numel())
    assert (gp[equal_p] == 0).all() and (gf[equal_f] == 0).all()
    # and with coherence on, still RVM's gradient at and around the kinks
    out, grads, ref, ref_grads = ours_and_reference(pf, pp, tf, tp)
    for g, r in zip(grads, ref_grads):
        assert max_rel_err(g, r) < 1e-10


def test_foreground_mask(device):
    """RVM masks both foregrounds by true_pha > 0: where true_pha == 0 the
    predicted foreground has no effect and gets a zero gradient; a NaN there
    still propagates (NaN * 0), as in RVM."""
    pf, pp, tf, tp = make_clip(2, 3, 5, 5, device=device, seed=6, zero_fraction=0.5)
    masked = (tp == 0).expand_as(pf)
    assert masked.any() and (~masked).any()
    a = video_matting_losses(pf.requires_grad_(), pp, tf, tp)
    (gf,) = torch.autograd.grad(a["total"], pf)
    assert (gf[masked] == 0).all()
    assert (gf[~masked] != 0).any()
    b = video_matting_losses(torch.where(masked, 7.0, pf.detach()), pp, torch.where(masked, -3.0, tf), tp)
    for key in KEYS:
        assert torch.equal(a[key].detach(), b[key])
    with_nan = pf.detach().clone()
    with_nan[tuple(masked.nonzero()[0])] = float("nan")
    ours = video_matting_losses(with_nan, pp, tf, tp)
    ref = rvm_matting_loss(with_nan, pp, tf, tp)
    assert torch.isnan(ref["fgr_l1"]) and torch.isnan(ours["fgr_l1"]) and torch.isnan(ours["total"])
    assert not torch.isnan(ours["pha_l1"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_predictions(device, dtype):
    """float32 accumulation: within 1e-5 of the float64 reference on the same
    stored values (terms; gradients relative to their largest magnitude), terms
    in float32, gradients in the predictions' dtype."""
    pf, pp, tf, tp = make_clip(2, 4, 24, 31, device=device, seed=7)
    pf, pp, tf, tp = pf.to(dtype), pp.to(dtype), tf.float(), tp.float()
    out, grads, ref, ref_grads = ours_and_reference(pf, pp, tf, tp, pha_coherence_weight=0.7)
    for key in KEYS:
        assert out[key].dtype == torch.float32
        assert max_rel_err(out[key], ref[key].detach()) < 1e-5, key
    for g, r, p in zip(grads, ref_grads, (pf, pp)):
        assert g.dtype == dtype
        # the reference's gradient rounded to the gradient dtype is as close as it gets
        assert max_rel_err(g, r) <= 1e-5 + max_rel_err(r.to(dtype), r)


def test_autocast_training_step():
    """RVM trains under autocast: a bfloat16 network output goes straight in."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 3, padding=1)
    pf, pp, tf, tp = make_clip(2, 3, 8, 8, dtype=torch.float32, seed=8)
    frames = torch.rand(2 * 3, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(frames).view(2, 3, 4, 8, 8)
        assert y.dtype == torch.bfloat16
        out = video_matting_losses(y[:, :, :3], y[:, :, 3:], tf, tp)
    out["total"].backward()
    assert out["total"].dtype == torch.float32 and torch.isfinite(out["total"])
    assert net.weight.grad is not None and torch.isfinite(net.weight.grad).all()
    y32 = y.detach().float()
    ref = rvm_matting_loss(y32[:, :, :3].double(), y32[:, :, 3:].double(), tf.double(), tp.double())
    assert max_rel_err(out["total"], ref["total"]) < 1e-5


def test_uint8_targets_read_as_stored():
    """All-uint8 targets (converted in the math loop) give bitwise what float
    targets holding the same values / 255 give (staged), and a single uint8
    target (staged conversion) too."""
    pf, pp, tf, tp = make_clip(2, 3, 17, 19, dtype=torch.float32, seed=9)
    tf8, tp8 = (tf * 255).round().to(torch.uint8), (tp * 255).round().to(torch.uint8)
    runs = [
        (tf8, tp8, 255.0, 255.0),
        (tf8.float() / 255, tp8.float() / 255, 1.0, 1.0),
        (tf8, tp8.float() / 255, 255.0, 1.0),
    ]
    results = []
    for f, p, fs, ps in runs:
        results.append(temporal_loss_forward(pf, pp, f, p, fs, ps, 1.0, 1.0, 1.0, 1.0, True, True))
    for r in results[1:]:
        for x, y in zip(results[0], r):
            assert torch.equal(x, y)


def test_deterministic_across_runs_and_threads():
    pf, pp, tf, tp = make_clip(2, 4, 64, 70, dtype=torch.float32, seed=10)
    args = (pf, pp, tf, tp, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)
    first = temporal_loss_forward(*args)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            for x, y in zip(first, temporal_loss_forward(*args)):
                assert torch.equal(x, y)
    finally:
        torch.set_num_threads(threads)


def test_gradcheck(device):
    pf, pp, tf, tp = make_clip(2, 3, 3, 4, device=device, seed=11)
    pf.requires_grad_()
    pp.requires_grad_()

    def f(pf, pp):
        return video_matting_losses(pf, pp, tf, tp, pha_coherence_weight=1.5, fgr_l1_weight=0.5)["total"]

    assert torch.autograd.gradcheck(f, (pf, pp))
    assert torch.autograd.gradcheck(lambda pp: video_matting_losses(pf.detach(), pp, tf, tp)["total"], (pp,))
    assert torch.autograd.gradcheck(lambda pf: video_matting_losses(pf, pp.detach(), tf, tp)["total"], (pf,))


def op_samples(device):
    pf, pp, tf, tp = make_clip(2, 3, 4, 6, device=device, seed=12)
    u8 = lambda t: (t * 255).round().to(torch.uint8)  # noqa: E731
    yield (pf, pp, tf, tp, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)
    yield (pf.float(), pp.float(), u8(tf), u8(tp), 255.0, 255.0, 0.5, 2.0, 1.0, 0.0, True, False)
    yield (pf.bfloat16(), pp.bfloat16(), tf.float(), u8(tp), 1.0, 255.0, 1.0, 1.0, 1.0, 1.0, False, True)
    yield (pf.half(), pp.float(), tf.half(), tp.float(), 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, False, False)
    yield (pf[:, :1].contiguous(), pp[:, :1].contiguous(), tf[:, :1].contiguous(), tp[:, :1].contiguous(),
           1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)


def test_opcheck(device):
    for args in op_samples(device):
        torch.library.opcheck(torch.ops.mattingloss.temporal_loss_forward.default, args)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compiled_fullgraph(device, dynamic):
    """No graph break; the compiled forward and its backward give bitwise the eager results."""

    def loss(pf, pp, tf, tp):
        return video_matting_losses(pf, pp, tf, tp, fgr_coherence_weight=0.5)

    compiled = torch.compile(loss, fullgraph=True, dynamic=dynamic)
    for seed, (T, H, W) in enumerate([(3, 8, 10), (2, 12, 9)] if dynamic else [(3, 8, 10)]):
        pf, pp, tf, tp = make_clip(2, T, H, W, dtype=torch.float32, device=device, seed=13 + seed)
        explanation = torch._dynamo.explain(loss)(pf, pp, tf, tp)
        assert explanation.graph_break_count == 0, explanation.break_reasons
        results = []
        for fn in (loss, compiled):
            f, p = pf.clone().requires_grad_(), pp.clone().requires_grad_()
            out = fn(f, p, tf, tp)
            out["total"].backward()
            results.append((out, f.grad, p.grad))
        (eager, ef, ep), (comp, cf, cp) = results
        for key in KEYS:
            assert torch.equal(comp[key].detach(), eager[key].detach())
        assert torch.equal(cf, ef) and torch.equal(cp, ep)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_graph_capture():
    pf, pp, tf, tp = make_clip(2, 3, 16, 20, dtype=torch.float32, device="cuda", seed=14)
    args = (pf, pp, tf, tp, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)
    expected = temporal_loss_forward(*args)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        temporal_loss_forward(*args)  # warm-up on the side stream
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = temporal_loss_forward(*args)
    graph.replay()
    torch.cuda.synchronize()
    for x, y in zip(expected, captured):
        assert torch.equal(x, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_equals_cpu():
    for seed, (B, T, H, W) in enumerate([(2, 4, 288, 512), (1, 3, 7, 9), (3, 1, 5, 6)]):
        clip = make_clip(B, T, H, W, dtype=torch.float32, seed=seed)
        cpu = temporal_loss_forward(*clip, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)
        cuda = temporal_loss_forward(*[t.cuda() for t in clip], 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)
        for x, y in zip(cpu, cuda):
            assert max_rel_err(y, x) < 1e-5


def test_user_tensors_untouched(device):
    clip = make_clip(2, 3, 5, 6, device=device, seed=15)
    copies = [t.clone() for t in clip]
    pf, pp = clip[0].requires_grad_(), clip[1].requires_grad_()
    out = video_matting_losses(pf, pp, clip[2], clip[3])
    out["total"].backward(retain_graph=True)
    first = pf.grad.clone(), pp.grad.clone()
    pf.grad, pp.grad = None, None
    out["total"].backward()  # a second backward through the same graph: the same gradients
    assert torch.equal(pf.grad, first[0]) and torch.equal(pp.grad, first[1])
    for t, c in zip(clip, copies):
        assert torch.equal(t.detach(), c)


def test_non_contiguous_inputs(device):
    pf, pp, tf, tp = make_clip(2, 3, 6, 5, device=device, seed=16)
    # (B, T, H, W, C) storage, viewed as (B, T, C, H, W); a transposed clip
    pf_nc = pf.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    tp_nc = tp.transpose(3, 4).contiguous().transpose(3, 4)
    assert not pf_nc.is_contiguous() and not tp_nc.is_contiguous()
    out, grads, ref, ref_grads = ours_and_reference(pf_nc, pp, tf, tp_nc)
    for key in KEYS:
        assert max_rel_err(out[key], ref[key].detach()) < 1e-10
    for g, r in zip(grads, ref_grads):
        assert max_rel_err(g, r) < 1e-10


def test_bad_inputs_name_the_argument():
    pf, pp, tf, tp = make_clip(2, 3, 4, 5, seed=17)
    f = video_matting_losses
    with pytest.raises(ValueError, match=r"pred_fgr: expected shape \(2, 3, 3, 4, 5\)"):
        f(pf[:, :, :1], pp, tf, tp)
    with pytest.raises(ValueError, match=r"true_fgr: expected shape \(2, 3, 3, 4, 5\)"):
        f(pf, pp, tf[:, :2], tp)
    with pytest.raises(ValueError, match=r"true_pha: expected shape \(2, 3, 1, 4, 5\)"):
        f(pf, pp, tf, tp[..., :4])
    with pytest.raises(ValueError, match=r"pred_pha: expected shape \(B, T, 1, H, W\)"):
        f(pf, pf, tf, tp)
    with pytest.raises(ValueError, match=r"pred_pha: expected shape \(B, T, 1, H, W\)"):
        f(pf, pp[:, 0], tf, tp)
    with pytest.raises(ValueError, match="pred_pha: expected a non-empty"):
        f(pf[:0], pp[:0], tf[:0], tp[:0])
    with pytest.raises(TypeError, match="pred_pha: expected float16"):
        f(pf, pp.to(torch.int32), tf, tp)
    with pytest.raises(TypeError, match="pred_fgr: expected a torch.Tensor"):
        f(pf.tolist(), pp, tf, tp)
    with pytest.raises(TypeError, match="true_pha: expected a real dtype"):
        f(pf, pp, tf, tp.to(torch.complex128))
    with pytest.raises(ValueError, match="true_pha: requires grad"):
        f(pf, pp, tf, tp.clone().requires_grad_())
    with pytest.raises(ValueError, match="fgr_coherence_weight: expected >= 0.0, got -1.0"):
        f(pf, pp, tf, tp, fgr_coherence_weight=-1)
    with pytest.raises(ValueError, match="pha_l1_weight: expected a finite number"):
        f(pf, pp, tf, tp, pha_l1_weight=float("nan"))
    with pytest.raises(TypeError, match="pha_coherence_weight: expected a number"):
        f(pf, pp, tf, tp, pha_coherence_weight="5")
    with pytest.raises(ValueError, match="true_pha_scale: expected > 0.0"):
        f(pf, pp, tf, tp, true_pha_scale=0)
    if not _ops.cuda_kernels_built() or not torch.cuda.is_available():
        return
    with pytest.raises(ValueError, match="true_fgr: expected device cpu"):
        f(pf, pp, tf.cuda(), tp)


def test_integer_and_bool_targets():
    """int64 / bool targets are read as their values (one converted copy / a view)."""
    pf, pp, tf, tp = make_clip(1, 3, 4, 5, seed=18)
    tf_i, tp_b = (tf * 255).round().long(), tp > 0.5
    out, grads, ref, ref_grads = ours_and_reference(pf, pp, tf_i, tp_b.double(), true_fgr_scale=255.0)
    out_b = video_matting_losses(pf, pp, tf_i, tp_b, true_fgr_scale=255.0)
    for key in KEYS:
        assert max_rel_err(out[key], ref[key].detach()) < 1e-10
        assert torch.equal(out_b[key].detach(), out[key].detach())


def test_op_rejects_bad_shapes_directly():
    args = list(next(op_samples("cpu")))
    args[2] = args[2][:, :, :2].contiguous()
    with pytest.raises(RuntimeError, match="true_fgr has shape"):
        temporal_loss_forward(*args)


@pytest.mark.slow
@pytest.mark.skipif(available_gib() < 15, reason="needs about 14 GiB of free memory")
def test_more_than_2_31_elements():
    """64-bit offsets: pred_fgr has 2.17e9 > 2^31 elements, and the one element
    that differs sits past 2^31 (frame 1, channel 2, last pixel)."""
    B, T, H, W = 1, 2, 19000, 19000
    HW = H * W
    assert B * T * 3 * HW - 1 > 2**31
    pred_fgr = torch.full((B, T, 3, H, W), 0.5, dtype=torch.float16, requires_grad=True)
    pred_pha = torch.full((B, T, 1, H, W), 0.5, dtype=torch.float16)
    true_fgr = torch.zeros(B, T, 3, H, W, dtype=torch.uint8)
    true_fgr[0, 1, 2, -1, -1] = 191
    true_pha = torch.full((B, T, 1, H, W), 255, dtype=torch.uint8)
    w = 2.0**20  # keeps the per-element gradient (~w / 2e9) a normal float16
    out = video_matting_losses(pred_fgr, pred_pha, true_fgr, true_pha, true_pha_scale=255.0, true_fgr_scale=255.0,
                               fgr_l1_weight=w, fgr_coherence_weight=w)
    out["total"].backward()
    grad = pred_fgr.grad
    del true_fgr, true_pha, pred_pha
    y = 191 / 255
    n_l1, n_coh = 3 * T * HW, 3 * (T - 1) * HW
    d = -y  # (0.5 - 0.5) - (y - 0) at the last element of frame 1
    assert out["pha_l1"].item() == pytest.approx(0.5, rel=1e-6)
    assert out["pha_coherence"].item() == 0
    assert out["fgr_l1"].item() == pytest.approx(((n_l1 - 1) * 0.5 + abs(0.5 - y)) / n_l1, rel=1e-5)
    assert out["fgr_coherence"].item() == pytest.approx(5 * d * d / n_coh, rel=1e-5)
    k_l1, k_coh = w / n_l1, 5 * w / n_coh
    assert grad[0, 1, 2, -1, -1].item() == pytest.approx(-k_l1 + 2 * k_coh * d, rel=1e-2)  # float16 gradient
    assert grad[0, 0, 2, -1, -1].item() == pytest.approx(k_l1 - 2 * k_coh * d, rel=1e-2)
    assert grad[0, 1, 2, -1, -2].item() == pytest.approx(k_l1, rel=1e-2)
    assert grad[0, 1, 1, -1, -1].item() == pytest.approx(k_l1, rel=1e-2)
