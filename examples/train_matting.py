#!/usr/bin/env python
"""Train a small matting network with :class:`mattingloss.DIMLoss`.

A self-contained showcase: it needs no data set download. Foregrounds and
backgrounds are crops of the photographs that scikit-image ships inside its
wheel (``skimage.data``); the alpha mattes are drawn procedurally (wobbly blobs
with soft edges plus thin hair-like strands); the trimaps come from
:func:`mattingloss.trimap.make_trimap` with kernel sizes drawn per sample.

Every target handed to the loss (alpha, trimap, composite image, fg, bg) stays
``uint8`` in 0..255: :class:`~mattingloss.DIMLoss` takes them as they are
(``alpha_scale`` and ``color_scale`` say which value means 1.0), so a batch of
targets takes a quarter of the memory of float32 copies.

Run::

    pip install scikit-image pillow
    python examples/train_matting.py                 # ~3.5 minutes on a 2-core CPU
    python examples/train_matting.py --steps 3000 --device cuda --out /tmp/matting

It prints the loss as it falls, then SAD and MSE of the predicted alpha on
held-out composites (photographs and alpha shapes never seen in training), and
saves ``matting_example.png`` (input / trimap / prediction / ground truth) in
``--out``. On the CPU the run is deterministic given ``--seed``.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from mattingloss import DIMLoss
from mattingloss.trimap import make_trimap

# Photographs bundled in the scikit-image wheel (no network access needed).
# The held-out ones are never seen in training, neither as fg nor as bg.
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
HELDOUT_PHOTOS = ("chelsea", "stereo_motorcycle")
EVAL_SEED = 20240917  # the held-out set is the same whatever --seed is


# --------------------------------------------------------------------------
# Data: photographs, procedural alpha mattes, composites
# --------------------------------------------------------------------------

def load_photos(names, short_side):
    """Bundled skimage photographs as uint8 (3, H, W) tensors, shorter side resized.

    Shrinking the photographs makes a small crop hold a recognisable chunk of
    the scene (edges, texture) rather than a flat patch.
    """
    import skimage.data  # optional dependency, imported here so --help works without it

    photos = []
    for name in names:
        img = getattr(skimage.data, name)()
        if name == "stereo_motorcycle":  # returns (left, right, disparity)
            img = img[0]
        t = torch.from_numpy(img[..., :3].copy()).permute(2, 0, 1).float()[None]
        scale = short_side / min(t.shape[-2:])
        size = [round(s * scale) for s in t.shape[-2:]]
        t = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
        photos.append(t[0].round().clamp(0, 255).to(torch.uint8))
    return photos


def random_crops(photos, n, size, g, exclude=None):
    """``n`` random (size x size) crops, randomly flipped, as uint8 (n, 3, size, size).

    Returns the crops and the index of the photograph each came from, so that
    a background can be taken from a different photograph than its foreground.
    """
    out, src = [], []
    for i in range(n):
        k = int(torch.randint(len(photos), (1,), generator=g))
        if exclude is not None and len(photos) > 1:
            while k == exclude[i]:
                k = int(torch.randint(len(photos), (1,), generator=g))
        p = photos[k]
        y = int(torch.randint(p.shape[1] - size + 1, (1,), generator=g))
        x = int(torch.randint(p.shape[2] - size + 1, (1,), generator=g))
        crop = p[:, y:y + size, x:x + size]
        if torch.rand((), generator=g) < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
        src.append(k)
    return torch.stack(out), src


def _uniform(shape, lo, hi, g):
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def random_alpha(n, size, g, max_blobs=3, max_strands=8):
    """Procedural alpha mattes in [0, 1], shape (n, 1, size, size).

    Each matte is the union of 1..max_blobs ellipses whose outline wobbles
    (low-frequency harmonics of the angle) and whose edge is a smooth ramp of
    the approximate signed distance, with a per-sample width from crisp
    (0.7 px) to very soft (10 px). Thin curved strands (quadratic Bezier
    curves, 0.3-1 px half-width, partly transparent) grow outwards from the
    first blob's outline, like hair: fractional alpha over one or two pixels
    is exactly what a trimap's unknown band is for.
    """
    S = float(size)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (size, size)
    shp = (n, 1, 1)
    # Edge widths log-uniform: most edges are crisp, some are blurry.
    edge = torch.exp(_uniform(shp, math.log(0.7), math.log(10.0), g))
    alpha = torch.zeros(n, size, size)

    for b in range(max_blobs):
        present = (torch.rand(shp, generator=g) < (1.0 if b == 0 else 0.5)).float()
        cx, cy = _uniform(shp, 0.3 * S, 0.7 * S, g), _uniform(shp, 0.3 * S, 0.7 * S, g)
        ra, rb = _uniform(shp, 0.12 * S, 0.35 * S, g), _uniform(shp, 0.12 * S, 0.35 * S, g)
        theta = _uniform(shp, 0.0, math.pi, g)
        c, s = torch.cos(theta), torch.sin(theta)
        u = ((xx - cx) * c + (yy - cy) * s) / ra  # unit-circle coordinates
        v = (-(xx - cx) * s + (yy - cy) * c) / rb
        rho, phi = torch.sqrt(u * u + v * v), torch.atan2(v, u)
        radius = torch.ones_like(rho)
        for m in (2, 3, 5):  # wobbly outline
            amp = _uniform(shp, 0.0, 0.12, g)
            radius = radius + amp * torch.cos(m * phi + _uniform(shp, 0.0, 2 * math.pi, g))
        dist = (rho - radius) * torch.sqrt(ra * rb)  # ~ signed distance in pixels
        # A smoothstep ramp, not a sigmoid: a sigmoid's long tails would leave
        # faint nonzero alpha far outside the shape and swell the unknown band.
        ramp = (0.5 - dist / edge).clamp(0.0, 1.0)
        ramp = ramp * ramp * (3 - 2 * ramp)
        alpha = torch.maximum(alpha, present * ramp)
        if b == 0:
            first = (cx, cy, ra, rb, c, s)

    # Hair-like strands, rooted just inside the first blob's outline.
    cx, cy, ra, rb, c, s = first
    n_strands = torch.randint(0, max_strands + 1, shp, generator=g)
    t = torch.linspace(0.0, 1.0, 17).view(1, 17, 1, 1)  # 16 segments per curve
    for k in range(max_strands):
        present = (n_strands > k).float()
        tau = _uniform(shp, 0.0, 2 * math.pi, g)  # root position on the ellipse
        ex, ey = 0.9 * ra * torch.cos(tau), 0.9 * rb * torch.sin(tau)
        p0x, p0y = cx + ex * c - ey * s, cy + ex * s + ey * c
        nx, ny = torch.cos(tau) / ra, torch.sin(tau) / rb  # outward normal
        nx, ny = nx * c - ny * s, nx * s + ny * c
        turn = _uniform(shp, -0.6, 0.6, g)
        nrm = torch.sqrt(nx * nx + ny * ny)
        dx = (nx * torch.cos(turn) - ny * torch.sin(turn)) / nrm
        dy = (nx * torch.sin(turn) + ny * torch.cos(turn)) / nrm
        length = _uniform(shp, 0.15 * S, 0.45 * S, g)
        bend = _uniform(shp, -0.35, 0.35, g) * length
        p2x, p2y = p0x + length * dx, p0y + length * dy
        p1x, p1y = (p0x + p2x) / 2 - bend * dy, (p0y + p2y) / 2 + bend * dx
        # points along the Bezier curve, (n, 17, 1, 1)
        bx = (1 - t) ** 2 * p0x[:, None] + 2 * (1 - t) * t * p1x[:, None] + t ** 2 * p2x[:, None]
        by = (1 - t) ** 2 * p0y[:, None] + 2 * (1 - t) * t * p1y[:, None] + t ** 2 * p2y[:, None]
        ax, ay, sx, sy = bx[:, :-1], by[:, :-1], bx[:, 1:] - bx[:, :-1], by[:, 1:] - by[:, :-1]
        # distance from every pixel to the polyline (min over its segments)
        h = ((xx - ax) * sx + (yy - ay) * sy) / (sx * sx + sy * sy + 1e-8)
        h = h.clamp(0.0, 1.0)
        d = torch.sqrt((xx - ax - h * sx) ** 2 + (yy - ay - h * sy) ** 2).amin(1)
        half_width = _uniform(shp, 0.3, 1.0, g)
        opacity = _uniform(shp, 0.5, 1.0, g)
        strand = opacity * (half_width + 0.5 - d).clamp(0.0, 1.0)  # anti-aliased line
        alpha = torch.maximum(alpha, present * strand)
    return alpha[:, None]


def make_batch(photos, n, size, g):
    """One batch of composites. Every tensor is uint8 in 0..255.

    The composite is made from the *quantised* alpha, so the ground truth
    reproduces the image up to rounding and the compositional loss can reach
    (almost) zero.
    """
    fg, src = random_crops(photos, n, size, g)
    bg, _ = random_crops(photos, n, size, g, exclude=src)
    alpha = (random_alpha(n, size, g) * 255).round().to(torch.uint8)
    a = alpha.float() / 255
    image = (a * fg.float() + (1 - a) * bg.float()).round().clamp(0, 255).to(torch.uint8)
    # Random erosion / dilation per sample: the network must cope with
    # narrow and wide unknown bands alike.
    trimap = make_trimap(alpha, erode_size=(3, 12), dilate_size=(5, 16), generator=g)
    return {"image": image, "alpha": alpha, "trimap": trimap, "fg": fg, "bg": bg}


# --------------------------------------------------------------------------
# Model: a small U-Net, image (3) + trimap (1) -> alpha
# --------------------------------------------------------------------------

def conv_block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class TinyMattingNet(nn.Module):
    """Three-level U-Net (~0.2 M parameters). Skip connections carry the
    full-resolution detail that thin strands need."""

    MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, the usual choice
    STD = (0.229, 0.224, 0.225)

    def __init__(self, width=16):
        super().__init__()
        w = width
        self.enc1, self.enc2, self.enc3 = conv_block(4, w), conv_block(w, 2 * w), conv_block(2 * w, 4 * w)
        self.mid = conv_block(4 * w, 4 * w)
        self.dec3, self.dec2, self.dec1 = conv_block(8 * w, 2 * w), conv_block(4 * w, w), conv_block(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1) * 255)

    def forward(self, image, trimap):
        """image: uint8/float (B,3,H,W) in 0..255; trimap: (B,1,H,W) 0/128/255.
        Returns alpha in (0, 1), shape (B,1,H,W). H and W must be multiples of 8."""
        x = (image.float() - self.mean) / self.std
        t = trimap.float() / 127.5 - 1.0  # background -1, unknown ~0, foreground +1
        e1 = self.enc1(torch.cat([x, t], 1))
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        m = self.mid(F.max_pool2d(e3, 2))
        up = lambda z: F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)
        d3 = self.dec3(torch.cat([up(m), e3], 1))
        d2 = self.dec2(torch.cat([up(d3), e2], 1))
        d1 = self.dec1(torch.cat([up(d2), e1], 1))
        return torch.sigmoid(self.head(d1))


def fuse_with_trimap(pred, trimap):
    """Where the trimap is certain, trust it: 0 in background, 1 in foreground."""
    pred = torch.where(trimap == 0, torch.zeros_like(pred), pred)
    return torch.where(trimap == 255, torch.ones_like(pred), pred)


# --------------------------------------------------------------------------
# Evaluation and picture
# --------------------------------------------------------------------------

def matting_errors(pred, alpha, trimap):
    """SAD and MSE over the unknown region, alpha in [0, 1], averaged over images.

    SAD is the sum of |pred - gt| over an image's unknown pixels (the Deep Image
    Matting paper divides it by 1000 for its 1080p images; these are tiny, so
    it is reported as is); MSE is the mean squared error over those pixels.
    """
    unknown = (trimap == 128).float()
    err = (pred.float() - alpha.float() / 255) * unknown
    sad = err.abs().sum((1, 2, 3))
    mse = err.pow(2).sum((1, 2, 3)) / unknown.sum((1, 2, 3)).clamp_min(1)
    return sad.mean().item(), mse.mean().item()


@torch.no_grad()
def predict(model, batch, device, chunk=32):
    model.eval()
    preds = []
    for i in range(0, batch["image"].shape[0], chunk):
        img = batch["image"][i:i + chunk].to(device)
        tri = batch["trimap"][i:i + chunk].to(device)
        preds.append(fuse_with_trimap(model(img, tri), tri).cpu())
    model.train()
    return torch.cat(preds)


def save_grid(path, batch, pred, rows=6, zoom=2):
    """PNG: one row per held-out sample; columns input / trimap / prediction / ground truth."""
    from PIL import Image, ImageDraw

    rows = min(rows, pred.shape[0])
    size = pred.shape[-1] * zoom
    pad, header = 4, 18
    cols = ("input", "trimap", "prediction", "ground truth")
    canvas = Image.new("RGB", (len(cols) * (size + pad) + pad, header + rows * (size + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(cols):
        draw.text((pad + j * (size + pad) + 2, 3), name, fill="black")

    def to_pil(t):  # (C,H,W) uint8 -> zoomed PIL image
        arr = t.expand(3, -1, -1).permute(1, 2, 0).contiguous().numpy()
        return Image.fromarray(arr).resize((size, size), Image.NEAREST)

    for i in range(rows):
        tiles = (batch["image"][i], batch["trimap"][i],
                 (pred[i] * 255).round().to(torch.uint8), batch["alpha"][i])
        for j, tile in enumerate(tiles):
            canvas.paste(to_pil(tile), (pad + j * (size + pad), header + i * (size + pad)))
    canvas.save(path)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1500, help="optimisation steps (default: 1500)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="crop size in pixels, a multiple of 8 (default: 64)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--wl", type=float, default=0.5, help="weight of the alpha term; 1 - wl goes to the compositional term")
    p.add_argument("--eval-samples", type=int, default=64, help="held-out composites (default: 64)")
    p.add_argument("--log-every", type=int, default=0, help="print every N steps (default: steps / 15)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="output folder for the PNG (default: examples/out)")
    args = p.parse_args(argv)
    if args.size % 8:
        p.error("--size must be a multiple of 8")
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)  # weight initialisation
    g = torch.Generator().manual_seed(args.seed)  # training data stream (built on the CPU)
    log_every = args.log_every or max(1, args.steps // 15)

    short_side = 3 * args.size  # a crop covers about a third of a photograph's short side
    train_photos = load_photos(TRAIN_PHOTOS, short_side)
    heldout_photos = load_photos(HELDOUT_PHOTOS, short_side)
    heldout = make_batch(heldout_photos, args.eval_samples, args.size, torch.Generator().manual_seed(EVAL_SEED))

    model = TinyMattingNet().to(device)
    n_params = sum(p.numel() for p in model.parameters())
    criterion = DIMLoss(wl=args.wl, reduction="mean")  # targets in 0..255: alpha_scale = color_scale = 255
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Short linear warm-up, then cosine decay to zero: a stable recipe for short runs.
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * i / args.steps)))

    print(f"device {device}, {n_params / 1e6:.2f} M parameters, {args.steps} steps of "
          f"{args.batch_size} x {args.size}x{args.size} composites (seed {args.seed})")
    print(f"train photos: {', '.join(TRAIN_PHOTOS)}; held-out photos: {', '.join(HELDOUT_PHOTOS)}")
    # 3 + 1 + 1 + 3 + 3 channels of targets per pixel, 1 byte each instead of 4.
    per_batch = 11 * args.batch_size * args.size ** 2
    print(f"targets per batch: {per_batch / 1024:.0f} KiB as uint8 ({4 * per_batch / 1024:.0f} KiB as float32)")

    start, running, count = time.perf_counter(), 0.0, 0
    for step in range(1, args.steps + 1):
        # All five targets are uint8; only the prediction is float.
        batch = make_batch(train_photos, args.batch_size, args.size, g)
        batch = {k: v.to(device) for k, v in batch.items()}
        pred = model(batch["image"], batch["trimap"])
        loss = criterion(pred_alpha=pred, alpha=batch["alpha"], trimap=batch["trimap"],
                         image=batch["image"], fg=batch["fg"], bg=batch["bg"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

        running, count = running + loss.item(), count + 1
        if step % log_every == 0 or step == args.steps:
            # the mean loss over the steps since the last line, the lr of this step
            elapsed = time.perf_counter() - start
            print(f"step {step:5d}/{args.steps}  loss {running / count:.4f}  "
                  f"lr {opt.param_groups[0]['lr']:.2e}  {elapsed:6.1f} s", flush=True)
            running, count = 0.0, 0
        sched.step()

    pred = predict(model, heldout, device)
    sad, mse = matting_errors(pred, heldout["alpha"], heldout["trimap"])
    # A trimap-only baseline puts 0.5 everywhere in the unknown region.
    base_sad, base_mse = matting_errors(fuse_with_trimap(torch.full_like(pred, 0.5), heldout["trimap"]),
                                        heldout["alpha"], heldout["trimap"])
    print(f"held-out ({args.eval_samples} composites of unseen photos and shapes), "
          f"unknown region, alpha in [0, 1]:")
    print(f"  baseline (0.5 in unknown): SAD {base_sad:.2f}  MSE {base_mse:.5f}")
    print(f"  trained network:           SAD {sad:.2f}  MSE {mse:.5f}")

    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "matting_example.png"
    save_grid(png, heldout, pred)
    print(f"saved {png}  (training and evaluation: {time.perf_counter() - start:.1f} s)")
    return sad, mse


if __name__ == "__main__":
    main()
