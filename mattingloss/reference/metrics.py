"""References of the matting evaluation metrics (SAD, MSE, Gradient, Connectivity)
as each code base computes them: the oracles of :mod:`mattingloss.metrics`.

Our own code, in float64 numpy (float32 where the source computes in single
precision), computing what each source computes. One image at a time: ``pred``
and ``gt`` are (H, W) arrays of alpha values on the 0..255 scale (uint8 mattes as
read from disk, or any floating values), ``region`` the (H, W) boolean mask of the
pixels counted (``trimap == 128`` in every source).

* :func:`dim_matlab`: Ning Xu's evaluation code for Deep Image Matting, as copied in
  Yaoyi-Li/GCA-Matting ``DIM_evaluation_code/`` (compute_sad_loss.m,
  compute_mse_loss.m, compute_gradient_loss.m + gaussgradient.m,
  compute_connectivity_error.m; the scaling of evaluate.m: SAD/1000 inside
  compute_sad_loss, Gradient and Connectivity /1000 in evaluate.m, MSE as is).
* :func:`mmagic`: open-mmlab/mmagic ``mmagic/evaluation/metrics/``: ``SAD.process``
  (sad.py), ``MattingMSE.process`` (matting_mse.py), ``GradientError.process``
  (gradient_error.py, with ``gauss_gradient`` of
  ``mmagic/evaluation/functional/gaussian_funcs.py``) and
  ``ConnectivityError.process`` (connectivity_error.py), with the /255 of
  ``metrics_utils._fetch_data_and_check``.
* :func:`gca`: Yaoyi-Li/GCA-Matting ``utils/evaluate.py``: ``comput_sad_loss``,
  ``compute_mse_loss``, ``compute_gradient_loss`` (its ``gaussgradient``) and
  ``compute_connectivity_error`` (its ``getLargestCC``).
* :func:`rvm`: PeterL1n/RobustVideoMatting ``evaluation/evaluate_lr.py``:
  ``MetricMAD``, ``MetricMSE``, ``MetricGRAD`` and ``MetricCONN`` on the float32
  frames ``cv2.imread(...).astype(np.float32) / 255`` that ``Evaluator.evaluate_worker``
  reads (whole frames: no trimap).
* :func:`p3m`: JizhiziLi/P3M ``core/evaluate.py``: ``calculate_sad_mse_mad_whole_img``,
  ``compute_gradient_whole_image`` and ``compute_connectivity_loss_whole_image``, on
  the float64 0..1 arrays of ``core/test.py`` (``alpha = np.array(Image.open(...)) / 255.``;
  the prediction is taken as float64 0..1 too). Whole images: no trimap. Its
  inputs are 0..1, not 0..255 (see the function).

Where a source's numbers depend on a detail, it is reproduced as it is:

* MATLAB casts to ``single`` (SAD, MSE, the gradient magnitudes and the whole of
  Connectivity run in float32); the per-pixel values here are those float32
  values. MATLAB's ``sum`` of singles runs in an order we cannot reproduce: the
  per-pixel float32 values are summed in float64 (their order then changes the
  sum by ~1e-16 relative; MATLAB's own single-precision sum differs from it by
  up to ~1e-6 relative).
* MATLAB's ``0:0.1:1`` (the colon operator computes the first half as ``k*0.1``
  and the second half as ``1 - (10-k)*0.1``: 0.6 is the double nearest 0.6) vs
  ``np.arange(0, 1.1, 0.1)`` (``k*0.1``: 0.6000000000000001, 0.7000000000000001), so
  in mmagic and GCA alpha = 153 (153/255 == 0.6) misses the 0.6 threshold.
* Mixed single/double comparisons (``pred >= thresh_steps(ii)``, ``pred_d >= 0.15``)
  convert the double to single, as MATLAB does (and Octave: ``single(0.1) == 0.1``
  is true there). For uint8 mattes no alpha lies between a threshold's double and
  single values, so this only matters for floating mattes.
* The largest component at each threshold: ``bwconncomp(., 4)`` then ``max`` (the
  first of equal sizes; bwconncomp numbers components in MATLAB's column-major
  scan order, so a tie goes to the component whose first pixel in column-major
  order comes first); OpenCV's ``connectedComponentsWithStats(., connectivity=4)``
  then ``argmax`` of the sizes (row-major first pixel wins a tie); GCA's
  ``label(., connectivity=1)`` then ``argmax(bincount(labels))``, which counts the
  background (label 0) as a component: when it is the largest (or tied),
  ``omega`` is the background (a known divergence, reproduced as it is).
* ``mat2gray`` (MATLAB) vs ``cv2.normalize(NORM_MINMAX)`` (mmagic, of the /255
  values) vs plain /255 (GCA) before the derivative-of-Gaussian filter. A
  constant image has gradient 0 in every convention.
* mmagic's SAD and MSE numerators run over the whole image (its inputs are
  assumed masked by the trimap); MSE is divided by the unknown-pixel count (0
  when there is none). MATLAB divides by that count (NaN when 0); GCA by count + 1e-8.
* MATLAB computes (and discards) a distance transform per threshold: not done here.
* RVM's arrays are float32: the alphas single(v)/255, |e| and e^2, the
  thresholds compared in float32 (numpy < 1.24, which its ``np.int`` needs, casts
  the float64 threshold to the float32 array's type: alpha 153 reaches 0.6 there,
  as in MATLAB), its ``round_down_map`` of float32 thresholds and phi. Its
  MAD/MSE are means x 1e3 and the per-pixel float32 values are summed here in
  float64 (numpy's float32 pairwise sums differ by ~1e-7 relative). Its
  ``MetricGRAD`` normalises with ``cv2.normalize`` and filters with ``cv2.filter2D``
  in float32; here the same formulas run in float64 on the float32 alphas (the
  source's float32 rounding is ~1e-6 relative apart).
"""
from __future__ import annotations

