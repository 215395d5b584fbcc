"""mattingloss.metrics against mattingloss.reference.metrics (each convention's source,
reproduced): SAD/MSE to float64 summation order (exact where the sum is exact),
Gradient to 1e-10 relative, Connectivity's level exactly at every pixel."""
import math
import zlib

import numpy as np
import pytest
import torch

from mattingloss import metrics
from mattingloss.reference import metrics as R

cv2 = pytest.importorskip("cv2")
pytest.importorskip("scipy")
pytest.importorskip("skimage")

CONVENTIONS = ["dim_matlab", "mmagic", "gca", "rvm"]


# ---------------------------------------------------------------- mattes
def _blobs(rng, H, W, n=6):
    """A smooth-ish matte: opaque blobs with soft edges and background 0."""
    yy, xx = np.mgrid[0:H, 0:W]
    a = np.zeros((H, W))
    for _ in range(n):
        cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(2, max(3, min(H, W) / 3))
        a = np.maximum(a, np.clip((r - np.hypot(yy - cy, xx - cx)) / 3 + 0.5, 0, 1))
    return np.round(a * 255).astype(np.uint8)


def _trimap(rng, gt):
    t = np.where(gt == 0, 0, np.where(gt == 255, 255, 128)).astype(np.uint8)
    t[rng.random(gt.shape) < 0.3] = 128
    return t


def _case(kind, rng, H, W):
    if kind == "random":
        gt = rng.integers(0, 256, (H, W)).astype(np.uint8)
        pred = rng.integers(0, 256, (H, W)).astype(np.uint8)
        return pred, gt, rng.choice(np.array([0, 128, 255], np.uint8), (H, W))
    if kind == "blobs":
        gt = _blobs(rng, H, W)
        pred = np.clip(gt.astype(int) + rng.integers(-40, 41, (H, W)), 0, 255).astype(np.uint8)
    elif kind == "hard":
        gt = np.where(_blobs(rng, H, W) > 127, 255, 0).astype(np.uint8)
        pred = np.where(_blobs(rng, H, W) > 127, 255, 0).astype(np.uint8)
    elif kind == "thin":  # 1-pixel lines and diagonal staircases (4-disconnected)
        gt = np.zeros((H, W), np.uint8)
        gt[::3, :] = 200
        gt[:, ::4] = 255
        for k in range(min(H, W)):
            gt[k, k] = 230
        pred = gt.copy()
        pred[rng.random((H, W)) < 0.15] = 0
        pred[rng.random((H, W)) < 0.1] = 180
    elif kind == "holes":  # rings of decreasing alpha with holes
        yy, xx = np.mgrid[0:H, 0:W]
        d = np.hypot(yy - H / 2, xx - W / 2)
        gt = np.clip(255 - (d.astype(int) % 7) * 40, 0, 255).astype(np.uint8)
        gt[(d.astype(int) % 5) == 0] = 0
        pred = np.clip(gt.astype(int) + rng.integers(-30, 31, (H, W)), 0, 255).astype(np.uint8)
    else:
        raise ValueError(kind)
    return pred, gt, _trimap(rng, gt)


def _batch(arrays):
    return torch.from_numpy(np.stack(arrays)[:, None].copy())


def _check(pred_t, gt_t, trimap_t, convention, *, scale=None, gt_scale=None, region="trimap", exact_sad=False):
    out = metrics.matting_metrics(pred_t, gt_t, trimap_t if region == "trimap" else None, convention, scale=scale,
                                  gt_scale=gt_scale, region=region)
    levels = metrics.connectivity_levels(pred_t, gt_t, trimap_t if region == "trimap" else None, convention,
                                         scale=scale, gt_scale=gt_scale, region=region)
    pf = 255.0 / (scale if scale is not None else (255.0 if pred_t.dtype == torch.uint8 else 1.0))
    gs = gt_scale if gt_scale is not None else (scale if gt_t.dtype == pred_t.dtype else None)
    gf = 255.0 / (gs if gs is not None else (255.0 if gt_t.dtype == torch.uint8 else 1.0))
    ref_fn = R.CONVENTIONS[convention]
    for b in range(pred_t.shape[0]):
        a_p = (pred_t[b, 0].double() * pf).numpy()
        a_g = (gt_t[b, 0].double() * gf).numpy()
        reg = (trimap_t[b, 0].numpy() == 128) if region == "trimap" else np.ones(a_p.shape, bool)
        ref = ref_fn(a_p, a_g, reg, with_levels=True)
        np.testing.assert_array_equal(levels[b, 0].numpy(), ref["levels"], err_msg=f"{convention} levels, sample {b}")
        if exact_sad:
            assert float(out["sad"][b]) == ref["sad"]
        for k, rtol in (("sad", 1e-12), ("mse", 1e-12), ("conn", 1e-12), ("grad", 1e-10)):
            got, want = float(out[k][b]), ref[k]
            if math.isnan(want):
                assert math.isnan(got), (convention, k, b)
            else:
                assert got == pytest.approx(want, rel=rtol, abs=1e-13), (convention, k, b, got, want)
    return out


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("kind", ["random", "blobs", "hard", "thin", "holes"])
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (1, 19), (23, 1), (5, 3)])
def test_equals_reference_uint8(convention, kind, shape):
    rng = np.random.default_rng(hash((kind, shape)) % 2 ** 32)
    cases = [_case(kind, rng, *shape) for _ in range(2)]
    pred = _batch([c[0] for c in cases])
    gt = _batch([c[1] for c in cases])
    trimap = _batch([c[2] for c in cases])
    # MATLAB's per-pixel SAD values are float32 multiples of 2^-31 below 1: their
    # float64 sum is exact in any order for these sizes.
    _check(pred, gt, trimap, convention, exact_sad=convention == "dim_matlab")


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_float_inputs(convention):
    rng = np.random.default_rng(5)
    cases = [_case("blobs", rng, 41, 29) for _ in range(2)]
    pred8, gt8, tri = (_batch([c[i] for c in cases]) for i in range(3))
    # floating 0..1 (scale 1): soft values between the uint8 levels too
    pred = (pred8.double() / 255 + torch.from_numpy(rng.uniform(-0.002, 0.002, pred8.shape))).clamp(0, 1)
    _check(pred.float(), (gt8.float() / 255), tri, convention)
    _check(pred, gt8, tri, convention)  # float64 pred with a uint8 gt
    # floating 0..255 with scale=255 gives the uint8 numbers exactly
    a = metrics.matting_metrics(pred8, gt8, tri, convention)
    b = metrics.matting_metrics(pred8.double(), gt8.float(), tri, convention, scale=255, gt_scale=255)
    for k in metrics.METRICS:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_region_all_and_range(convention):
    rng = np.random.default_rng(7)
    cases = [_case("blobs", rng, 30, 31) for _ in range(2)]
    pred, gt, tri = (_batch([c[i] for c in cases]) for i in range(3))
    _check(pred, gt, tri, convention, region="all")
    a = metrics.matting_metrics(pred, gt, tri, convention)
    b = metrics.matting_metrics(pred, gt, tri.float() / 255, convention, unknown_range=(0.3, 0.7))
    for k in metrics.METRICS:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


