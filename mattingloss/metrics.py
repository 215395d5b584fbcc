"""Matting evaluation metrics: SAD, MSE, Gradient and Connectivity errors, per
sample, as each code base computes them (``convention``), from one op.

>>> from mattingloss import metrics
>>> m = metrics.MattingMetrics()            # sums on the device, all_reduce in compute()
>>> for pred, gt, trimap in loader:          # (B, 1, H, W): uint8, or floating 0..255 / 0..1 (scale=)
...     m.update(pred, gt, trimap)
>>> m.compute()                              # {"sad": ..., "mse": ..., "grad": ..., "conn": ...} means

Conventions (each equal to its reference in :mod:`mattingloss.reference.metrics`,
which cites the source file and function it reproduces; see docs/metrics.md):

=============  ==================================================================
``dim_matlab`` Ning Xu's DIM MATLAB code (default): trimap == 128, SAD/1000, MSE,
               Gradient (mat2gray, 9x9 derivative of Gaussian, replicate) /1000,
               Connectivity (MATLAB's 0:0.1:1, bwconncomp) /1000; single precision
               where MATLAB is. MSE of a sample with no unknown pixel: NaN (0/0).
``mmagic``     open-mmlab/mmagic: SAD and MSE numerators over the whole image,
               MSE / unknown count (0 when none); cv2 min-max normalisation;
               np.arange thresholds (0.6000000000000001: alpha 153 misses 0.6).
``gca``        GCA-Matting utils/evaluate.py: gradient of alpha/255 (no min-max),
               MSE / (count + 1e-8), largest component counting the background.
``rvm``        RobustVideoMatting evaluation/evaluate_lr.py, with region="all"
               (whole frames): float32 alphas; ``sad`` holds its MAD (mean |e|
               x 1e3), ``mse`` its MSE (mean e^2 x 1e3); cv2 min-max gradient;
               thresholds compared in float32 (alpha 153 reaches 0.6).
``p3m``        JizhiziLi/P3M core/evaluate.py's whole-image functions, with
               region="all": float64 0..1 alphas; SAD/1000, MSE / (H*W);
               scipy gaussian_filter (sigma 1.4, 13 taps, reflect, float32
               output) gradient, float32 magnitudes, sum /10; skimage
               components, np.arange thresholds, an empty threshold skipped
               (its pixels keep l = 1), float32 l_map; Connectivity /1000.
=============  ==================================================================

The region: ``trimap == unknown_value`` (128), ``unknown_range=(lo, hi)`` (lo < t < hi)
or ``region="all"`` (every pixel; the whole-image conventions of P3M/AIM/RVM style
evaluations, with the formulas of the chosen convention).
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from . import _args, _codes, _ops

Tensor = torch.Tensor

_region_options = _args.region_options
_number = _args.number
_describe = _args.describe
MASK_EQUAL = _codes.MASK_EQUAL

_matting_metrics = _ops.load_op("matting_metrics")

CONVENTIONS = {"dim_matlab": 0, "mmagic": 1, "gca": 2, "rvm": 3, "p3m": 4}
_P3M = CONVENTIONS["p3m"]
METRICS = ("sad", "mse", "grad", "conn")
# csrc/metrics.h MetricSum
_SAD_REGION, _SAD_ALL, _SQ_REGION, _SQ_ALL, _COUNT, _GRAD, _CONN, _SUMS = range(8)


def _matlab_colon(a: float, step: float, b: float) -> list:
    # MATLAB's a:step:b (first half a + k*step, second half b - (n-k)*step, middle (a+b)/2).
    n = int(math.floor((b - a) / step + 1e-10))
    return [a + k * step if 2 * k < n else (a + b) / 2 if 2 * k == n else b - (n - k) * step for k in range(n + 1)]


_ARANGE = [k * 0.1 for k in range(11)]  # np.arange(0, 1 + 0.1, 0.1): 0.6000000000000001, ...
_THRESHOLDS = {0: _matlab_colon(0.0, 0.1, 1.0), 1: _ARANGE, 2: _ARANGE, 3: _ARANGE, 4: _ARANGE}


def _taps() -> list:
    # gaussgradient.m's hx = outer(g, dg) / ||.||: its unit-norm factors (sigma 1.4, eps 1e-2).
    sigma, eps = 1.4, 1e-2
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * eps)))
    u = range(-half, half + 1)
    g = [math.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi)) for x in u]
    d = [-x * gx / sigma ** 2 for x, gx in zip(u, g)]
    ng, nd = math.sqrt(sum(v * v for v in g)), math.sqrt(sum(v * v for v in d))
    return [v / ng for v in g] + [v / nd for v in d]


_TAPS = _taps()

# P3M's filter: the weights scipy.ndimage.gaussian_filter1d(sigma=1.4, order=0 / 1)
# hands to correlate1d (radius int(4.0 * 1.4 + 0.5) = 6; exp(-x^2 / (2 sigma^2)) over
# its sum, times -x / sigma^2 for order 1; reversed). Stored bit for bit as scipy
# 1.17 / numpy 2.4 compute them, so that they do not depend on this platform's exp;
# tests/test_metrics.py checks them against scipy's impulse response.
_P3M_GAUSS = ["0x1.eb00c57c01f85p-16", "0x1.fbbf52acdeb97p-12", "0x1.3b3bc6b69e590p-8", "0x1.d6001ab2691aep-6",
              "0x1.a4b65e2dfae10p-4", "0x1.c43152b579774p-3", "0x1.23cc64f804b28p-2"]
_P3M_DERIV = ["-0x1.77c4823cf1d5ap-14", "-0x1.43d18703258dep-10", "-0x1.41aab5deeab8fp-7", "-0x1.67b1b663f79f2p-5",
              "-0x1.ad4c601a05395p-4", "-0x1.cd6bcc8f61d2ap-4", "0x0.0p+0"]


def _p3m_taps() -> list:
    g = [float.fromhex(h) for h in _P3M_GAUSS]
    d = [float.fromhex(h) for h in _P3M_DERIV]
    return g + g[-2::-1] + d + [-v for v in d[-2::-1]]


_P3M_TAPS = _p3m_taps()


@torch.library.register_fake("mattingloss::matting_metrics")
def _matting_metrics_fake(pred, gt, region, convention, pred_factor, gt_factor, thresholds, taps, gradient,
                          connectivity, levels):
    sums = pred.new_empty((pred.shape[0], _SUMS), dtype=torch.float64)
    lv = pred.new_empty(pred.shape if levels and connectivity else (0,), dtype=torch.uint8)
    return sums, lv


def _alpha(name: str, t, like: Optional[Tensor] = None) -> Tensor:
    """A (B, 1, H, W) matte the op reads: uint8, float32 or float64, contiguous."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype == torch.uint8):
        raise TypeError(f"{name}: expected uint8 or a floating dtype, got {_describe(t)}")
    if t.dim() != 4 or t.shape[1] != 1 or t.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty (B, 1, H, W) tensor, got {_describe(t)}")
    if like is not None:
        if t.shape != like.shape:
            raise ValueError(f"{name}: expected shape {tuple(like.shape)} (pred's), got {_describe(t)}")
        if t.device != like.device:
            raise ValueError(f"{name}: expected device {like.device} (pred's), got {_describe(t)}")
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name}: expected a cpu or cuda tensor, got {_describe(t)}")
    if t.device.type == "cuda" and not _ops.cuda_kernels_built():
        raise ValueError(f"{name}: is on CUDA, but this build of mattingloss has no CUDA kernels")
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.detach().contiguous()