import math

import numpy as np

SIGMA = 1.4
EPSILON = 1e-2
LEVELS = 11  # thresholds 0, 0.1, ..., 1


def matlab_colon(a: float, step: float, b: float) -> list:
    """MATLAB's ``a:step:b`` as MATLAB computes it (the symmetric colon algorithm:
    the first half ``a + k*step``, the second half ``b - (n-k)*step``, an odd
    count's middle element ``(a+b)/2``)."""
    n = int(math.floor((b - a) / step + 1e-10))
    out = []
    for k in range(n + 1):
        if 2 * k < n:
            out.append(a + k * step)
        elif 2 * k == n:
            out.append((a + b) / 2)
        else:
            out.append(b - (n - k) * step)
    return out


MATLAB_THRESHOLDS = matlab_colon(0.0, 0.1, 1.0)
NUMPY_THRESHOLDS = [float(t) for t in np.arange(0, 1 + 0.1, 0.1)]


def _gauss(x, sigma):
    return np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * np.sqrt(2 * np.pi))


def _dgauss(x, sigma):
    return -x * _gauss(x, sigma) / sigma ** 2


def gauss_filter_2d(sigma: float = SIGMA, epsilon: float = EPSILON) -> np.ndarray:
    """gaussgradient.m's hx (rows: Gaussian, columns: its derivative), normalised to
    unit L2 norm; half-size ceil(sigma*sqrt(-2*log(sqrt(2*pi)*sigma*epsilon))) = 4."""
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    hx = _gauss(u, sigma)[:, None] * _dgauss(u, sigma)[None, :]
    return hx / np.sqrt(np.sum(np.abs(hx) * np.abs(hx)))


def separable_taps(sigma: float = SIGMA, epsilon: float = EPSILON) -> tuple:
    """The same filter as two 1-D factors of unit norm (hx = outer(g, d)): what our
    kernels apply (a column pass, then a row pass)."""
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g, d = _gauss(u, sigma), _dgauss(u, sigma)
    return g / np.sqrt(np.sum(g * g)), d / np.sqrt(np.sum(d * d))