# ---------------------------------------------------------------- the sources' details
def test_thresholds_matlab_colon_vs_arange():
    assert R.MATLAB_THRESHOLDS[6] == 0.6 and R.MATLAB_THRESHOLDS[7] == 0.7
    assert R.NUMPY_THRESHOLDS[6] == 0.6000000000000001 and R.NUMPY_THRESHOLDS[7] == 0.7000000000000001
    assert R.MATLAB_THRESHOLDS[3] == 0.30000000000000004  # the first half is k*0.1, as numpy's
    assert 153 / 255 == 0.6
    assert metrics._THRESHOLDS[0] == R.MATLAB_THRESHOLDS
    assert metrics._THRESHOLDS[1] == metrics._THRESHOLDS[2] == R.NUMPY_THRESHOLDS
    g, d = R.separable_taps()
    np.testing.assert_allclose(metrics._TAPS, list(g) + list(d), rtol=1e-15, atol=1e-17)


def test_alpha_153_reaches_matlab_threshold_only():
    """alpha = 153 is 0.6: in MATLAB's 0:0.1:1 it reaches the 0.6 threshold (l = 0.6), in
    np.arange's 0.6000000000000001 it does not (l = 0.5): a different phi and error."""
    gt = np.full((9, 9), 153, np.uint8)
    pred = gt.copy()
    pred[4, 4] = 255
    tri = np.full((9, 9), 128, np.uint8)
    p, g, t = _batch([pred]), _batch([gt]), _batch([tri])
    lv_m = metrics.connectivity_levels(p, g, t, "dim_matlab")[0, 0]
    lv_n = metrics.connectivity_levels(p, g, t, "mmagic")[0, 0]
    assert int(lv_m[0, 0]) == 6 and int(lv_n[0, 0]) == 5
    # at (4, 4) only: MATLAB l = 0.6: d_p = 0.4 (phi 0.6), d_g = 0 (phi 1): 0.4;
    # mmagic l = 0.5: d_p = 0.5 (phi 0.5), d_g = 0.1 < 0.15 (phi 1): 0.5.
    conn_m = float(metrics.connectivity_error(p, g, t, "dim_matlab")[0])
    conn_n = float(metrics.connectivity_error(p, g, t, "mmagic")[0])
    assert conn_m == pytest.approx(0.4 / 1000, rel=1e-6)
    assert conn_n == pytest.approx(0.5 / 1000, rel=1e-12)
    assert conn_m == pytest.approx(R.dim_matlab(pred, gt, tri == 128)["conn"], rel=1e-12)
    assert conn_n == pytest.approx(R.mmagic(pred, gt, tri == 128)["conn"], rel=1e-12)


def test_rvm_float32_details():
    """RVM's float32 frames: alpha 153 reaches the 0.6 threshold (np.arange's
    0.6000000000000001 compared in float32, as numpy < 1.24 does), unlike mmagic's
    float64 comparison; MAD and MSE are means x 1e3 of float32 differences; ties go
    to OpenCV's row-major first component."""
    gt = np.full((9, 9), 153, np.uint8)
    pred = gt.copy()
    pred[4, 4] = 255
    p, g = _batch([pred]), _batch([gt])
    assert int(metrics.connectivity_levels(p, g, None, "rvm", region="all")[0, 0, 0, 0]) == 6
    assert int(metrics.connectivity_levels(p, g, None, "mmagic", region="all")[0, 0, 0, 0]) == 5
    out = metrics.matting_metrics(p, g, None, "rvm", region="all")
    d = np.float32(255) / np.float32(255) - np.float32(153) / np.float32(255)
    assert float(out["sad"][0]) == float(abs(d)) / 81 * 1e3
    assert float(out["mse"][0]) == float(d * d) / 81 * 1e3
    ref = R.rvm(pred, gt, np.ones((9, 9), bool))
    for k in metrics.METRICS:
        assert float(out[k][0]) == pytest.approx(ref[k], rel=1e-12, abs=1e-13)
    tie = np.zeros((10, 10), np.uint8)
    tie[0:3, 6:9] = 255
    tie[6:9, 0:3] = 255
    lv = metrics.connectivity_levels(_batch([tie]), _batch([tie]), None, "rvm", region="all")[0, 0].numpy()
    assert lv[1, 7] == 10 and lv[7, 1] == 0


def test_single_precision_sad():
    """MATLAB's per-pixel SAD is single(|p - g|)/255 in float32: 1/255 rounded to float32."""
    pred = np.array([[1, 0]], np.uint8)
    gt = np.zeros((1, 2), np.uint8)
    tri = np.full((1, 2), 128, np.uint8)
    p, g, t = _batch([pred]), _batch([gt]), _batch([tri])
    sad_m = float(metrics.sad(p, g, t, "dim_matlab")[0])
    sad_g = float(metrics.sad(p, g, t, "gca")[0])
    assert sad_m == float(np.float32(1) / np.float32(255)) / 1000
    assert sad_g == (1 / 255) / 1000
    assert sad_m != sad_g


def test_tie_break_column_vs_row_major():
    """Two equal-size components: bwconncomp's first in column-major order (bottom-left
    here) wins in MATLAB, OpenCV's first in row-major order (top-right) in mmagic."""
    gt = np.zeros((10, 10), np.uint8)
    gt[0:3, 6:9] = 255  # top-right
    gt[6:9, 0:3] = 255  # bottom-left
    tri = np.full((10, 10), 128, np.uint8)
    p, g, t = _batch([gt]), _batch([gt]), _batch([tri])
    lv_m = metrics.connectivity_levels(p, g, t, "dim_matlab")[0, 0].numpy()
    lv_n = metrics.connectivity_levels(p, g, t, "mmagic")[0, 0].numpy()
    assert lv_m[7, 1] == 10 and lv_m[1, 7] == 0
    assert lv_n[1, 7] == 10 and lv_n[7, 1] == 0
    np.testing.assert_array_equal(lv_m, R.dim_matlab(gt, gt, tri == 128, with_levels=True)["levels"])
    np.testing.assert_array_equal(lv_n, R.mmagic(gt, gt, tri == 128, with_levels=True)["levels"])


def test_gca_background_component():
    """GCA's largest component counts the background: a small opaque square on a large
    background gets omega = background, so its pixels take l = 0 (MATLAB: l = 1)."""
    gt = np.zeros((20, 20), np.uint8)
    gt[5:9, 5:9] = 255
    tri = np.full((20, 20), 128, np.uint8)
    p, g, t = _batch([gt]), _batch([gt]), _batch([tri])
    assert int(metrics.connectivity_levels(p, g, t, "gca")[0, 0, 6, 6]) == 0
    assert int(metrics.connectivity_levels(p, g, t, "dim_matlab")[0, 0, 6, 6]) == 10
    np.testing.assert_array_equal(metrics.connectivity_levels(p, g, t, "gca")[0, 0].numpy(),
                                  R.gca(gt, gt, tri == 128, with_levels=True)["levels"])


