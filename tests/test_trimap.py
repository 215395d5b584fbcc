"""Tests for mattingloss.trimap.make_trimap: exact equality with OpenCV.

The reference builds the trimap with cv2.getStructuringElement, cv2.erode and
cv2.dilate (OpenCV's default anchor and border) and numpy; every comparison is
exact (torch.equal). cv2 is a test-only dependency: the tests that need it skip
without it.
"""
import numpy as np
import pytest
import torch

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

from mattingloss.trimap import draw_sizes, make_trimap, structuring_element
from mattingloss.trimap import _binary_morph  # the morphology core, tested directly too

SIZES = [1, 2, 3, 4, 5, 7, 8, 15, 16, 25, 40, 41]
IMAGE_SIZES = [(1, 1), (5, 7), (37, 53), (128, 96)]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


@pytest.fixture
def cv2():
    return pytest.importorskip("cv2")


def cv_shape(cv2, shape):
    return {"rect": cv2.MORPH_RECT, "ellipse": cv2.MORPH_ELLIPSE}[shape]


def cv_trimap(cv2, alpha, erode_size, dilate_size, shape="ellipse", iterations=1, scale=255):
    """The expected trimap of a 2-D numpy alpha, with OpenCV."""
    ke = cv2.getStructuringElement(cv_shape(cv2, shape), (erode_size, erode_size))
    kd = cv2.getStructuringElement(cv_shape(cv2, shape), (dilate_size, dilate_size))
    eroded = cv2.erode(alpha, ke, iterations=iterations)
    dilated = cv2.dilate(alpha, kd, iterations=iterations)
    trimap = np.full(alpha.shape, 128, np.uint8)
    trimap[eroded == scale] = 255
    trimap[dilated <= 0] = 0
    return torch.from_numpy(trimap)


