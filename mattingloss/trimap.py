"""Trimaps from alpha mattes: batched, on any device, equal to OpenCV.

:func:`make_trimap` erodes and dilates an alpha matte with an OpenCV
structuring element (``cv2.MORPH_RECT`` or ``cv2.MORPH_ELLIPSE``, any size,
even sizes included) and labels every pixel 255 (known foreground), 0 (known
background) or 128 (unknown). The result is bit-for-bit what ``cv2.erode`` /
``cv2.dilate`` with ``cv2.getStructuringElement`` and OpenCV's default border
give, but it runs on torch tensors of a whole batch, on the CPU or on CUDA,
without copying the image data to the host and without OpenCV at run time.

Kernel sizes may be fixed or drawn per sample from a range with a
``torch.Generator``, the augmentation DIM-style training pipelines (mmagic's
``GenerateTrimap``, GCA-Matting's ``GenTrimap``) use.

How it works. Erosion and dilation commute with thresholding, so the trimap
only needs two binary morphologies: the foreground mask ``alpha >= alpha_scale``
is eroded (logical AND over the element) and the "not transparent" mask
``alpha > 0`` is dilated (logical OR over the element). OpenCV pads erode with
+max and dilate with -max (``morphologyDefaultBorderValue``): pixels outside the
image never change the result, so here the window is simply clipped to the
image (padding with True for AND, False for OR). A structuring element is a
stack of horizontal runs; every run is answered from a sparse table of
power-of-two windows along the width (O(log k) elementwise passes), and the
rows are combined with vertical shifts. A rectangle is separable (one run along
the width, then one along the height).
"""
from __future__ import annotations

import math
import numbers
from typing import List, Sequence, Tuple, Union

import torch

__all__ = ["make_trimap", "draw_sizes", "structuring_element"]

SizeArg = Union[int, Tuple[int, int]]

_SHAPES = ("rect", "ellipse")
_SUPPORTED_DTYPES = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
)


# --------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------
def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_size(size, name: str):
    """Return ``int`` for a fixed size or ``(lo, hi)`` for a range."""
    if _is_int(size):
        if size < 1:
            raise ValueError(f"{name} must be a positive int (a k x k element), got {size!r}")
        return int(size)
    if isinstance(size, (tuple, list)):
        if len(size) != 2 or not all(_is_int(v) for v in size):
            raise TypeError(
                f"{name} must be an int k or a (lo, hi) tuple of two ints, got {size!r}"
            )
        lo, hi = int(size[0]), int(size[1])
        if lo < 1:
            raise ValueError(f"{name} range (lo, hi) needs lo >= 1, got {size!r}")
        if lo >= hi:
            raise ValueError(
                f"{name} range (lo, hi) needs lo < hi (hi is excluded, as in range()), got {size!r}"
            )
        return (lo, hi)
    raise TypeError(
        f"{name} must be an int k or a (lo, hi) tuple of two ints, got {type(size).__name__} {size!r}"
    )


def _check_shape(shape) -> str:
    if not isinstance(shape, str):
        raise TypeError(f"shape must be one of {_SHAPES!r}, got {type(shape).__name__} {shape!r}")
    if shape not in _SHAPES:
        raise ValueError(f"shape must be one of {_SHAPES!r}, got {shape!r}")
    return shape


def _check_iterations(iterations) -> int:
    if not _is_int(iterations):
        raise TypeError(f"iterations must be an int >= 1, got {type(iterations).__name__} {iterations!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be an int >= 1, got {iterations!r}")
    return int(iterations)


def _check_generator(generator):
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


# --------------------------------------------------------------------------
# structuring elements (OpenCV's getStructuringElement, reimplemented)
# --------------------------------------------------------------------------
def _element_runs(k: int, shape: str) -> List[Tuple[int, int, int]]:
    """Rows of the k x k element as ``(dy, a, b)`` offsets from the anchor.

    Row ``dy`` covers columns ``a..b`` (inclusive) relative to the anchor
    ``(k // 2, k // 2)``; empty rows are left out. This mirrors OpenCV's
    ``getStructuringElement``: for ``MORPH_ELLIPSE``, ``r = c = k / 2`` (integer
    division), ``inv_r2 = 1 / r^2`` and row ``i`` spans
    ``[max(c - dx, 0), min(c + dx + 1, k))`` with
    ``dx = cvRound(c * sqrt((r^2 - dy^2) * inv_r2))``, ``dy = i - r``. cvRound
    rounds half to even, as Python's round() does, and the float operations are
    done in the same order in double precision, so the element is identical.
    A 1 x 1 ellipse is a 1 x 1 rectangle in both.
    """
    anchor = k // 2
    if shape == "rect":
        return [(i - anchor, -anchor, k - 1 - anchor) for i in range(k)]
    r = c = k // 2
    inv_r2 = 1.0 / float(r * r) if r else 0.0
    runs = []
    for i in range(k):
        dy = i - r
        if abs(dy) > r:  # cannot happen for a square element; kept for fidelity
            continue
        dx = int(round(c * math.sqrt(float(r * r - dy * dy) * inv_r2)))
        j1 = max(c - dx, 0)
        j2 = min(c + dx + 1, k)
        if j2 > j1:
            runs.append((i - anchor, j1 - anchor, j2 - 1 - anchor))
    return runs