def _few_value_mattes(seed: int, count: int):
    """(pred, gt) uint8 mattes up to 23x23 of 2-5 alpha values on both sides of the
    thresholds (a third with pred == gt): ties, nested components, empty thresholds."""
    rng = np.random.default_rng(seed)
    values = np.array([0, 25, 26, 51, 77, 102, 127, 153, 178, 204, 229, 230, 255])
    for it in range(count):
        H, W = (int(v) for v in rng.integers(1, 24, 2))
        vals = rng.choice(values, size=int(rng.integers(2, 6)), replace=False)
        gt = rng.choice(vals, (H, W)).astype(np.uint8)
        yield (gt.copy() if it % 3 == 0 else rng.choice(vals, (H, W)).astype(np.uint8)), gt


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_levels_few_values(convention):
    """Small mattes of a few alpha values (many equal-size components, ties, nested
    components merging across thresholds, empty thresholds): the single union-find
    pass over all thresholds gives every pixel's level exactly as the reference's
    labelling of each threshold apart."""
    for it, (pred, gt) in enumerate(_few_value_mattes(8, 120)):
        lv = metrics.connectivity_levels(_batch([pred]), _batch([gt]), None, convention, region="all")
        ref = R.CONVENTIONS[convention](pred, gt, np.ones(gt.shape, bool), with_levels=True)["levels"]
        np.testing.assert_array_equal(lv[0, 0].numpy(), ref, err_msg=f"case {it}")


def test_reference_labelling_orders():
    """The references' tie-breaks rest on OpenCV and skimage numbering components in
    row-major order of their first pixel: checked on random masks."""
    from skimage.measure import label
    rng = np.random.default_rng(3)
    for _ in range(5):
        m = rng.random((40, 37)) < 0.45
        _, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=4)
        sk = label(m, connectivity=1)
        for labels in (lab, sk):
            flat = labels.ravel()
            firsts = [int(np.argmax(flat == k)) for k in range(1, flat.max() + 1)]
            assert firsts == sorted(firsts)


def test_gradient_normalisations_differ():
    """A matte with no fully opaque pixel: MATLAB's mat2gray stretches it to [0, 1], GCA
    divides by 255 (smaller gradients)."""
    yy, xx = np.mgrid[0:32, 0:32]
    gt = (xx * 5).astype(np.uint8)  # 0..155
    pred = np.zeros_like(gt)
    tri = np.full(gt.shape, 128, np.uint8)
    p, g, t = _batch([pred]), _batch([gt]), _batch([tri])
    m = float(metrics.gradient_error(p, g, t, "dim_matlab")[0])
    c = float(metrics.gradient_error(p, g, t, "gca")[0])
    assert m == pytest.approx(R.dim_matlab(pred, gt, tri == 128)["grad"], rel=1e-10)
    assert c == pytest.approx(R.gca(pred, gt, tri == 128)["grad"], rel=1e-10)
    assert m / c == pytest.approx((255 / 155) ** 2, rel=1e-3)


def test_empty_region():
    pred = np.full((1, 8, 8), 10, np.uint8)
    gt = np.zeros((1, 8, 8), np.uint8)
    tri = np.zeros((1, 8, 8), np.uint8)
    p, g, t = (torch.from_numpy(x[:, None]) for x in (pred, gt, tri))
    assert math.isnan(float(metrics.mse(p, g, t, "dim_matlab")[0]))  # MATLAB: 0/0
    assert float(metrics.mse(p, g, t, "mmagic")[0]) == 0.0
    assert float(metrics.mse(p, g, t, "gca")[0]) == 0.0
    assert math.isnan(float(metrics.mse(p, g, t, "rvm")[0]))  # np.mean of nothing
    for c in CONVENTIONS:
        out = metrics.matting_metrics(p, g, t, c)
        assert float(out["grad"][0]) == 0.0 and float(out["conn"][0]) == 0.0


def test_threads_do_not_change_bits():
    rng = np.random.default_rng(11)
    cases = [_case("blobs", rng, 70, 90) for _ in range(2)]
    pred, gt, tri = (_batch([c[i] for c in cases]) for i in range(3))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = metrics.matting_metrics(pred, gt, tri)
        torch.set_num_threads(max(2, threads))
        many = metrics.matting_metrics(pred, gt, tri)
    finally:
        torch.set_num_threads(threads)
    for k in metrics.METRICS:
        assert torch.equal(one[k], many[k])


def _noisy_opaque(rng, H, W):
    # the benchmark's kind of input: a soft matte with wide opaque areas and a noisy
    # prediction, so threshold 1.0 is a random half of the opaque area (many tiny
    # runs: the CPU's two union-find groups, one of a single threshold)
    gt = _blobs(rng, H, W)
    gt = np.clip((gt.astype(int) - 64) * 2, 0, 255).astype(np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-24, 25, (H, W)), 0, 255).astype(np.uint8)
    return pred, gt, _trimap(rng, gt)


def _check_any_threads(pred, gt, tri, convention):
    """_check (the reference, pixel by pixel) at 1, 2 and 3 threads, and the same bits at each."""
    threads = torch.get_num_threads()
    got = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out = _check(pred, gt, tri, convention)
            got.append((out, metrics.connectivity_levels(pred, gt, tri, convention)))
    finally:
        torch.set_num_threads(threads)
    for out, lv in got[1:]:
        assert torch.equal(lv, got[0][1])
        for k in metrics.METRICS:
            assert torch.equal(out[k], got[0][0][k])


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_noisy_opaque_equals_reference_any_threads(convention):
    # rows over several 64-row chunks and 64-pixel words (W = 128: a run closing at
    # the row's end), batches of 3 (one sample after the other with 2 threads) and 4
    # (a sample per thread): the reference pixel by pixel, the same bits for 1-3 threads
    rng = np.random.default_rng(5)
    for H, W, B in ((150, 203, 3), (131, 128, 4)):
        cases = [_noisy_opaque(rng, H, W) for _ in range(B)]
        _check_any_threads(*(_batch([c[i] for c in cases]) for i in range(3)), convention)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_top_threshold_alone_word_edges(convention):
    # Threshold 1.0 with most of the runs (opaque gt, the prediction 255 or 230 at
    # random: a percolation at 1.0, every other threshold a full row), so it is the
    # one-threshold group whose row pairs come from the 64-pixel bit masks: widths
    # around the word edges; a checkerboard of single opaque pixels starting at (0, 1)
    # (every component one pixel: the tie-break alone picks omega, (0, 1) row-major,
    # (1, 0) column-major); the reference pixel by pixel, the same bits at 1-3 threads
    rng = np.random.default_rng(17)
    cases = []
    for H, W, d in ((70, 63, 0.55), (70, 64, 0.5), (70, 65, 0.6), (41, 130, 0.55), (33, 191, 0.45)):
        pred = np.where(rng.random((H, W)) < d, 255, 230).astype(np.uint8)
        cases.append((pred, np.full((H, W), 255, np.uint8)))
    yy, xx = np.mgrid[0:40, 0:67]
    cases.append((np.where((yy + xx) % 2 == 1, 255, 230).astype(np.uint8), np.full((40, 67), 255, np.uint8)))
    for pred, gt in cases:
        tri = np.full(gt.shape, 128, np.uint8)
        tri[rng.random(gt.shape) < 0.3] = 255
        _check_any_threads(_batch([pred]), _batch([gt]), _batch([tri]), convention)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_top_threshold_alone_blocks_and_seams(convention):
    # The one-threshold group (a percolation at 1.0, as above) is labelled in blocks of
    # the run scan's 64-row chunks, claimed by the threads, each seam between two blocks
    # united by the thread that finishes the second: components across several seams
    # (an opaque column, a full opaque row at a chunk's last row), a chunk with no run
    # at 1.0 (rows 128-191: no seam on either side) and one with a single run; the
    # reference pixel by pixel, the same bits at 1-3 threads
    rng = np.random.default_rng(23)
    H, W = 330, 97
    pred = np.where(rng.random((H, W)) < 0.55, 255, 230).astype(np.uint8)
    pred[:, 40] = 255
    pred[63, :] = 255
    pred[128:192] = 230
    pred[192:256] = 230
    pred[200, 10:20] = 255
    gt = np.full((H, W), 255, np.uint8)
    tri = np.full(gt.shape, 128, np.uint8)
    tri[rng.random(gt.shape) < 0.3] = 255
    _check_any_threads(_batch([pred]), _batch([gt]), _batch([tri]), convention)