def soft_alphas(n, h, w, seed):
    """(n, 1, h, w) uint8 alphas: blurred blobs (soft ramps between exact 0 and
    255 regions) plus isolated opaque/transparent pixels and thin lines."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.arange(h, dtype=torch.float64)[:, None]
    xx = torch.arange(w, dtype=torch.float64)[None, :]
    out = []
    for _ in range(n):
        f = torch.zeros(h, w, dtype=torch.float64)
        for _ in range(4):
            cy, cx = torch.rand(2, generator=g, dtype=torch.float64) * torch.tensor([h, w])
            rad = 1.0 + torch.rand((), generator=g, dtype=torch.float64) * 0.4 * max(h, w)
            f += torch.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rad**2)))
        lo = 0.2 + 0.3 * torch.rand((), generator=g, dtype=torch.float64)
        a = ((f - lo) / 0.4).clamp(0, 1)
        a = (a * 255).round().to(torch.uint8)
        speck = torch.rand(h, w, generator=g)
        a[speck < 0.01] = 255
        a[speck > 0.99] = 0
        if h > 2:
            a[int(torch.randint(h, (1,), generator=g))] = 255  # a one-pixel line
        out.append(a)
    return torch.stack(out)[:, None]


def to_np(a2d):
    return np.ascontiguousarray(a2d.cpu().numpy())


# ---------------------------------------------------------------------------
# structuring elements and the morphology core
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["rect", "ellipse"])
def test_structuring_element_matches_cv2(cv2, shape):
    for k in range(1, 64):
        expected = cv2.getStructuringElement(cv_shape(cv2, shape), (k, k))
        assert np.array_equal(structuring_element(k, shape).numpy(), expected), k


@pytest.mark.parametrize("shape", ["rect", "ellipse"])
@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_binary_erode_dilate_match_cv2(cv2, shape, iterations):
    rng = np.random.default_rng(iterations)
    for k in SIZES:
        el = cv2.getStructuringElement(cv_shape(cv2, shape), (k, k))
        for h, w in [(1, 1), (5, 7), (23, 31), (2, 50)]:
            m = (rng.random((h, w)) < rng.choice([0.1, 0.5, 0.9])).astype(np.uint8)
            x = torch.from_numpy(m.astype(bool))[None]
            for erode, op in ((True, cv2.erode), (False, cv2.dilate)):
                got = _binary_morph(x, k, shape, iterations, erode)[0].numpy().astype(np.uint8)
                assert np.array_equal(got, op(m, el, iterations=iterations)), (k, h, w, erode)


# ---------------------------------------------------------------------------
# make_trimap against OpenCV
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["rect", "ellipse"])
@pytest.mark.parametrize("iterations", [1, 2, 3])
@pytest.mark.parametrize("k", SIZES)
def test_uint8_matches_cv2(cv2, shape, iterations, k):
    other = SIZES[(SIZES.index(k) + 5) % len(SIZES)]  # erode and dilate sizes differ
    for i, (h, w) in enumerate(IMAGE_SIZES):
        alpha = soft_alphas(3, h, w, seed=1000 * k + 10 * iterations + i)
        for e, d in ((k, other), (other, k)):
            got = make_trimap(alpha, e, d, shape=shape, iterations=iterations)
            assert got.dtype == torch.uint8 and got.shape == alpha.shape
            for b in range(alpha.shape[0]):
                expected = cv_trimap(cv2, to_np(alpha[b, 0]), e, d, shape, iterations)
                assert torch.equal(got[b, 0], expected), (h, w, e, d, b)
            # (H, W) input gives the same as the batched one
            assert torch.equal(make_trimap(alpha[1, 0], e, d, shape=shape, iterations=iterations), got[1, 0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", ["rect", "ellipse"])
def test_float_matches_cv2(cv2, dtype, shape):
    for k, it in [(1, 1), (2, 2), (3, 1), (4, 3), (15, 1), (16, 2), (40, 1), (41, 1)]:
        for h, w in IMAGE_SIZES:
            alpha = soft_alphas(2, h, w, seed=k * 7 + h).to(dtype) / 255.0
            got = make_trimap(alpha, k, 41 - k + 1, shape=shape, iterations=it, alpha_scale=1.0)
            for b in range(2):
                expected = cv_trimap(cv2, to_np(alpha[b, 0]), k, 42 - k, shape, it, scale=1.0)
                assert torch.equal(got[b, 0], expected), (k, it, h, w, b)


if given is not None:

    @settings(max_examples=60, deadline=None)
    @given(
        h=st.integers(1, 24),
        w=st.integers(1, 24),
        e=st.integers(1, 41),
        d=st.integers(1, 41),
        shape=st.sampled_from(["rect", "ellipse"]),
        iterations=st.integers(1, 3),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_property_matches_cv2(h, w, e, d, shape, iterations, seed):
        cv2 = pytest.importorskip("cv2")
        rng = np.random.default_rng(seed)
        a = rng.choice(np.array([0, 255, 1, 128, 254], np.uint8), size=(h, w), p=[0.4, 0.4, 0.05, 0.1, 0.05])
        got = make_trimap(torch.from_numpy(a), e, d, shape=shape, iterations=iterations)
        assert torch.equal(got, cv_trimap(cv2, a, e, d, shape, iterations))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int16, torch.int32, torch.int64])
def test_other_dtypes_agree_with_uint8(dtype):
    alpha = soft_alphas(2, 37, 53, seed=5)
    expected = make_trimap(alpha, 4, 9)
    if dtype.is_floating_point:
        got = make_trimap(alpha.to(dtype) / 255.0, 4, 9, alpha_scale=1.0)  # 0 and 1 are exact
    else:
        got = make_trimap(alpha.to(dtype), 4, 9)
    assert torch.equal(got, expected)


def test_float_alpha_on_0_255_scale(cv2):
    alpha = soft_alphas(2, 37, 53, seed=6)
    got = make_trimap(alpha.float(), 16, 7)  # default alpha_scale=255
    assert torch.equal(got, make_trimap(alpha, 16, 7))
    assert torch.equal(got[0, 0], cv_trimap(cv2, to_np(alpha[0, 0].float()), 16, 7))


def test_out_of_range_values_act_as_clamped():
    a = soft_alphas(2, 37, 53, seed=7).to(torch.float32)
    a[:, :, :5] = 300.0
    a[:, :, -5:] = -4.0
    assert torch.equal(make_trimap(a, 5, 6), make_trimap(a.clamp(0, 255).to(torch.uint8), 5, 6))


def test_values_and_trivial_inputs():
    alpha = soft_alphas(2, 37, 53, seed=8)
    t = make_trimap(alpha, 3, 3)
    assert set(t.unique().tolist()) <= {0, 128, 255}
    assert torch.equal(make_trimap(torch.zeros(9, 9, dtype=torch.uint8), 5, 5), torch.zeros(9, 9, dtype=torch.uint8))
    full = torch.full((9, 9), 255, dtype=torch.uint8)
    assert torch.equal(make_trimap(full, 5, 5), full)  # the border never erodes
    # size 1 / 1: fg exactly where opaque, bg exactly where 0
    t = make_trimap(alpha, 1, 1)
    expected = torch.full_like(alpha, 128)
    expected[alpha == 255] = 255
    expected[alpha == 0] = 0
    assert torch.equal(t, expected)


def test_empty_inputs():
    for shape in [(0, 1, 8, 8), (2, 1, 0, 5), (0, 7)]:
        a = torch.zeros(shape, dtype=torch.uint8)
        t = make_trimap(a, 3, (2, 5), generator=torch.Generator().manual_seed(0))
        assert t.shape == a.shape and t.dtype == torch.uint8


def test_input_not_modified_and_noncontiguous(cv2):
    base = soft_alphas(1, 53, 37, seed=9)[0, 0]
    alpha = base.t()  # non-contiguous view
    before = alpha.clone()
    got = make_trimap(alpha, 6, 11)
    assert torch.equal(alpha, before)
    assert torch.equal(got, cv_trimap(cv2, to_np(alpha), 6, 11))


# ---------------------------------------------------------------------------
# the seed's variant
# ---------------------------------------------------------------------------
def test_seed_variant(cv2):
    """make_trimap(alpha, 1, 15, "rect") is the seed's script, line for line."""
    for h, w in IMAGE_SIZES:
        alpha = soft_alphas(2, h, w, seed=h * w)
        got = make_trimap(alpha, erode_size=1, dilate_size=15, shape="rect")
        for b in range(2):
            a = to_np(alpha[b, 0])
            kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15))
            dilated = cv2.dilate(a, kernel)
            trimap = np.zeros(a.shape)
            trimap.fill(128)
            trimap[a >= 255] = 255
            trimap[dilated <= 0] = 0
            assert torch.equal(got[b, 0], torch.from_numpy(trimap.astype(np.uint8)))