def _filter(img: np.ndarray, kernel: np.ndarray, flip: bool) -> np.ndarray:
    """2-D filtering with replicated borders. flip: convolution, as MATLAB's imfilter(...,
    'replicate', 'conv') and GCA's scipy.ndimage.convolve(mode='nearest'); else
    correlation, as mmagic's and RVM's cv2.filter2D(..., BORDER_REPLICATE), run here by
    that same function (the same bits as mmagic's gauss_gradient, and 3x faster than
    scipy's correlate: the benchmark's contender should cost what their code costs).
    Only the sign of the result depends on flip (the filters are odd in one axis and
    even in the other)."""
    if not flip:
        import cv2
        return cv2.filter2D(img.astype(np.float64), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    import scipy.ndimage
    return scipy.ndimage.convolve(img.astype(np.float64), kernel, mode="nearest")


def _magnitude(img: np.ndarray, flip: bool) -> np.ndarray:
    hx = gauss_filter_2d()
    gx = _filter(img, hx, flip)
    gy = _filter(img, hx.T, flip)
    return np.sqrt(gx ** 2 + gy ** 2)


def mat2gray(a: np.ndarray) -> np.ndarray:
    """MATLAB's mat2gray(A): (A - min) / (max - min) as imlincomb computes it
    (A * (1/delta) + (-min/delta)), clipped to [0, 1]; a constant A is only clipped."""
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi == lo:
        return np.clip(a, 0.0, 1.0)
    delta = hi - lo
    return np.clip(a * (1.0 / delta) + (-lo / delta), 0.0, 1.0)


def cv2_minmax(a: np.ndarray) -> np.ndarray:
    """cv2.normalize(a, dst, 1.0, 0.0, cv2.NORM_MINMAX) for a float64 array:
    scale = 1/(max-min) (0 when max - min <= DBL_EPSILON), shift = -min*scale,
    dst = a*scale + shift."""
    lo, hi = float(a.min()), float(a.max())
    scale = 1.0 / (hi - lo) if hi - lo > np.finfo(np.float64).eps else 0.0
    shift = 0.0 - lo * scale
    return a * scale + shift


# ------------------------------------------------------------------ connected components
def _components(mask: np.ndarray):
    """4-connected components of mask: (labels (H, W) int, sizes[k], first row-major
    index[k], first column-major index[k]) for labels 1..K (OpenCV numbering)."""
    import cv2
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    if count <= 1:
        return labels, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count)[1:]
    first_row = np.full(count, flat.size, np.int64)
    np.minimum.at(first_row, flat, np.arange(flat.size))
    colmajor = labels.T.ravel()
    first_col = np.full(count, flat.size, np.int64)
    np.minimum.at(first_col, colmajor, np.arange(flat.size))
    return labels, sizes, first_row[1:], first_col[1:]


def largest_component_matlab(mask: np.ndarray) -> np.ndarray:
    """omega of compute_connectivity_error.m: the largest 4-connected component of
    bwconncomp (the first in column-major order among equal sizes); none if empty."""
    labels, sizes, _, first_col = _components(mask)
    if sizes.size == 0:
        return np.zeros(mask.shape, bool)
    best = min(range(sizes.size), key=lambda k: (-sizes[k], first_col[k]))
    return labels == best + 1


def largest_component_opencv(mask: np.ndarray) -> np.ndarray:
    """omega of mmagic's ConnectivityError.process: cv2.connectedComponentsWithStats
    (connectivity=4), argmax of the foreground sizes (stats[1:, -1]); none if empty."""
    import cv2
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    size = stats[1:, -1]
    if len(size) == 0:
        return np.zeros(mask.shape, bool)
    return labels == np.argmax(size) + 1


def largest_component_gca(mask: np.ndarray) -> np.ndarray:
    """GCA's getLargestCC: skimage label(connectivity=1), argmax of bincount over all
    labels, background (label 0) included."""
    from skimage.measure import label
    labels = label(mask.astype(np.int64), connectivity=1)
    return labels == np.argmax(np.bincount(labels.flat))