def _scale_factor(name: str, scale, t: Tensor) -> float:
    """255 / scale: the factor that brings t to the 0..255 scale (uint8: 255 unless given)."""
    if scale is None:
        scale = 255.0 if t.dtype == torch.uint8 else 1.0
    scale = _number(name, scale, low=0.0, low_open=True)
    return 255.0 / scale


def _region(trimap, pred: Tensor, region: str, unknown_value, unknown_range) -> Tensor:
    if region not in ("trimap", "all"):
        raise ValueError(f"region: expected 'trimap' or 'all', got {region!r}")
    if region == "all":
        if trimap is not None:
            raise ValueError("trimap: region='all' counts every pixel; pass trimap=None")
        return torch.ones_like(pred, dtype=torch.uint8)
    if trimap is None:
        raise ValueError("trimap: expected a (B, 1, H, W) trimap (or region='all')")
    if not isinstance(trimap, torch.Tensor):
        raise TypeError(f"trimap: expected a torch.Tensor, got {type(trimap).__name__}")
    if trimap.shape != pred.shape:
        raise ValueError(f"trimap: expected shape {tuple(pred.shape)} (pred's), got {_describe(trimap)}")
    if trimap.device != pred.device:
        raise ValueError(f"trimap: expected device {pred.device} (pred's), got {_describe(trimap)}")
    if trimap.is_complex():
        raise TypeError(f"trimap: expected a real dtype, got {_describe(trimap)}")
    mode, lo, hi = _region_options(unknown_value, unknown_range, False)
    if mode == MASK_EQUAL and trimap.dtype == torch.uint8:
        # The same 0/1 mask from integer ops: `trimap == lo` with a float lo runs in
        # float32 (every byte converted first), and torch's uint8 == is a scalar loop
        # (2.2 ms at 1080p, 7% of a call) where xor and clamp are vectorised (~0.2 ms
        # each). lo is rounded to float32 as that compare would round it; no byte
        # equals a non-integer or out-of-range lo.
        lo32 = torch.tensor(lo, dtype=torch.float32).item()
        if lo32.is_integer() and 0 <= lo32 <= 255:
            inside = torch.bitwise_xor(trimap, int(lo32)).clamp_max_(1).bitwise_xor_(1)  # 0 iff == lo, then 1
        else:
            inside = torch.zeros_like(trimap)
    else:
        inside = (trimap == lo) if mode == MASK_EQUAL else (trimap > lo) & (trimap < hi)
    return inside.contiguous().view(torch.uint8)  # bool is one byte of 0/1: no conversion pass