# ---------------------------------------------------------------------------
# random per-sample sizes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["rect", "ellipse"])
def test_random_sizes_match_cv2_per_sample(cv2, shape):
    alpha = soft_alphas(8, 37, 53, seed=11)
    g = torch.Generator().manual_seed(123)
    got, es, ds = make_trimap(alpha, (1, 30), (2, 42), shape=shape, generator=g, return_sizes=True)
    assert len(es) == len(ds) == 8
    assert all(1 <= e < 30 for e in es) and all(2 <= d < 42 for d in ds)
    assert len(set(es)) > 1 and len(set(ds)) > 1  # really per sample
    for b in range(8):
        expected = cv_trimap(cv2, to_np(alpha[b, 0]), es[b], ds[b], shape)
        assert torch.equal(got[b, 0], expected), (b, es[b], ds[b])


def test_random_sizes_are_draw_sizes():
    g = torch.Generator().manual_seed(7)
    es = draw_sizes((3, 20), 5, g)
    ds = draw_sizes((1, 9), 5, g)
    _, es2, ds2 = make_trimap(
        soft_alphas(5, 9, 9, seed=0), (3, 20), (1, 9), generator=torch.Generator().manual_seed(7), return_sizes=True
    )
    assert (es, ds) == (es2, ds2)
    # the documented draw: torch.randint(lo, hi, (B,), generator=g), erode first
    g = torch.Generator().manual_seed(7)
    assert es == torch.randint(3, 20, (5,), generator=g).tolist()
    assert ds == torch.randint(1, 9, (5,), generator=g).tolist()
    # a fixed size draws nothing
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    _, es3, ds3 = make_trimap(soft_alphas(4, 9, 9, seed=0), 5, (1, 9), generator=g1, return_sizes=True)
    assert es3 == [5] * 4 and ds3 == torch.randint(1, 9, (4,), generator=g2).tolist()
    assert draw_sizes(5, 3) == [5, 5, 5]


