"""Draw docs/trimap.png: a synthetic alpha matte and its trimaps for two sizes.

    python scripts/make_trimap_figure.py [--out docs/trimap.png]

The matte is a soft-edged head-like blob with thin semi-transparent "hair"
strands; the panels are: alpha | make_trimap k=7 | make_trimap k=25 (ellipse
elements, the same size for the erosion and the dilation). White is known
foreground (255), black known background (0), grey unknown (128).

Needs torch, numpy and Pillow (``pip install pillow``); not OpenCV.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os

import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    from mattingloss.trimap import make_trimap
except ImportError:  # package not built/installed: trimap.py is pure Python, load it by path
    _spec = importlib.util.spec_from_file_location("_trimap", os.path.join(ROOT, "mattingloss", "trimap.py"))
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    make_trimap = _mod.make_trimap


def synthetic_alpha(h: int = 256, w: int = 256, seed: int = 0) -> torch.Tensor:
    """(H, W) uint8 alpha: a blob with a 4-pixel soft edge plus 1-2 px hair strands."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.arange(h, dtype=torch.float32)[:, None]
    xx = torch.arange(w, dtype=torch.float32)[None, :]

    # head: an ellipse with a soft rim (exact 0 outside, exact 1 inside)
    cy, cx, ry, rx = 0.60 * h, 0.50 * w, 0.30 * h, 0.24 * w
    rho = torch.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    alpha = ((1.0 - rho) * min(rx, ry) / 4.0 + 0.5).clamp(0, 1)
    # a soft, half-transparent veil on the right
    veil = torch.exp(-(((yy - 0.55 * h) / (0.18 * h)) ** 2 + ((xx - 0.80 * w) / (0.08 * w)) ** 2))
    alpha = torch.maximum(alpha, (0.55 * veil).where(veil > 0.2, torch.zeros(())))

    # hair: curved strands leaving the top of the head
    for _ in range(28):
        theta = math.pi * (0.15 + 0.7 * torch.rand((), generator=g).item())  # start angle on the rim
        y0 = cy - ry * math.sin(theta) * 0.95
        x0 = cx - rx * math.cos(theta) * 0.95
        length = (0.15 + 0.20 * torch.rand((), generator=g).item()) * h
        bend = (torch.rand((), generator=g).item() - 0.5) * 2.0
        opacity = 0.35 + 0.6 * torch.rand((), generator=g).item()
        width = 0.6 + 0.7 * torch.rand((), generator=g).item()
        t = torch.linspace(0, 1, 160)
        dir_y, dir_x = -math.sin(theta), -math.cos(theta)
        py = y0 + length * t * dir_y + bend * 0.25 * length * t**2 * (-dir_x)
        px = x0 + length * t * dir_x + bend * 0.25 * length * t**2 * dir_y
        d2 = (yy[..., None] - py) ** 2 + (xx[..., None] - px) ** 2  # (H, W, 160)
        dist = d2.min(dim=-1).values.sqrt()
        strand = (1.0 - dist / (width + 0.5)).clamp(0, 1) * opacity
        alpha = torch.maximum(alpha, strand)
    return (alpha * 255).round().to(torch.uint8)


def compose(panels, labels, gap: int = 8, top: int = 26) -> Image.Image:
    h, w = panels[0].shape
    sheet = Image.new("L", (len(panels) * w + (len(panels) + 1) * gap, h + top + gap), 255)
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for i, (p, label) in enumerate(zip(panels, labels)):
        x = gap + i * (w + gap)
        sheet.paste(Image.fromarray(p.contiguous().numpy()), (x, top))  # uint8 (H, W) -> mode "L"
        draw.text((x + 2, 4), label, fill=0, font=font)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "trimap.png"))
    args = parser.parse_args()

    alpha = synthetic_alpha()
    t7 = make_trimap(alpha, 7, 7, shape="ellipse")
    t25 = make_trimap(alpha, 25, 25, shape="ellipse")
    sheet = compose(
        [alpha, t7, t25],
        ["alpha", "make_trimap(alpha, 7, 7)", "make_trimap(alpha, 25, 25)"],
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