def _sums(pred, gt, trimap, *, convention, scale, gt_scale, region, unknown_value, unknown_range, gradient,
          connectivity, levels=False):
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ValueError(f"convention: expected one of {sorted(CONVENTIONS)}, got {convention!r}")
    pred = _alpha("pred", pred)
    gt = _alpha("gt", gt, pred)
    pf = _scale_factor("scale", scale, pred)
    gf = _scale_factor("gt_scale", gt_scale if gt_scale is not None else (scale if gt.dtype == pred.dtype else None),
                       gt)
    code = CONVENTIONS[convention]
    if code == _P3M and region != "all":
        # its filter and components run over the whole image: a trimap region would
        # count pixels of a computation it does not make
        raise ValueError(f"region: convention='p3m' evaluates whole images (P3M's *_whole_img functions): "
                         f"pass region='all' and no trimap, got region={region!r}")
    mask = _region(trimap, pred, region, unknown_value, unknown_range)
    taps = _P3M_TAPS if code == _P3M else _TAPS
    return _matting_metrics(pred, gt, mask, code, pf, gf, _THRESHOLDS[code], taps, gradient, connectivity, levels)


def _compose(sums: Tensor, convention: str) -> Dict[str, Tensor]:
    """The four metrics of a convention from the op's per-sample sums."""
    count = sums[:, _COUNT]
    if convention == "dim_matlab":
        sad = sums[:, _SAD_REGION] / 1000
        mse = sums[:, _SQ_REGION] / count  # 0/0 = NaN, as MATLAB
    elif convention == "mmagic":
        sad = sums[:, _SAD_ALL] / 1000
        mse = torch.where(count != 0, sums[:, _SQ_ALL] / count.clamp_min(1), torch.zeros_like(count))
    elif convention == "rvm":  # means x 1e3 (its MAD in "sad"); NaN with no pixel, as np.mean
        sad = sums[:, _SAD_REGION] / count * 1e3
        mse = sums[:, _SQ_REGION] / count * 1e3
    elif convention == "p3m":  # calculate_sad_mse_mad_whole_img, compute_gradient_whole_image (/10)
        sad = sums[:, _SAD_ALL] / 1000
        mse = sums[:, _SQ_ALL] / count
        return {"sad": sad, "mse": mse, "grad": sums[:, _GRAD] / 10, "conn": sums[:, _CONN] / 1000}
    else:
        sad = sums[:, _SAD_REGION] / 1000
        mse = sums[:, _SQ_REGION] / (count + 1e-8)
    return {"sad": sad, "mse": mse, "grad": sums[:, _GRAD] / 1000, "conn": sums[:, _CONN] / 1000}