# ------------------------------------------------------------------ conventions
def _result(sad, mse, grad, conn, levels=None) -> dict:
    """A convention's four numbers, and each pixel's connectivity level when asked for."""
    out = {"sad": sad, "mse": mse, "grad": grad, "conn": conn}
    if levels is not None:
        out["levels"] = levels
    return out


def dim_matlab(pred, gt, region, *, with_levels=False) -> dict:
    """Ning Xu's DIM MATLAB evaluation code (see the module docstring)."""
    a_p = np.asarray(pred, np.float64)
    a_g = np.asarray(gt, np.float64)
    region = np.asarray(region, bool)
    p32, g32 = a_p.astype(np.float32), a_g.astype(np.float32)
    f255 = np.float32(255)
    # compute_sad_loss.m: abs(single(pred)-single(target))/255, summed, /1000.
    e = np.abs(p32 - g32) / f255
    sad = float(np.sum(e[region], dtype=np.float64)) / 1000
    # compute_mse_loss.m: ((single(pred)-single(target))/255).^2, summed, / count.
    d = (p32 - g32) / f255
    sq = d * d
    count = int(region.sum())
    num = float(np.sum(sq[region], dtype=np.float64))
    mse = num / count if count else float("nan")
    # compute_gradient_loss.m: mat2gray, gaussgradient (imfilter replicate conv),
    # magnitudes in double, cast to single, squared difference in single.
    amp_p = _magnitude(mat2gray(a_p), flip=True).astype(np.float32)
    amp_g = _magnitude(mat2gray(a_g), flip=True).astype(np.float32)
    err = (amp_p - amp_g) ** 2
    grad = float(np.sum(err[region], dtype=np.float64)) / 1000
    # compute_connectivity_error.m, in single precision.
    p, g = p32 / f255, g32 / f255
    levels = _levels(p, g, MATLAB_THRESHOLDS, largest_component_matlab, single=True)
    lmap = np.asarray(MATLAB_THRESHOLDS)[levels]  # double, as l_map
    pd = p - lmap.astype(np.float32)  # single - double -> single
    gd = g - lmap.astype(np.float32)
    pphi = np.float32(1) - pd * (pd >= np.float32(0.15)).astype(np.float32)
    gphi = np.float32(1) - gd * (gd >= np.float32(0.15)).astype(np.float32)
    conn = float(np.sum(np.abs(pphi - gphi)[region], dtype=np.float64)) / 1000
    return _result(sad, mse, grad, conn, levels if with_levels else None)


def _levels(p, g, thresholds, largest, single=False) -> np.ndarray:
    """The index k of l = thresholds[k] per pixel: the threshold before the first
    one (from the second on) at which the pixel is outside the largest component,
    10 (l = 1) if it never is. single: compared in float32 (MATLAB's single pred
    against a double threshold)."""
    levels = np.full(p.shape, -1, np.int64)
    for i in range(1, len(thresholds)):
        t = np.float32(thresholds[i]) if single else thresholds[i]
        omega = largest((p >= t) & (g >= t))
        levels[(levels == -1) & ~omega] = i - 1
    levels[levels == -1] = len(thresholds) - 1
    return levels


def _connectivity_f64(p, g, region, thresholds, largest):
    levels = _levels(p, g, thresholds, largest)
    lmap = np.asarray(thresholds)[levels]
    pd, gd = p - lmap, g - lmap
    pphi = 1 - pd * (pd >= 0.15)
    gphi = 1 - gd * (gd >= 0.15)
    return float(np.sum(np.abs(pphi - gphi) * region)) / 1000, levels


