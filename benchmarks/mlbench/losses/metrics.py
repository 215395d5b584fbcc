"""Evaluation metrics: mattingloss.metrics.matting_metrics (all four, mmagic convention)
against our reference of the same convention (mattingloss.reference.metrics.mmagic: what
mmagic's code computes, one image at a time, with the same OpenCV calls for the filter and
the components). mmagic itself cannot be imported next to torch 2.14 and numpy 2
(np.bool8 at import, mmcv's compiled ops); run beside it once, its own four process()
calls took 1.0-1.26x our reference's time at 1080p and 2048x2048 (docs/metrics.md).
uint8 mattes as read from disk."""
from __future__ import annotations

import torch

from mattingloss import metrics

from .. import check
from ..cases import grid, make_case
from ..spec import LossBench

CONVENTION = "mmagic"


def make_metrics_case(size, dtype, device, name="metrics"):
    case = make_case(name, size, dtype, device, ("alpha", "trimap"))
    alpha = case.tensors["alpha"]
    gen = torch.Generator().manual_seed(1)
    noise = torch.randint(-24, 25, alpha.shape, generator=gen, dtype=torch.int16).to(alpha.device)
    pred = (alpha.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
    case.tensors = {"prediction": pred, "alpha": alpha, "trimap": case.tensors["trimap"]}
    return case


def ours(case):
    p, g, t = case.tensors["prediction"], case.tensors["alpha"], case.tensors["trimap"]

    def run():
        out = metrics.matting_metrics(p, g, t, CONVENTION)
        return torch.stack([out[k] for k in metrics.METRICS], 1)

    return run


def reference(case):
    from mattingloss.reference import metrics as R

    p, g, t = (case.tensors[k] for k in ("prediction", "alpha", "trimap"))

    def run():
        rows = []
        for b in range(p.shape[0]):
            r = R.mmagic(p[b, 0].cpu().numpy(), g[b, 0].cpu().numpy(), t[b, 0].cpu().numpy() == 128)
            rows.append([r[k] for k in metrics.METRICS])
        return torch.tensor(rows, dtype=torch.float64)

    return run


def close_values(case, contender, got, expected):
    a, b = got[0].cpu(), expected[0].cpu()
    if not torch.allclose(a, b, rtol=1e-9, atol=1e-12):
        raise check.mismatch(case, contender, f"{a.tolist()} vs {b.tolist()}")
    return "rtol 1e-9"


BENCH = LossBench(
    name="metrics",
    title="matting_metrics (SAD, MSE, Gradient, Connectivity; mmagic convention) vs the numpy reference",
    make_case=make_metrics_case,
    contenders={"reference_mmagic": reference, "matting_metrics": ours},
    fused="matting_metrics",
    cases={"quick": grid("1x320x320", ("uint8",)),
           "default": grid("1x1080x1920", ("uint8",)),
           "full": grid("1x1080x1920,1x2048x2048,8x1024x1024", ("uint8",))},
    bytes_moved=lambda case, mode: 3 * case.tensors["alpha"].numel(),
    modes=("forward",),
    check=close_values,
)