def matting_metrics(pred: Tensor, gt: Tensor, trimap: Optional[Tensor] = None, convention: str = "dim_matlab", *,
                    scale: Optional[float] = None, gt_scale: Optional[float] = None, region: str = "trimap",
                    unknown_value: Optional[float] = None, unknown_range=None, gradient: bool = True,
                    connectivity: bool = True) -> Dict[str, Tensor]:
    """SAD, MSE, Gradient and Connectivity errors per sample (float64 tensors of shape (B,)),
    as ``convention`` computes them, from one op (one read of the inputs per pass).

    pred, gt: (B, 1, H, W) uint8 (0..255) or floating; ``scale`` is the value of a fully
    opaque pixel (255 for uint8, 1.0 for floating by default; 255 for floating 0..255
    mattes); ``gt_scale`` the same for gt (default: as pred when the dtypes match, else
    by gt's dtype). trimap read as the losses read it: ``trimap == unknown_value``
    (default 128) or ``unknown_range=(lo, hi)``; or ``region="all"`` with no trimap.
    gradient/connectivity=False skip those (their entries are then 0).
    """
    sums, _ = _sums(pred, gt, trimap, convention=convention, scale=scale, gt_scale=gt_scale, region=region,
                    unknown_value=unknown_value, unknown_range=unknown_range, gradient=gradient,
                    connectivity=connectivity)
    return _compose(sums, convention)


def connectivity_levels(pred, gt, trimap=None, convention="dim_matlab", **kwargs) -> Tensor:
    """Each pixel's connectivity level k (l = thresholds[k]) as uint8 (B, 1, H, W):
    what the tests compare pixel by pixel against the references."""
    _, lv = _sums(pred, gt, trimap, convention=convention, scale=kwargs.get("scale"),
                  gt_scale=kwargs.get("gt_scale"), region=kwargs.get("region", "trimap"),
                  unknown_value=kwargs.get("unknown_value"), unknown_range=kwargs.get("unknown_range"),
                  gradient=False, connectivity=True, levels=True)
    return lv


def sad(pred, gt, trimap=None, convention="dim_matlab", **kwargs) -> Tensor:
    """Sum of absolute differences (/1000), per sample."""
    return matting_metrics(pred, gt, trimap, convention, gradient=False, connectivity=False, **kwargs)["sad"]


def mse(pred, gt, trimap=None, convention="dim_matlab", **kwargs) -> Tensor:
    """Mean squared error over the region, per sample."""
    return matting_metrics(pred, gt, trimap, convention, gradient=False, connectivity=False, **kwargs)["mse"]


def gradient_error(pred, gt, trimap=None, convention="dim_matlab", **kwargs) -> Tensor:
    """Gradient error (/1000), per sample."""
    return matting_metrics(pred, gt, trimap, convention, gradient=True, connectivity=False, **kwargs)["grad"]


def connectivity_error(pred, gt, trimap=None, convention="dim_matlab", **kwargs) -> Tensor:
    """Connectivity error (/1000), per sample."""
    return matting_metrics(pred, gt, trimap, convention, gradient=False, connectivity=True, **kwargs)["conn"]


class MattingMetrics:
    """Accumulates the four metrics over a validation set, torchmetrics-style:
    ``update`` adds each batch's per-sample values to running sums on the
    batch's device (no host sync), ``compute`` returns the means over all samples
    seen (all-reduced across processes under torch.distributed), ``reset`` clears.
    A sample whose MSE is NaN (dim_matlab, no unknown pixel) makes the MSE mean NaN,
    as MATLAB's evaluate.m would."""

    def __init__(self, convention: str = "dim_matlab", **options):
        if not isinstance(convention, str) or convention not in CONVENTIONS:
            raise ValueError(f"convention: expected one of {sorted(CONVENTIONS)}, got {convention!r}")
        self.convention = convention
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._totals: Optional[Tensor] = None  # [sad, mse, grad, conn, count]

    def update(self, pred, gt, trimap=None) -> Dict[str, Tensor]:
        values = matting_metrics(pred, gt, trimap, self.convention, **self.options)
        # the sample count by a fill on the device: torch.tensor(n, device="cuda") copies
        # from the host and waits for the stream (a sync per batch)
        count = torch.full((), float(values["sad"].shape[0]), dtype=torch.float64, device=values["sad"].device)
        batch = torch.stack([values[k].sum() for k in METRICS] + [count])
        self._totals = batch if self._totals is None else self._totals + batch
        return values

    def compute(self) -> Dict[str, float]:
        if self._totals is None:
            raise RuntimeError("MattingMetrics.compute: no update() since the last reset()")
        totals = self._totals.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(totals)
        totals = totals.cpu()
        return {k: float(totals[i] / totals[4]) for i, k in enumerate(METRICS)}