def mmagic(pred, gt, region, *, with_levels=False) -> dict:
    """open-mmlab/mmagic's SAD, MattingMSE, GradientError, ConnectivityError (module docstring)."""
    p = np.asarray(pred, np.float64) / 255.0
    g = np.asarray(gt, np.float64) / 255.0
    region = np.asarray(region, bool)
    sad = float(np.abs(p - g).sum()) / 1000  # whole image
    count = int(region.sum())
    mse = float(((p - g) ** 2).sum()) / count if count != 0 else 0.0
    grad_p = _magnitude(cv2_minmax(p), flip=False)
    grad_g = _magnitude(cv2_minmax(g), flip=False)
    grad = float(((grad_g - grad_p) ** 2 * region).sum()) / 1000
    conn, levels = _connectivity_f64(p, g, region, NUMPY_THRESHOLDS, largest_component_opencv)
    return _result(sad, mse, grad, conn, levels if with_levels else None)


def mmagic_connectivity(pred, gt, region) -> float:
    """mmagic's ConnectivityError alone (what :func:`mmagic` computes as "conn")."""
    p = np.asarray(pred, np.float64) / 255.0
    g = np.asarray(gt, np.float64) / 255.0
    return _connectivity_f64(p, g, np.asarray(region, bool), NUMPY_THRESHOLDS, largest_component_opencv)[0]


def gca(pred, gt, region, *, with_levels=False) -> dict:
    """Yaoyi-Li/GCA-Matting utils/evaluate.py (module docstring)."""
    a_p = np.asarray(pred, np.float64)
    a_g = np.asarray(gt, np.float64)
    region = np.asarray(region, bool)
    e = (a_p - a_g) / 255.0
    sad = float(np.sum(np.abs(e) * region)) / 1000
    mse = float(np.sum((e ** 2) * region)) / (float(np.sum(region)) + 1e-8)
    p, g = a_p / 255.0, a_g / 255.0
    err = (_magnitude(p, flip=True) - _magnitude(g, flip=True)) ** 2
    grad = float(np.sum(err[region])) / 1000
    conn, levels = _connectivity_f64(p, g, region, NUMPY_THRESHOLDS, largest_component_gca)
    return _result(sad, mse, grad, conn, levels if with_levels else None)


def rvm(pred, gt, region, *, with_levels=False) -> dict:
    """PeterL1n/RobustVideoMatting evaluation/evaluate_lr.py (module docstring). Its
    evaluation is of whole frames: pass an all-True region. ``sad`` holds its
    ``pha_mad`` (mean |e| x 1e3), ``mse`` its ``pha_mse`` (mean e^2 x 1e3)."""
    f255 = np.float32(255)
    p = np.asarray(pred, np.float64).astype(np.float32) / f255  # Evaluator: .astype(np.float32) / 255
    g = np.asarray(gt, np.float64).astype(np.float32) / f255
    region = np.asarray(region, bool)
    count = int(region.sum())
    e = p - g
    # MetricMAD: np.abs(pred - true).mean() * 1e3; MetricMSE: ((pred - true) ** 2).mean() * 1e3
    mad = float(np.sum(np.abs(e)[region], dtype=np.float64)) / count * 1e3 if count else float("nan")
    mse = float(np.sum((e * e)[region], dtype=np.float64)) / count * 1e3 if count else float("nan")
    # MetricGRAD: cv2.normalize(NORM_MINMAX), cv2.filter2D (correlation, BORDER_REPLICATE),
    # sqrt(gx^2 + gy^2), sum of squared differences / 1000
    amp_p = _magnitude(cv2_minmax(p.astype(np.float64)), flip=False)
    amp_g = _magnitude(cv2_minmax(g.astype(np.float64)), flip=False)
    grad = float(np.sum(((amp_g - amp_p) ** 2)[region])) / 1000
    # MetricCONN: np.arange thresholds compared in float32, cv2.connectedComponentsWithStats
    # argmax, float32 round_down_map and phi, sum / 1000
    levels = _levels(p, g, NUMPY_THRESHOLDS, largest_component_opencv, single=True)
    lmap = np.asarray(NUMPY_THRESHOLDS, np.float64)[levels].astype(np.float32)
    pd, gd = p - lmap, g - lmap
    f015 = np.float32(0.15)
    pphi = np.float32(1) - pd * (pd >= f015).astype(np.float32)
    gphi = np.float32(1) - gd * (gd >= f015).astype(np.float32)
    conn = float(np.sum(np.abs(pphi - gphi)[region], dtype=np.float64)) / 1000
    return _result(mad, mse, grad, conn, levels if with_levels else None)