_AVX512_SCRIPT = r"""
import sys, numpy as np, torch
from mattingloss import metrics
rng = np.random.default_rng(3)
out = []
for H, W in ((150, 203), (37, 64), (9, 13)):  # whole 16-pixel blocks with a tail, without, none
    gt = rng.integers(0, 256, (2, 1, H, W)).astype(np.uint8)
    gt[:, :, H // 3:] = np.clip(gt[:, :, H // 3:].astype(int) * 4 - 300, 0, 255)  # opaque areas: runs
    pred = np.clip(gt.astype(int) + rng.integers(-24, 25, gt.shape), 0, 255).astype(np.uint8)
    tri = np.where(rng.random(gt.shape) < 0.4, 128, 255).astype(np.uint8)
    p, g, t = torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(tri)
    for n in (1, 2):
        torch.set_num_threads(n)
        for c in metrics.CONVENTIONS:
            args = (p, g, None, c) if c == "p3m" else (p, g, t, c)
            kw = {"region": "all"} if c == "p3m" else {}
            r = metrics.matting_metrics(*args, **kw)
            out.append(torch.stack([r[k] for k in metrics.METRICS]).numpy().tobytes().hex())
            out.append(metrics.connectivity_levels(*args, **kw).numpy().tobytes().hex())
print("\n".join(out))
"""


def test_avx512_paths_same_bits():
    # The AVX-512 blocks (SAD/MSE and connectivity terms of uint8 mattes) are chosen
    # at run time; MATTINGLOSS_NO_AVX512=1 forces the scalar loops: both must give
    # the same bits (on a CPU without AVX-512 both runs take the scalar loops).
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(metrics.__file__)))
    runs = []
    for flag in (None, "1"):
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("MATTINGLOSS_NO_AVX512", None)
        if flag:
            env["MATTINGLOSS_NO_AVX512"] = flag
        proc = subprocess.run([sys.executable, "-c", _AVX512_SCRIPT], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout)
    assert runs[0] == runs[1] and len(runs[0]) > 0


def test_matting_metrics_accumulator():
    rng = np.random.default_rng(2)
    batches = []
    for _ in range(3):
        cases = [_case("blobs", rng, 20, 24) for _ in range(2)]
        batches.append(tuple(_batch([c[i] for c in cases]) for i in range(3)))
    acc = metrics.MattingMetrics("mmagic")
    values = {k: [] for k in metrics.METRICS}
    for p, g, t in batches:
        out = acc.update(p, g, t)
        for k in metrics.METRICS:
            values[k].append(out[k])
    result = acc.compute()
    for k in metrics.METRICS:
        assert result[k] == pytest.approx(float(torch.cat(values[k]).mean()), rel=1e-12)
    acc.reset()
    with pytest.raises(RuntimeError):
        acc.compute()


# ---------------------------------------------------------------- bad input
def test_bad_input():
    p = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    t = torch.full((1, 1, 8, 8), 128, dtype=torch.uint8)
    with pytest.raises(TypeError, match="pred"):
        metrics.matting_metrics(np.zeros((1, 1, 8, 8)), p, t)
    with pytest.raises(TypeError, match="pred"):
        metrics.matting_metrics(p.int(), p, t)
    with pytest.raises(ValueError, match="gt"):
        metrics.matting_metrics(p, torch.zeros(1, 1, 8, 9, dtype=torch.uint8), t)
    with pytest.raises(ValueError, match="pred"):
        metrics.matting_metrics(p[:, :, :0], p[:, :, :0], t[:, :, :0])
    with pytest.raises(ValueError, match="pred"):
        metrics.matting_metrics(p.expand(1, 3, 8, 8), p.expand(1, 3, 8, 8), t)
    with pytest.raises(ValueError, match="trimap"):
        metrics.matting_metrics(p, p, None)
    with pytest.raises(ValueError, match="trimap"):
        metrics.matting_metrics(p, p, t[..., :4])
    with pytest.raises(ValueError, match="trimap"):
        metrics.matting_metrics(p, p, t, region="all")
    with pytest.raises(ValueError, match="region"):
        metrics.matting_metrics(p, p, t, region="unknown")
    with pytest.raises(ValueError, match="convention"):
        metrics.matting_metrics(p, p, t, "matlab")
    with pytest.raises(ValueError, match="scale"):
        metrics.matting_metrics(p, p, t, scale=0)
    with pytest.raises(ValueError, match="unknown_value and unknown_range"):
        metrics.matting_metrics(p, p, t, unknown_value=128, unknown_range=(1, 2))
    with pytest.raises(ValueError, match="convention"):
        metrics.MattingMetrics("aim")
    with pytest.raises(ValueError, match="region"):  # p3m: whole images only
        metrics.matting_metrics(p, p, t, "p3m")


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_opcheck(convention):
    rng = np.random.default_rng(1)
    pred, gt, tri = (_batch([x]) for x in _case("blobs", rng, 12, 10))
    code = metrics.CONVENTIONS[convention]
    region = (tri == 128).to(torch.uint8)
    for dtype in (torch.uint8, torch.float32, torch.float64):
        args = (pred.to(dtype), gt, region, code, 1.0, 1.0, metrics._THRESHOLDS[code], metrics._TAPS, True, True,
                True)
        torch.library.opcheck(torch.ops.mattingloss.matting_metrics.default, args)