def test_random_sizes_reproducible():
    alpha = soft_alphas(6, 37, 53, seed=12)
    a = make_trimap(alpha, (1, 30), (1, 30), generator=torch.Generator().manual_seed(5), return_sizes=True)
    b = make_trimap(alpha, (1, 30), (1, 30), generator=torch.Generator().manual_seed(5), return_sizes=True)
    c = make_trimap(alpha, (1, 30), (1, 30), generator=torch.Generator().manual_seed(6), return_sizes=True)
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    assert a[1:] != c[1:]
    # without a generator, the global CPU RNG is used
    torch.manual_seed(99)
    d = make_trimap(alpha, (1, 30), (1, 30), return_sizes=True)
    torch.manual_seed(99)
    e = make_trimap(alpha, (1, 30), (1, 30), return_sizes=True)
    assert torch.equal(d[0], e[0]) and d[1:] == e[1:]


def test_2d_input_draws_one_size(cv2):
    alpha = soft_alphas(1, 37, 53, seed=13)[0, 0]
    got, es, ds = make_trimap(alpha, (2, 6), (10, 20), generator=torch.Generator().manual_seed(1), return_sizes=True)
    assert got.shape == alpha.shape and len(es) == len(ds) == 1
    assert torch.equal(got, cv_trimap(cv2, to_np(alpha), es[0], ds[0]))


# ---------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------
@CUDA
@pytest.mark.parametrize("shape", ["rect", "ellipse"])
def test_cuda_matches_cpu(shape):
    for dtype in (torch.uint8, torch.float32):
        for h, w in IMAGE_SIZES:
            alpha = soft_alphas(4, h, w, seed=h + w)
            scale = 255.0
            if dtype == torch.float32:
                alpha, scale = alpha.float() / 255.0, 1.0
            for e, d, it in [(1, 15, 1), (2, 3, 2), (16, 41, 1), (40, 4, 3)]:
                cpu = make_trimap(alpha, e, d, shape=shape, iterations=it, alpha_scale=scale)
                gpu = make_trimap(alpha.cuda(), e, d, shape=shape, iterations=it, alpha_scale=scale)
                assert gpu.device.type == "cuda" and gpu.dtype == torch.uint8
                assert torch.equal(gpu.cpu(), cpu), (dtype, h, w, e, d, it)


@CUDA
def test_cuda_random_sizes_cpu_generator():
    alpha = soft_alphas(8, 64, 48, seed=14)
    cpu = make_trimap(alpha, (1, 30), (1, 30), generator=torch.Generator().manual_seed(3), return_sizes=True)
    gpu = make_trimap(alpha.cuda(), (1, 30), (1, 30), generator=torch.Generator().manual_seed(3), return_sizes=True)
    assert gpu[1:] == cpu[1:]
    assert torch.equal(gpu[0].cpu(), cpu[0])


@CUDA
def test_cuda_random_sizes_cuda_generator():
    alpha = soft_alphas(8, 64, 48, seed=15).cuda()
    g = torch.Generator(device="cuda").manual_seed(3)
    t, es, ds = make_trimap(alpha, (1, 30), (1, 30), generator=g, return_sizes=True)
    g = torch.Generator(device="cuda").manual_seed(3)
    assert es == torch.randint(1, 30, (8,), generator=g, device="cuda").tolist()
    assert ds == torch.randint(1, 30, (8,), generator=g, device="cuda").tolist()
    for b in range(8):
        assert torch.equal(t[b, 0].cpu(), make_trimap(alpha[b, 0].cpu(), es[b], ds[b]))


@CUDA
def test_cuda_no_host_sync():
    """No device-to-host copy or synchronisation: the images never leave the GPU."""
    alpha = soft_alphas(4, 64, 48, seed=16).cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        make_trimap(alpha, 16, 25, shape="ellipse", iterations=2)
        make_trimap(alpha, 4, 7, shape="rect")
        make_trimap(alpha, (1, 30), (1, 30), generator=torch.Generator().manual_seed(0))  # sizes drawn on the CPU
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ---------------------------------------------------------------------------
# bad input: one test per case; the message names the argument
# ---------------------------------------------------------------------------
A = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)