def structuring_element(k: int, shape: str = "ellipse", device=None) -> torch.Tensor:
    """The k x k element of ``cv2.getStructuringElement`` as a uint8 0/1 tensor.

    Equal to ``cv2.getStructuringElement(cv2.MORPH_RECT or cv2.MORPH_ELLIPSE,
    (k, k))``; its anchor is ``(k // 2, k // 2)``. Provided for inspection and
    tests; :func:`make_trimap` does not build this dense tensor.
    """
    k = _check_size(k, "k")
    if not isinstance(k, int):
        raise TypeError(f"k must be an int, got {k!r}")
    shape = _check_shape(shape)
    elem = torch.zeros(k, k, dtype=torch.uint8)
    a = k // 2
    for dy, lo, hi in _element_runs(k, shape):
        elem[dy + a, lo + a : hi + a + 1] = 1
    return elem.to(device) if device is not None else elem


# --------------------------------------------------------------------------
# binary morphology on (N, H, W) bool tensors
# --------------------------------------------------------------------------
def _combine(erode: bool):
    return torch.logical_and if erode else torch.logical_or


def _sparse_table(p: torch.Tensor, dim: int, max_width: int, erode: bool) -> List[torch.Tensor]:
    """``levels[j][..., i, ...]`` reduces ``p`` over ``[i, i + 2**j)`` along ``dim``."""
    op = _combine(erode)
    levels = [p]
    q = 1
    while 2 * q <= max_width:
        prev = levels[-1]
        n = prev.shape[dim] - q
        levels.append(op(prev.narrow(dim, 0, n), prev.narrow(dim, q, n)))
        q *= 2
    return levels


def _query(levels: List[torch.Tensor], dim: int, start: int, width: int, n: int, erode: bool) -> torch.Tensor:
    """Reduce over ``[start + i, start + i + width)`` for ``i`` in ``0..n-1`` along ``dim``."""
    j = width.bit_length() - 1
    q = 1 << j
    m = levels[j]
    first = m.narrow(dim, start, n)
    if q == width:
        return first
    return _combine(erode)(first, m.narrow(dim, start + width - q, n))


def _pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, value: bool) -> torch.Tensor:
    if top == bottom == left == right == 0:
        return x
    n, h, w = x.shape
    out = torch.full((n, h + top + bottom, w + left + right), value, dtype=x.dtype, device=x.device)
    out[:, top : top + h, left : left + w] = x
    return out


def _window_1d(x: torch.Tensor, dim: int, a: int, b: int, erode: bool) -> torch.Tensor:
    """out[i] = reduce over x[i + a .. i + b] along ``dim``; outside the image is neutral."""
    if a == 0 and b == 0:
        return x
    n = x.shape[dim]
    lpad, rpad = max(0, -a), max(0, b)
    if dim == 2:
        p = _pad(x, 0, 0, lpad, rpad, erode)
    else:
        p = _pad(x, lpad, rpad, 0, 0, erode)
    width = b - a + 1
    levels = _sparse_table(p, dim, width, erode)
    return _query(levels, dim, a + lpad, width, n, erode)