def test_matlab_single_threshold_comparison():
    """MATLAB compares single(178.5)/255 (the float32 nearest 0.7, below 0.7) with the
    double 0.7 converted to single: it reaches the 0.7 threshold (Octave agrees), which
    an exact comparison would deny."""
    assert float(np.float32(178.5) / np.float32(255)) < 0.7
    gt = np.full((1, 1, 7, 7), 178.5)
    pred = gt.copy()
    pred[0, 0, 3, 3] = 255.0
    tri = torch.full((1, 1, 7, 7), 128, dtype=torch.uint8)
    p, g = torch.from_numpy(pred), torch.from_numpy(gt)
    lv = metrics.connectivity_levels(p, g, tri, "dim_matlab", scale=255)
    assert int(lv[0, 0, 0, 0]) == 7
    _check(p, g, tri, "dim_matlab", scale=255)


def test_matting_metrics_accumulator_distributed():
    """compute() all-reduces the sums: a one-process gloo group runs that path."""
    import socket

    import torch.distributed as dist
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("torch.distributed unavailable or already initialised")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        rng = np.random.default_rng(4)
        p, g, t = (_batch([x]) for x in _case("blobs", rng, 16, 16))
        acc = metrics.MattingMetrics()
        out = acc.update(p, g, t)
        result = acc.compute()
        for k in metrics.METRICS:
            assert result[k] == pytest.approx(float(out[k][0]), rel=1e-12)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_nan_prediction(convention):
    """A NaN in pred: SAD and MSE are NaN (documented); the other two are computed
    without error (their value is unspecified: check predictions for NaN first)."""
    p = torch.rand(2, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    p[0, 0, 3, 3] = float("nan")
    g = torch.rand(2, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    t = torch.full((2, 1, 20, 20), 128, dtype=torch.uint8)
    out = metrics.matting_metrics(p, g, t, convention)
    assert math.isnan(float(out["sad"][0])) and math.isnan(float(out["mse"][0]))
    assert all(math.isfinite(float(out[k][1])) for k in metrics.METRICS)


# ---------------------------------------------------------------- p3m (JizhiziLi/P3M core/evaluate.py)
def _check_p3m(pred_t, gt_t, *, scale=None, gt_scale=None, threads=(None,)):
    """p3m against R.p3m on the 0..1 arrays P3M reads (uint8 v / 255., floats as they
    are): levels exactly, Gradient to 1e-12 (its per-pixel terms are float32 values
    summed in float64: one float32 ulp off in a term above ~1e-5 of the sum shows)."""
    outs = []
    saved = torch.get_num_threads()
    try:
        for n in threads:
            if n is not None:
                torch.set_num_threads(n)
            out = metrics.matting_metrics(pred_t, gt_t, None, "p3m", scale=scale, gt_scale=gt_scale, region="all")
            lv = metrics.connectivity_levels(pred_t, gt_t, None, "p3m", scale=scale, gt_scale=gt_scale, region="all")
            outs.append((out, lv))
    finally:
        torch.set_num_threads(saved)
    out, lv = outs[0]
    for o, l in outs[1:]:  # the same bits at any thread count
        assert torch.equal(l, lv)
        for k in metrics.METRICS:
            assert torch.equal(o[k], out[k]), k

    def unit(t, s):
        s = s if s is not None else (255.0 if t.dtype == torch.uint8 else 1.0)
        return t.double().numpy() / s

    gs = gt_scale if gt_scale is not None else (scale if gt_t.dtype == pred_t.dtype else None)
    for b in range(pred_t.shape[0]):
        ref = R.p3m(unit(pred_t[b, 0], scale), unit(gt_t[b, 0], gs), with_levels=True)
        np.testing.assert_array_equal(lv[b, 0].numpy(), ref["levels"], err_msg=f"p3m levels, sample {b}")
        for k in metrics.METRICS:
            got, want = float(out[k][b]), ref[k]
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (k, b, got, want)
    return out


def test_p3m_taps_are_scipys():
    """The 13 + 13 weights the op receives are those scipy's gaussian_filter1d
    correlates with (its impulse response, in float64, is the weights exactly,
    reversed: out[y] = sum_j w[j] in[y + j - 6])."""
    from scipy.ndimage import gaussian_filter1d
    impulse = np.zeros(41)
    impulse[20] = 1.0
    for order, taps in ((0, metrics._P3M_TAPS[:13]), (1, metrics._P3M_TAPS[13:])):
        response = gaussian_filter1d(impulse, 1.4, order=order, mode="constant")[14:27]
        np.testing.assert_array_equal(response[::-1], np.asarray(taps))


@pytest.mark.parametrize("kind", ["random", "blobs", "hard", "thin", "holes"])
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (1, 19), (23, 1), (5, 3), (1, 1), (2, 7)])
def test_p3m_equals_reference_uint8(kind, shape):
    rng = np.random.default_rng(hash(("p3m", kind, shape)) % 2 ** 32)
    cases = [_case(kind, rng, *shape) for _ in range(2)]
    pred = _batch([c[0] for c in cases])
    gt = _batch([c[1] for c in cases])
    _check_p3m(pred, gt)


def test_p3m_float_inputs_and_threads():
    rng = np.random.default_rng(6)
    cases = [_noisy_opaque(rng, 70, 131) for _ in range(3)]
    pred8, gt8 = (_batch([c[i] for c in cases]) for i in range(2))
    # floating 0..1, as P3M's network output: soft values between the uint8 levels
    pred = (pred8.double() / 255 + torch.from_numpy(rng.uniform(-0.002, 0.002, pred8.shape))).clamp(0, 1)
    _check_p3m(pred, gt8, threads=(1, 2, 3))  # float64 pred, uint8 gt (P3M's own case)
    _check_p3m(pred.float(), gt8.float() / 255)
    _check_p3m(pred8, gt8, threads=(1, 2))
    # floating 0..255 with scale=255: the uint8 numbers exactly (v / 255 either way)
    a = metrics.matting_metrics(pred8, gt8, None, "p3m", region="all")
    b = metrics.matting_metrics(pred8.double(), gt8.float(), None, "p3m", region="all", scale=255, gt_scale=255)
    for k in metrics.METRICS:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_p3m_levels_few_values():
    for it, (pred, gt) in enumerate(_few_value_mattes(9, 80)):
        lv = metrics.connectivity_levels(_batch([pred]), _batch([gt]), None, "p3m", region="all")
        ref = R.p3m(pred / 255.0, gt / 255.0, with_levels=True)["levels"]
        np.testing.assert_array_equal(lv[0, 0].numpy(), ref, err_msg=f"case {it}")