def test_bad_alpha_type():
    with pytest.raises(TypeError, match="alpha must be a torch.Tensor"):
        make_trimap(np.zeros((8, 8), np.uint8), 3, 3)


def test_bad_alpha_rank():
    with pytest.raises(ValueError, match=r"alpha must have shape \(H, W\) or \(B, 1, H, W\).*3-D"):
        make_trimap(torch.zeros(1, 8, 8), 3, 3)


def test_bad_alpha_channels():
    with pytest.raises(ValueError, match="alpha must have shape.*3 channels, expected 1"):
        make_trimap(torch.zeros(2, 3, 8, 8), 3, 3)


@pytest.mark.parametrize("dtype", [torch.bool, torch.complex64])
def test_bad_alpha_dtype(dtype):
    with pytest.raises(TypeError, match=f"alpha must be a real-valued.*got dtype {dtype}"):
        make_trimap(torch.zeros(8, 8, dtype=dtype), 3, 3)


@pytest.mark.parametrize("name", ["erode_size", "dilate_size"])
@pytest.mark.parametrize("bad", [0, -3])
def test_bad_size_not_positive(name, bad):
    kwargs = {"erode_size": 3, "dilate_size": 3, name: bad}
    with pytest.raises(ValueError, match=f"{name} must be a positive int.*got {bad}"):
        make_trimap(A, **kwargs)


@pytest.mark.parametrize("name", ["erode_size", "dilate_size"])
@pytest.mark.parametrize("bad", [3.0, "3", None, True, (1.0, 5), (1, 2, 3)])
def test_bad_size_not_int(name, bad):
    kwargs = {"erode_size": 3, "dilate_size": 3, name: bad}
    with pytest.raises(TypeError, match=f"{name} must be an int k or a \\(lo, hi\\) tuple"):
        make_trimap(A, **kwargs)


@pytest.mark.parametrize("name", ["erode_size", "dilate_size"])
@pytest.mark.parametrize("bad", [(5, 5), (9, 3)])
def test_bad_size_range_empty(name, bad):
    kwargs = {"erode_size": 3, "dilate_size": 3, name: bad}
    with pytest.raises(ValueError, match=f"{name} range \\(lo, hi\\) needs lo < hi"):
        make_trimap(A, generator=torch.Generator(), **kwargs)


@pytest.mark.parametrize("name", ["erode_size", "dilate_size"])
def test_bad_size_range_lo(name):
    kwargs = {"erode_size": 3, "dilate_size": 3, name: (0, 5)}
    with pytest.raises(ValueError, match=f"{name} range \\(lo, hi\\) needs lo >= 1"):
        make_trimap(A, **kwargs)


@pytest.mark.parametrize("bad", ["circle", "RECT", "cross"])
def test_bad_shape_name(bad):
    with pytest.raises(ValueError, match=f"shape must be one of \\('rect', 'ellipse'\\), got '{bad}'"):
        make_trimap(A, 3, 3, shape=bad)


@pytest.mark.parametrize("bad", [2, None])
def test_bad_shape_type(bad):
    with pytest.raises(TypeError, match=r"shape must be one of \('rect', 'ellipse'\), got"):
        make_trimap(A, 3, 3, shape=bad)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_iterations_value(bad):
    with pytest.raises(ValueError, match=f"iterations must be an int >= 1, got {bad}"):
        make_trimap(A, 3, 3, iterations=bad)


@pytest.mark.parametrize("bad", [1.0, "2", True])
def test_bad_iterations_type(bad):
    with pytest.raises(TypeError, match="iterations must be an int >= 1"):
        make_trimap(A, 3, 3, iterations=bad)


def test_bad_generator():
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        make_trimap(A, (1, 5), 3, generator=42)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan")])
def test_bad_alpha_scale_value(bad):
    with pytest.raises(ValueError, match="alpha_scale must be finite and > 0"):
        make_trimap(A, 3, 3, alpha_scale=bad)


@pytest.mark.parametrize("bad", ["255", None, True])
def test_bad_alpha_scale_type(bad):
    with pytest.raises(TypeError, match="alpha_scale must be a real number"):
        make_trimap(A, 3, 3, alpha_scale=bad)
