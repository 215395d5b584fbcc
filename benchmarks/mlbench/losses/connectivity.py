"""Connectivity alone: mattingloss.metrics.connectivity_error (mmagic convention) against
our reference of mmagic's ConnectivityError (cv2.connectedComponentsWithStats per
threshold, one image at a time): the issue's "Connectivity alone" row. The cases are the
metrics benchmark's (losses/metrics.py)."""
from __future__ import annotations

import torch

from mattingloss import metrics

from ..spec import LossBench
from .metrics import BENCH as METRICS_BENCH, CONVENTION, close_values, make_metrics_case


def ours(case):
    p, g, t = case.tensors["prediction"], case.tensors["alpha"], case.tensors["trimap"]
    return lambda: metrics.connectivity_error(p, g, t, CONVENTION)


def reference(case):
    from mattingloss.reference import metrics as R

    p, g, t = (case.tensors[k] for k in ("prediction", "alpha", "trimap"))

    def run():
        rows = []
        for b in range(p.shape[0]):
            rows.append(R.mmagic_connectivity(p[b, 0].cpu().numpy(), g[b, 0].cpu().numpy(),
                                              t[b, 0].cpu().numpy() == 128))
        return torch.tensor(rows, dtype=torch.float64)

    return run


BENCH = LossBench(
    name="connectivity",
    title="connectivity_error alone (mmagic convention) vs the numpy/OpenCV reference",
    make_case=lambda size, dtype, device: make_metrics_case(size, dtype, device, "connectivity"),
    contenders={"reference_mmagic": reference, "connectivity_error": ours},
    fused="connectivity_error",
    cases=METRICS_BENCH.cases,
    bytes_moved=METRICS_BENCH.bytes_moved,
    modes=("forward",),
    check=close_values,
)