def test_p3m_empty_threshold_keeps_l_one():
    """P3M skips a threshold with no component (`continue`): the pixels still in every
    largest component up to there keep l = 1, where mmagic gives them the previous
    threshold. Only those pixels change: in the second matte none is left (the
    island leaves omega at 0.1, the rest at 0.3), so p3m's levels are mmagic's."""
    flat = np.full((9, 11), 115, np.uint8)  # 0.45: thresholds 0.1 .. 0.4 reached, 0.5 empty
    p, g = _batch([flat]), _batch([flat])
    assert (metrics.connectivity_levels(p, g, None, "mmagic", region="all") == 4).all()
    assert (metrics.connectivity_levels(p, g, None, "p3m", region="all") == 10).all()
    _check_p3m(p, g)
    pred = flat.copy()
    pred[4, 5] = 160  # 0.627: phi = 1 - (0.627 - l) at mmagic's l = 0.4, 1 at p3m's l = 1
    out = _check_p3m(_batch([pred]), g)
    assert float(out["conn"][0]) == 0.0
    mm = float(metrics.connectivity_error(_batch([pred]), g, None, "mmagic", region="all")[0])
    assert mm == pytest.approx(R.mmagic(pred, flat, np.ones(flat.shape, bool))["conn"], rel=1e-12) and mm > 0
    m = np.zeros((12, 12), np.uint8)
    m[:, :6] = 51  # a wide area at 0.2
    m[2:4, 9:11] = 150  # a small island reaching 0.5 (the last non-empty threshold)
    lv_p3m = metrics.connectivity_levels(_batch([m]), _batch([m]), None, "p3m", region="all")
    lv_mm = metrics.connectivity_levels(_batch([m]), _batch([m]), None, "mmagic", region="all")
    assert torch.equal(lv_p3m, lv_mm) and int(lv_p3m.max()) == 2
    _check_p3m(_batch([m]), _batch([m]))


def test_p3m_scaling_differs():
    """The whole-image formulas: SAD / 1000 and MSE / (H*W) over every pixel, as
    mmagic's on the same whole-image region (its Gradient and Connectivity differ:
    the reference tests above)."""
    rng = np.random.default_rng(12)
    pred, gt = (_batch([x]) for x in _case("blobs", rng, 40, 50)[:2])
    a = metrics.matting_metrics(pred, gt, None, "p3m", region="all")
    b = metrics.matting_metrics(pred, gt, None, "mmagic", region="all")
    assert float(a["sad"][0]) == pytest.approx(float(b["sad"][0]), rel=1e-12)
    assert float(a["mse"][0]) == pytest.approx(float(b["mse"][0]), rel=1e-12)


def test_p3m_opcheck():
    rng = np.random.default_rng(1)
    pred, gt, _ = (_batch([x]) for x in _case("blobs", rng, 12, 10))
    region = torch.ones_like(pred)
    code = metrics.CONVENTIONS["p3m"]
    for dtype in (torch.uint8, torch.float32, torch.float64):
        args = (pred.to(dtype), gt, region, code, 1.0, 1.0, metrics._THRESHOLDS[code], metrics._P3M_TAPS, True,
                True, True)
        torch.library.opcheck(torch.ops.mattingloss.matting_metrics.default, args)
    with pytest.raises(RuntimeError, match="taps"):  # the 9 + 9 taps of the other conventions
        torch.ops.mattingloss.matting_metrics(pred, gt, region, code, 1.0, 1.0, metrics._THRESHOLDS[code],
                                              metrics._TAPS, True, True, False)


# ---------------------------------------------------------------- CUDA: the same call on the CPU
# The CUDA kernel runs the per-pixel math of csrc/metrics.h, as the CPU kernel does, so
# each test below compares a CUDA call with the same call on the CPU: Connectivity's
# levels and the region's pixel count exactly, every per-pixel term bit for bit (regions
# of one pixel: a sum of one term is that term), the sums to their summation order
# (the CPU adds a row in 16 fixed lanes, CUDA over 128 threads and a block reduction).
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ALL_CONVENTIONS = CONVENTIONS + ["p3m"]
GPU = "cuda"  # the device under test (a CPU dry run of these tests sets "cpu")


def _sums_on(device, pred, gt, trimap, convention, **kw):
    """(sums (B, 7) float64, levels (B, 1, H, W) uint8) of one call on `device`, on the CPU."""
    sums, lv = metrics._sums(pred.to(device), gt.to(device), None if trimap is None else trimap.to(device),
                             convention=convention, scale=kw.get("scale"), gt_scale=kw.get("gt_scale"),
                             region=kw.get("region", "trimap" if trimap is not None else "all"),
                             unknown_value=kw.get("unknown_value"), unknown_range=kw.get("unknown_range"),
                             gradient=kw.get("gradient", True), connectivity=kw.get("connectivity", True),
                             levels=True)
    return sums.cpu(), lv.cpu()


def _assert_cuda_as_cpu(pred, gt, trimap, convention, *, exact=(), **kw):
    """The CUDA call against the CPU call: levels and count exactly, the columns in
    `exact` bit for bit, every sum to 1e-12 relative (NaN where the CPU has NaN), and
    the public dict of matting_metrics likewise."""
    s_cpu, lv_cpu = _sums_on("cpu", pred, gt, trimap, convention, **kw)
    s_gpu, lv_gpu = _sums_on(GPU, pred, gt, trimap, convention, **kw)
    assert lv_gpu.shape == lv_cpu.shape and lv_gpu.dtype == torch.uint8
    assert torch.equal(lv_gpu, lv_cpu), f"{convention}: levels differ at {int((lv_gpu != lv_cpu).sum())} pixels"
    assert torch.equal(s_gpu[:, metrics._COUNT], s_cpu[:, metrics._COUNT])
    for j in exact:
        assert torch.equal(s_gpu[:, j], s_cpu[:, j]), (convention, j, s_gpu[:, j], s_cpu[:, j])
    torch.testing.assert_close(s_gpu, s_cpu, rtol=1e-12, atol=1e-300, equal_nan=True)
    opts = {k: v for k, v in kw.items() if k not in ("gradient", "connectivity")}
    if trimap is None:
        opts["region"] = "all"
    on_cpu = metrics.matting_metrics(pred, gt, trimap, convention, **opts)
    on_gpu = metrics.matting_metrics(pred.to(GPU), gt.to(GPU), None if trimap is None else trimap.to(GPU), convention,
                                     **opts)
    for k in metrics.METRICS:
        assert on_gpu[k].device.type == GPU and on_gpu[k].dtype == torch.float64
        torch.testing.assert_close(on_gpu[k].cpu(), on_cpu[k], rtol=1e-12, atol=1e-300, equal_nan=True)
    return s_gpu, lv_gpu


def _inputs(kind, shape, batch, seed, convention):
    rng = np.random.default_rng(seed)
    cases = [_case(kind, rng, *shape) for _ in range(batch)]
    pred, gt, tri = (_batch([c[i] for c in cases]) for i in range(3))
    return pred, gt, (None if convention == "p3m" else tri)


@cuda
@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
@pytest.mark.parametrize("kind", ["random", "blobs", "hard", "thin", "holes"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 19), (23, 1), (5, 3), (37, 53), (64, 64)])
def test_cuda_equals_cpu_uint8(convention, kind, shape):
    pred, gt, tri = _inputs(kind, shape, 3, zlib.crc32(repr((kind, shape)).encode()), convention)
    # MATLAB's per-pixel SAD terms sum exactly in any order (test_equals_reference_uint8)
    _assert_cuda_as_cpu(pred, gt, tri, convention, exact=(metrics._SAD_REGION,) if convention == "dim_matlab" else ())


