"""Trimap generation: mattingloss.trimap.make_trimap on a batch against the data loaders'
per-sample OpenCV loop (``cv2.erode``/``cv2.dilate``), same 15x15 ellipse, bit-for-bit."""
from __future__ import annotations

from mattingloss.trimap import make_trimap

from .. import check
from ..cases import grid, make_case
from ..spec import LossBench

KERNEL = 15  # erode and dilate size


def ours(case):
    alpha = case["alpha"]
    return lambda: make_trimap(alpha, KERNEL, KERNEL, shape="ellipse")


def cv2_loop(case):
    """Per sample: erode the opaque mask, dilate the non-transparent one (uint8 on the host)."""
    import cv2  # the `bench` extra installs opencv-python-headless
    import numpy as np
    import torch

    alpha = case["alpha"]
    erode_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (KERNEL, KERNEL))
    dilate_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (KERNEL, KERNEL))

    def run():
        batch = alpha.cpu().numpy()
        out = np.empty_like(batch)
        for i, a in enumerate(batch[:, 0]):
            fg = cv2.erode((a == 255).astype(np.uint8), erode_k, iterations=1)
            unknown = cv2.dilate((a != 0).astype(np.uint8), dilate_k, iterations=1)
            out[i, 0] = np.where(fg > 0, 255, np.where(unknown > 0, 128, 0))
        return torch.from_numpy(out).to(alpha.device)

    return run


BENCH = LossBench(
    name="trimap",
    title=f"make_trimap ({KERNEL}x{KERNEL} ellipse) vs a per-sample cv2 loop",
    make_case=lambda size, dtype, device: make_case("trimap", size, dtype, device, ("alpha",)),
    contenders={"cv2_loop": cv2_loop, "make_trimap": ours},
    fused="make_trimap",
    cases={"quick": grid("16x320x320", ("uint8",)),
           "default": grid("16x320x320", ("uint8",)),
           "full": grid("16x320x320,1x2048x2048", ("uint8",))},
    bytes_moved=lambda case, mode: 2 * case["alpha"].numel(),  # alpha read + trimap written
    modes=("forward",),
    check=check.exact,
)