def _morph_rect(x: torch.Tensor, k: int, iterations: int, erode: bool) -> torch.Tensor:
    # `iterations` passes of a k x k rectangle anchored at k // 2 equal one pass
    # of a ((k - 1) * iterations + 1)^2 rectangle anchored at (k // 2) * iterations
    # (OpenCV does the same rewrite), since the border never wins.
    a = -(k // 2) * iterations
    b = (k - 1 - k // 2) * iterations
    x = _window_1d(x, 2, a, b, erode)
    return _window_1d(x, 1, a, b, erode)


def _morph_runs(x: torch.Tensor, runs: Sequence[Tuple[int, int, int]], erode: bool) -> torch.Tensor:
    """One pass of a general element given as horizontal runs ``(dy, a, b)``."""
    _, h, w = x.shape
    top = max(0, -min(r[0] for r in runs))
    bottom = max(0, max(r[0] for r in runs))
    left = max(0, -min(r[1] for r in runs))
    right = max(0, max(r[2] for r in runs))
    p = _pad(x, top, bottom, left, right, erode)
    max_width = max(r[2] - r[1] + 1 for r in runs)
    levels = _sparse_table(p, 2, max_width, erode)
    op = _combine(erode)

    by_run = {}
    for dy, a, b in runs:
        by_run.setdefault((a, b), []).append(dy)
    out = None
    for (a, b), dys in by_run.items():
        horiz = _query(levels, 2, a + left, b - a + 1, w, erode)  # (N, H + top + bottom, W)
        for dy in dys:
            rows = horiz.narrow(1, dy + top, h)
            if out is None:
                out = rows.clone()
            else:
                op(out, rows, out=out)
    return out


def _binary_morph(x: torch.Tensor, k: int, shape: str, iterations: int, erode: bool) -> torch.Tensor:
    """Erode (logical AND) or dilate (logical OR) a bool (N, H, W) tensor.

    Equal to ``cv2.erode`` / ``cv2.dilate`` of each 0/1 image with
    ``cv2.getStructuringElement(shape, (k, k))``, the default anchor, the given
    iterations and the default border.
    """
    if k == 1 or x.numel() == 0:
        return x
    if shape == "rect":
        return _morph_rect(x, k, iterations, erode)
    runs = _element_runs(k, shape)
    for _ in range(iterations):
        x = _morph_runs(x, runs, erode)
    return x


def _grouped_morph(x: torch.Tensor, sizes: List[int], shape: str, iterations: int, erode: bool) -> torch.Tensor:
    """Morphology with a per-sample element size: one call per distinct size."""
    distinct = sorted(set(sizes))
    if len(distinct) == 1:
        return _binary_morph(x, distinct[0], shape, iterations, erode)
    out = torch.empty_like(x)
    sizes_cpu = torch.tensor(sizes)
    for k in distinct:
        # A few sample indices go host -> device here; the images stay put.
        idx = (sizes_cpu == k).nonzero().flatten().to(x.device, non_blocking=True)
        out.index_copy_(0, idx, _binary_morph(x.index_select(0, idx), k, shape, iterations, erode))
    return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def draw_sizes(size: SizeArg, n: int, generator: torch.Generator = None, name: str = "size") -> List[int]:
    """Per-sample kernel sizes, as :func:`make_trimap` draws them.

    ``size`` is an int k (returns ``[k] * n`` and draws nothing) or a
    ``(lo, hi)`` tuple: ``n`` sizes drawn uniformly from ``range(lo, hi)`` with
    ``torch.randint(lo, hi, (n,), generator=generator)``, on the generator's
    device (the global CPU generator when ``generator`` is None).

    The sizes come back to the host as a list of ``n`` Python ints: the element
    shapes must be known on the host to schedule the pooling. That is ``n``
    small ints per batch, never image data (with a CUDA generator it is one
    small device-to-host copy).
    """
    size = _check_size(size, name)
    _check_generator(generator)
    if not _is_int(n):
        raise TypeError(f"n must be an int >= 0, got {type(n).__name__} {n!r}")
    if n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if isinstance(size, int):
        return [size] * int(n)
    lo, hi = size
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(lo, hi, (int(n),), generator=generator, device=device).tolist()


def make_trimap(
    alpha: torch.Tensor,
    erode_size: SizeArg,
    dilate_size: SizeArg,
    shape: str = "ellipse",
    iterations: int = 1,
    generator: torch.Generator = None,
    alpha_scale: float = 255.0,
    return_sizes: bool = False,
):
    """Trimap of an alpha matte by erosion and dilation, equal to OpenCV's.

    With ``E = cv2.getStructuringElement(MORPH_RECT or MORPH_ELLIPSE, (k, k))``
    (anchor ``(k // 2, k // 2)``, even ``k`` included), OpenCV's default
    borders and ``iterations`` passes, the result is::

        eroded  = cv2.erode(alpha, E_erode, iterations=iterations)
        dilated = cv2.dilate(alpha, E_dilate, iterations=iterations)
        trimap  = 128 everywhere
        trimap[eroded >= alpha_scale] = 255   # known foreground
        trimap[dilated <= 0] = 0              # known background

    For alpha in ``[0, alpha_scale]``, ``eroded >= alpha_scale`` is
    ``eroded == alpha_scale`` (fully opaque); values above ``alpha_scale``
    count as opaque and values below 0 as transparent, i.e. the result is that
    of ``alpha.clamp(0, alpha_scale)``. The two labels never overlap (both
    elements contain their anchor). This is mmagic's ``GenerateTrimap`` rule.

    The seed's own trimap (a fixed 15 x 15 rectangle, dilation only,
    foreground where alpha is fully opaque) is
    ``make_trimap(alpha, erode_size=1, dilate_size=15, shape="rect")``.

    Args:
        alpha: (H, W) or (B, 1, H, W) tensor, uint8, int8/16/32/64 or
            float16/bfloat16/float32/float64, on any device, with values in
            ``0..alpha_scale``.
        erode_size: element size for the foreground erosion: an int k (a k x k
            element; 1 means no erosion) or a ``(lo, hi)`` tuple from which
            every sample draws its own size uniformly in ``range(lo, hi)``.
        dilate_size: the same for the dilation that bounds the background.
        shape: ``"ellipse"`` (``cv2.MORPH_ELLIPSE``) or ``"rect"``
            (``cv2.MORPH_RECT``).
        iterations: int >= 1, as ``iterations`` of ``cv2.erode``/``cv2.dilate``.
        generator: ``torch.Generator`` for the random sizes (CPU or CUDA; the
            global CPU generator when None). Erode sizes are drawn first, then
            dilate sizes, one ``torch.randint`` call of B values each, only for
            the sizes given as ranges; see :func:`draw_sizes`.
        alpha_scale: the value of a fully opaque pixel: 255 for 8-bit data,
            1.0 for float data in [0, 1].
        return_sizes: also return the per-sample sizes that were used.

    Returns:
        uint8 tensor of alpha's shape and device with values 0, 128 and 255.
        With ``return_sizes=True``: ``(trimap, erode_sizes, dilate_sizes)``,
        the sizes as lists of B Python ints (B = 1 for an (H, W) input).
    """
    if not isinstance(alpha, torch.Tensor):
        raise TypeError(f"alpha must be a torch.Tensor, got {type(alpha).__name__}")
    if alpha.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(
            f"alpha must be a real-valued uint8/int or float16/bfloat16/float32/float64 tensor, "
            f"got dtype {alpha.dtype}"
        )
    if alpha.dim() == 2:
        batch = 1
    elif alpha.dim() == 4:
        if alpha.shape[1] != 1:
            raise ValueError(
                f"alpha must have shape (H, W) or (B, 1, H, W); got shape {tuple(alpha.shape)} "
                f"with {alpha.shape[1]} channels, expected 1 channel"
            )
        batch = alpha.shape[0]
    else:
        raise ValueError(
            f"alpha must have shape (H, W) or (B, 1, H, W), got a {alpha.dim()}-D tensor "
            f"of shape {tuple(alpha.shape)}"
        )
    erode_size = _check_size(erode_size, "erode_size")
    dilate_size = _check_size(dilate_size, "dilate_size")
    shape = _check_shape(shape)
    iterations = _check_iterations(iterations)
    _check_generator(generator)
    if not isinstance(alpha_scale, numbers.Real) or isinstance(alpha_scale, bool):
        raise TypeError(f"alpha_scale must be a real number, got {type(alpha_scale).__name__} {alpha_scale!r}")
    if not (math.isfinite(alpha_scale) and alpha_scale > 0):
        raise ValueError(f"alpha_scale must be finite and > 0, got {alpha_scale!r}")

    erode_sizes = draw_sizes(erode_size, batch, generator, "erode_size")
    dilate_sizes = draw_sizes(dilate_size, batch, generator, "dilate_size")

    trimap = torch.full(alpha.shape, 128, dtype=torch.uint8, device=alpha.device)
    if alpha.numel() > 0:
        a = alpha.reshape(batch, alpha.shape[-2], alpha.shape[-1])
        fg = _grouped_morph(a >= alpha_scale, erode_sizes, shape, iterations, erode=True)
        reached = _grouped_morph(a > 0, dilate_sizes, shape, iterations, erode=False)
        t = trimap.view(batch, alpha.shape[-2], alpha.shape[-1])
        t.masked_fill_(fg, 255)
        t.masked_fill_(~reached, 0)
    if return_sizes:
        return trimap, erode_sizes, dilate_sizes
    return trimap