@cuda
@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
def test_cuda_float_and_mixed_inputs(convention):
    rng = np.random.default_rng(21)
    pred8, gt8, tri = _inputs("blobs", (41, 29), 2, 21, convention)
    soft = (pred8.double() / 255 + torch.from_numpy(rng.uniform(-0.002, 0.002, pred8.shape))).clamp(0, 1)
    _assert_cuda_as_cpu(soft.float(), gt8.float() / 255, tri, convention)  # float32 0..1
    _assert_cuda_as_cpu(soft, gt8, tri, convention)  # float64 pred, uint8 gt
    _assert_cuda_as_cpu(soft.half(), gt8, tri, convention)  # float16 (read as float32)
    _assert_cuda_as_cpu(pred8.double(), gt8.float(), tri, convention, scale=255, gt_scale=255)  # floating 0..255
    _assert_cuda_as_cpu(pred8, gt8, tri, convention, scale=200)  # no fully opaque pixel


@cuda
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_cuda_region_all_range_and_empty(convention):
    pred, gt, tri = _inputs("blobs", (30, 31), 2, 7, convention)
    _assert_cuda_as_cpu(pred, gt, None, convention, region="all")
    _assert_cuda_as_cpu(pred, gt, tri.float() / 255, convention, unknown_range=(0.3, 0.7))
    none = torch.zeros_like(tri)  # no unknown pixel: MSE NaN (dim_matlab, rvm) or 0, the rest 0
    s, _ = _assert_cuda_as_cpu(pred, gt, none, convention)
    assert float(s[:, metrics._COUNT].sum()) == 0.0
    one = torch.zeros_like(tri)
    one[0, 0, 5, 7] = 128  # sample 0: one unknown pixel; sample 1: none
    _assert_cuda_as_cpu(pred, gt, one, convention)


@cuda
@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_cuda_per_pixel_terms_bitwise(convention, dtype):
    """Each sample of a batch of one image pair has a region of one pixel (corners,
    edges, interior): its region sums are that pixel's SAD, squared-error, gradient
    and connectivity terms, which both backends compute with csrc/metrics.h, rounding
    each product on its own (no FMA contraction on the device): bit for bit. The
    raw op takes any region (p3m's public API takes whole images only)."""
    H, W = 29, 37
    rng = np.random.default_rng(13)
    pred8, gt8 = _noisy_opaque(rng, H, W)[:2]
    spots = [(0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1), (0, 17), (H - 1, 3), (11, 0), (5, W - 1), (1, 1),
             (3, 4), (14, 18), (20, 30), (H - 2, W - 2), (7, 29), (22, 9), (12, 12)]
    B = len(spots)
    pred = torch.from_numpy(pred8).expand(B, 1, H, W).contiguous()
    gt = torch.from_numpy(gt8).expand(B, 1, H, W).contiguous()
    if dtype != torch.uint8:  # 0..1 floats between the uint8 levels (scale 1: factor 255)
        noise = torch.from_numpy(rng.uniform(-0.002, 0.002, (1, 1, H, W))).expand(B, 1, H, W)
        pred = (pred.double() / 255 + noise).clamp(0, 1).to(dtype)
        gt = (gt.double() / 255).to(dtype)
    region = torch.zeros(B, 1, H, W, dtype=torch.uint8)
    for b, (y, x) in enumerate(spots):
        region[b, 0, y, x] = 1
    code = metrics.CONVENTIONS[convention]
    f = 255.0 if dtype != torch.uint8 else 1.0
    taps = metrics._P3M_TAPS if convention == "p3m" else metrics._TAPS
    args = (code, f, f, metrics._THRESHOLDS[code], taps, True, True, True)
    s_cpu, lv_cpu = torch.ops.mattingloss.matting_metrics(pred, gt, region, *args)
    s_gpu, lv_gpu = torch.ops.mattingloss.matting_metrics(pred.to(GPU), gt.to(GPU), region.to(GPU), *args)
    assert torch.equal(lv_gpu.cpu(), lv_cpu)
    for j in (metrics._SAD_REGION, metrics._SQ_REGION, metrics._COUNT, metrics._GRAD, metrics._CONN):
        assert torch.equal(s_gpu[:, j].cpu(), s_cpu[:, j]), (convention, dtype, j, s_gpu[:, j].cpu(), s_cpu[:, j])
    assert (s_cpu[:, metrics._GRAD] > 0).sum() >= B // 2  # the filter is exercised, not all zeros
    torch.testing.assert_close(s_gpu.cpu(), s_cpu, rtol=1e-12, atol=1e-300)


@cuda
def test_cuda_each_metric_alone():
    """sad/mse (no filter, no labelling: the scratch without the Connectivity planes),
    gradient_error, connectivity_error: each a different launch sequence."""
    pred, gt, tri = _inputs("blobs", (33, 47), 3, 17, "mmagic")
    for convention in ALL_CONVENTIONS:
        t = None if convention == "p3m" else tri
        kw = {"region": "all"} if convention == "p3m" else {}
        for fn in (metrics.sad, metrics.mse, metrics.gradient_error, metrics.connectivity_error):
            a = fn(pred, gt, t, convention, **kw)
            b = fn(pred.to(GPU), gt.to(GPU), None if t is None else t.to(GPU), convention, **kw)
            torch.testing.assert_close(b.cpu(), a, rtol=1e-12, atol=1e-300, equal_nan=True)
        for flags in ((True, False), (False, True), (False, False)):
            _assert_cuda_as_cpu(pred, gt, t, convention, gradient=flags[0], connectivity=flags[1], **kw)