def largest_component_skimage(mask: np.ndarray):
    """omega of P3M's compute_connectivity_loss_whole_image: skimage label(connectivity=1),
    regionprops, argmax of the areas (labels number components in row-major order of
    their first pixel: the first of equal sizes wins); None when the mask is empty
    (P3M then skips the threshold)."""
    from skimage.measure import label, regionprops
    regions = regionprops(label(mask, connectivity=1))
    if not regions:
        return None
    best = regions[int(np.argmax([r.area for r in regions]))]
    omega = np.zeros(mask.shape, bool)
    omega[best.coords[:, 0], best.coords[:, 1]] = True
    return omega


def p3m(pred, gt, *, with_levels=False) -> dict:
    """JizhiziLi/P3M core/evaluate.py's whole-image metrics (module docstring). pred, gt:
    (H, W) alphas in [0, 1] (float64 as P3M's test.py has them; a uint8 matte v is v / 255.).
    sad = sum |e| / 1000, mse = sum e^2 / (H*W), grad = sum / 10, conn = sum / 1000."""
    from scipy.ndimage import gaussian_filter
    p = np.asarray(pred, np.float64)
    g = np.asarray(gt, np.float64)
    h, w = p.shape
    # calculate_sad_mse_mad_whole_img
    e = p - g
    sad = float(np.sum(np.abs(e))) / 1000
    mse = float(np.sum(e ** 2)) / (h * w)
    # compute_gradient_whole_image: float32 filter outputs (the first axis's result
    # is stored in the float32 output before the second axis reads it), magnitudes
    # and squared differences in float32. P3M sums them in float32 (numpy's pairwise
    # sum, ~1e-7 relative from this float64 sum of the same float32 values).
    mags = []
    for a in (p, g):
        ax = gaussian_filter(a, sigma=1.4, order=[1, 0], output=np.float32)
        ay = gaussian_filter(a, sigma=1.4, order=[0, 1], output=np.float32)
        mags.append(np.sqrt(ax ** 2 + ay ** 2))
    err = np.square(mags[0] - mags[1])
    assert err.dtype == np.float32
    grad = float(np.sum(err, dtype=np.float64)) / 10
    # compute_connectivity_loss_whole_image: np.arange thresholds compared in float64;
    # a threshold with no component is skipped (`continue`), so pixels unassigned
    # there keep -1 and end at l = 1; l_map is float32.
    levels = np.full(p.shape, -1, np.int64)
    for i in range(1, len(NUMPY_THRESHOLDS)):
        t = NUMPY_THRESHOLDS[i]
        omega = largest_component_skimage((p >= t) & (g >= t))
        if omega is None:
            continue
        levels[(levels == -1) & ~omega] = i - 1
    levels[levels == -1] = len(NUMPY_THRESHOLDS) - 1
    lmap = np.asarray(NUMPY_THRESHOLDS)[levels].astype(np.float32)
    pd, gd = p - lmap, g - lmap  # float64 - float32: float64
    pphi = 1 - pd * (pd >= 0.15).astype(np.float32)
    gphi = 1 - gd * (gd >= 0.15).astype(np.float32)
    conn = float(np.sum(np.abs(pphi - gphi))) / 1000
    return _result(sad, mse, grad, conn, levels if with_levels else None)


# p3m is left out: its inputs are 0..1 and it has no region argument (see p3m).
CONVENTIONS = {"dim_matlab": dim_matlab, "mmagic": mmagic, "gca": gca, "rvm": rvm}
THRESHOLDS = {"dim_matlab": MATLAB_THRESHOLDS, "mmagic": NUMPY_THRESHOLDS, "gca": NUMPY_THRESHOLDS,
              "rvm": NUMPY_THRESHOLDS, "p3m": NUMPY_THRESHOLDS}