def _snake(H, W):
    """A 1-pixel-wide serpentine path through the whole image (one component of about
    H*W/2 pixels whose ends are far apart in index), the rest 0."""
    m = np.zeros((H, W), np.uint8)
    m[::2, :] = 255
    for y in range(1, H, 2):
        m[y, W - 1 if (y // 2) % 2 == 0 else 0] = 255
    return m


def _spiral(n):
    """A square spiral path inwards from the top-left corner, 1 pixel wide with 1-pixel
    gaps between its turns: one component whose pixel order follows no scan order."""
    m = np.zeros((n, n), np.uint8)
    y = x = 0
    m[0, 0] = 255
    lengths = [n - 1] * 3 + [v for v in range(n - 3, 0, -2) for _ in range(2)]
    for step, length in enumerate(lengths):
        dy, dx = ((0, 1), (1, 0), (0, -1), (-1, 0))[step % 4]
        for _ in range(length):
            y, x = y + dy, x + dx
            m[y, x] = 255
    return m


@cuda
@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
def test_cuda_long_thin_components(convention):
    """Long 1-pixel paths (a snake across the image, a spiral; union-find trees as deep
    as they get) and equal-size components (ties): the CPU's levels exactly."""
    snake = _snake(255, 301)
    spiral = _spiral(201)
    ties = np.zeros((64, 64), np.uint8)
    ties[2:10, 40:48] = 255  # two 8x8 squares: row-major and column-major firsts differ
    ties[40:48, 2:10] = 255
    ties[20:24, 20:36] = 153  # a 4x16 bar at 0.6 (MATLAB and rvm reach 0.6, numpy's 0.6000000000000001 not)
    for gt in (snake, spiral, ties):
        rng = np.random.default_rng(int(gt.sum()) % 2 ** 32)
        pred = gt.copy()
        pred[rng.random(gt.shape) < 0.002] = 0  # cut the paths in a few places
        p, g = _batch([pred, gt]), _batch([gt, gt])
        tri = None if convention == "p3m" else torch.full(p.shape, 128, dtype=torch.uint8)
        _assert_cuda_as_cpu(p, g, tri, convention)


@cuda
def test_cuda_snake_2048():
    """A deep case for the labelling: one snake across 2048 x 2048, cut in a few places
    (Connectivity only, the levels exactly). Its time shows in pytest --durations (the
    GPU check passes it): the union-find walks its trees without compressing them."""
    gt = _snake(2048, 2048)
    pred = gt.copy()
    pred[np.random.default_rng(0).random(gt.shape) < 1e-4] = 0
    p, g = _batch([pred]), _batch([gt])
    tri = torch.full(p.shape, 128, dtype=torch.uint8)
    _, lv_gpu = _sums_on(GPU, p, g, tri, "dim_matlab", gradient=False)
    _, lv_cpu = _sums_on("cpu", p, g, tri, "dim_matlab", gradient=False)
    assert torch.equal(lv_gpu, lv_cpu)


@cuda
def test_cuda_batch_beyond_grid_y_limit():
    """More samples than a grid's y dimension takes (65535): the row kernel's 1-D grid."""
    B = 65537
    g = torch.Generator().manual_seed(3)
    pred = torch.randint(0, 256, (B, 1, 1, 2), generator=g, dtype=torch.uint8)
    gt = torch.randint(0, 256, (B, 1, 1, 2), generator=g, dtype=torch.uint8)
    tri = torch.tensor([0, 128, 255], dtype=torch.uint8)[torch.randint(0, 3, (B, 1, 1, 2), generator=g)]
    # one or two pixels a sample: two terms add alike in any order, so every sum is exact
    s_cpu, lv_cpu = _sums_on("cpu", pred, gt, tri, "gca")
    s_gpu, lv_gpu = _sums_on(GPU, pred, gt, tri, "gca")
    assert torch.equal(lv_gpu, lv_cpu)
    assert torch.equal(s_gpu, s_cpu)


@cuda
@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
def test_cuda_deterministic_and_any_stream(convention):
    """Bitwise the same call after call (integer atomics only, fixed reductions), and on
    a side stream as on the default one."""
    pred, gt, tri = _inputs("blobs", (150, 203), 3, 23, convention)
    first = _sums_on(GPU, pred, gt, tri, convention)
    for _ in range(3):
        again = _sums_on(GPU, pred, gt, tri, convention)
        assert torch.equal(again[0].view(torch.int64), first[0].view(torch.int64)) and torch.equal(again[1], first[1])
    p, g = pred.to(GPU), gt.to(GPU)
    t = None if tri is None else tri.to(GPU)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = metrics._sums(p, g, t, convention=convention, scale=None, gt_scale=None,
                            region="trimap" if t is not None else "all", unknown_value=None, unknown_range=None,
                            gradient=True, connectivity=True, levels=True)
    side.synchronize()
    assert torch.equal(out[0].cpu().view(torch.int64), first[0].view(torch.int64))
    assert torch.equal(out[1].cpu(), first[1])


@cuda
@pytest.mark.parametrize("convention", ALL_CONVENTIONS)
def test_cuda_nan_prediction(convention):
    """A NaN in pred (test_nan_prediction): that sample's SAD and MSE NaN, the call
    finishes, and the other sample is the CPU's."""
    p = torch.rand(2, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    p[0, 0, 3, 3] = float("nan")
    g = torch.rand(2, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    t = None if convention == "p3m" else torch.full((2, 1, 20, 20), 128, dtype=torch.uint8)
    kw = {"region": "all"} if convention == "p3m" else {}
    on_gpu = metrics.matting_metrics(p.to(GPU), g.to(GPU), None if t is None else t.to(GPU), convention, **kw)
    on_cpu = metrics.matting_metrics(p, g, t, convention, **kw)
    assert math.isnan(float(on_gpu["sad"][0])) and math.isnan(float(on_gpu["mse"][0]))
    for k in metrics.METRICS:
        torch.testing.assert_close(on_gpu[k][1:].cpu(), on_cpu[k][1:], rtol=1e-12, atol=1e-300)


@cuda
def test_cuda_opcheck():
    rng = np.random.default_rng(1)
    pred, gt, tri = (_batch([x]).to(GPU) for x in _case("blobs", rng, 12, 10))
    region = (tri == 128).to(torch.uint8)
    for convention in ALL_CONVENTIONS:
        code = metrics.CONVENTIONS[convention]
        taps = metrics._P3M_TAPS if convention == "p3m" else metrics._TAPS
        for dtype in (torch.uint8, torch.float32, torch.float64):
            args = (pred.to(dtype), gt, region, code, 1.0, 1.0, metrics._THRESHOLDS[code], taps, True, True, True)
            torch.library.opcheck(torch.ops.mattingloss.matting_metrics.default, args)


@cuda
def test_cuda_accumulator_no_host_sync():
    """MattingMetrics.update keeps its sums on the device without waiting for it
    (docs/metrics.md): no synchronising call under torch's sync debug mode."""
    pred, gt, tri = (t.to(GPU) for t in _inputs("blobs", (20, 24), 2, 2, "mmagic"))
    acc = metrics.MattingMetrics("mmagic")
    acc.update(pred, gt, tri)  # first call: allocations, lazy initialisation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        acc.update(pred, gt, tri)
        metrics.matting_metrics(pred, gt, None, "p3m", region="all")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    result = acc.compute()
    one = metrics.matting_metrics(pred.cpu(), gt.cpu(), tri.cpu(), "mmagic")
    for k in metrics.METRICS:
        assert result[k] == pytest.approx(float(one[k].mean()), rel=1e-12)


@cuda
def test_cuda_graph_capture():
    """No host synchronisation and no host-side allocation outside the caching
    allocator: the call captures into a CUDA graph and replays to the eager bits."""
    pred, gt, tri = (t.to(GPU) for t in _inputs("holes", (40, 52), 2, 31, "dim_matlab"))
    eager = metrics.matting_metrics(pred, gt, tri)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs advises
        metrics.matting_metrics(pred, gt, tri)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = metrics.matting_metrics(pred, gt, tri)
    graph.replay()
    torch.cuda.synchronize()
    for k in metrics.METRICS:
        assert torch.equal(captured[k].view(torch.int64), eager[k].view(torch.int64)), k
