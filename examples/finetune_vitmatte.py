#!/usr/bin/env python
"""Train Hugging Face's ``VitMatteForImageMatting`` with ``presets.vitmatte()``.

transformers ships the ViTMatte model but raises "Training is not yet
supported" when it is given labels: there is no loss. ``presets.vitmatte()`` is
ViTMatte's own training objective (hustvl/ViTMatte: unknown-region L1,
known-region L1, Laplacian-pyramid loss and Sobel gradient penalty, with its
normalisations), fused. This example builds a small ViTMatte from a config
(random initialisation, nothing downloaded), trains it on the procedural
composites of ``examples/train_matting.py`` (photographs bundled with
scikit-image, drawn alpha mattes, trimaps from ``make_trimap``), reports SAD
and MSE on held-out composites against a trimap-only baseline and saves a PNG.

Run::

    pip install "transformers>=4.40" scikit-image pillow   # or: pip install -e ".[hf]"
    python examples/finetune_vitmatte.py                 # about 1.5 minutes on a 2-core CPU
    python examples/finetune_vitmatte.py --steps 2000 --device cuda --out /tmp/vitmatte

The model sees what ViTMatte's image processor gives it: the image scaled to
[0, 1] and normalised with mean 0.5 and std 0.5, and the trimap in [0, 1],
stacked as 4 channels. The loss gets the ground-truth alpha in [0, 1] and the
trimap as ViTMatte's criterion reads it (0, 0.5, 1; unknown where == 0.5).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from mattingloss import presets

# The data, evaluation and picture of the DIMLoss example, reused as they are.
from train_matting import (EVAL_SEED, HELDOUT_PHOTOS, TRAIN_PHOTOS, fuse_with_trimap, load_photos, make_batch,
                           matting_errors, save_grid)


def small_vitmatte(size: int):
    """A ViTMatte of about 0.3 M parameters: a 2-layer ViTDet backbone (patch 16)
    and narrow ConvStream / fusion layers. Random initialisation."""
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting

    backbone = VitDetConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                            image_size=size, pretrain_image_size=size, patch_size=16, num_channels=4,
                            out_features=["stage2"])
    config = VitMatteConfig(backbone_config=backbone, hidden_size=64, convstream_hidden_sizes=[16, 32, 64],
                            fusion_hidden_sizes=[64, 32, 16, 16])
    return VitMatteForImageMatting(config)


def pixel_values(image_u8, trimap_u8):
    """What VitMatteImageProcessor makes of a uint8 image and trimap: (B, 4, H, W)."""
    image = (image_u8.float() / 255 - 0.5) / 0.5
    return torch.cat([image, trimap_u8.float() / 255], 1)


def criterion_trimap(trimap_u8):
    """ViTMatte's training trimap: 0 background, 0.5 unknown, 1 foreground."""
    return torch.where(trimap_u8 == 128, 0.5, trimap_u8.float() / 255)


@torch.no_grad()
def predict(model, batch, device, chunk=32):
    model.eval()
    preds = []
    for i in range(0, batch["image"].shape[0], chunk):
        img = batch["image"][i:i + chunk].to(device)
        tri = batch["trimap"][i:i + chunk].to(device)
        preds.append(fuse_with_trimap(model(pixel_values=pixel_values(img, tri)).alphas, tri).cpu())
    model.train()
    return torch.cat(preds)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps (default: 1000)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=64, help="crop size in pixels, a multiple of 32 (default: 64)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-samples", type=int, default=64, help="held-out composites (default: 64)")
    p.add_argument("--log-every", type=int, default=0, help="print every N steps (default: steps / 10)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="output folder for the PNG (default: examples/out)")
    args = p.parse_args(argv)
    if args.size % 32:
        p.error("--size must be a multiple of 32 (the Laplacian pyramid's 5 levels)")
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    log_every = args.log_every or max(1, args.steps // 10)

    short_side = 3 * args.size
    train_photos = load_photos(TRAIN_PHOTOS, short_side)
    heldout = make_batch(load_photos(HELDOUT_PHOTOS, short_side), args.eval_samples, args.size,
                         torch.Generator().manual_seed(EVAL_SEED))

    model = small_vitmatte(args.size).to(device)
    criterion = presets.vitmatte()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * i / args.steps)))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"device {device}, VitMatteForImageMatting with {n_params / 1e6:.2f} M parameters, {args.steps} steps "
          f"of {args.batch_size} x {args.size}x{args.size} composites (seed {args.seed})")
    print(f"loss: {criterion}")

    start = time.perf_counter()
    running = {}
    for step in range(1, args.steps + 1):
        batch = {k: v.to(device) for k, v in make_batch(train_photos, args.batch_size, args.size, g).items()}
        pred = model(pixel_values=pixel_values(batch["image"], batch["trimap"])).alphas
        out = criterion(pred, batch["alpha"].float() / 255, criterion_trimap(batch["trimap"]))
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        sched.step()
        for key, value in out.items():
            running[key] = running.get(key, 0.0) + value.item()
        if step % log_every == 0 or step == args.steps:
            n = log_every if step % log_every == 0 else step % log_every
            terms = "  ".join(f"{k} {v / n:.4f}" for k, v in running.items())
            print(f"step {step:5d}/{args.steps}  {terms}  {time.perf_counter() - start:6.1f} s", flush=True)
            running = {}

    pred = predict(model, heldout, device)
    sad, mse = matting_errors(pred, heldout["alpha"], heldout["trimap"])
    base_sad, base_mse = matting_errors(fuse_with_trimap(torch.full_like(pred, 0.5), heldout["trimap"]),
                                        heldout["alpha"], heldout["trimap"])
    print(f"held-out ({args.eval_samples} composites of unseen photos and shapes), "
          f"unknown region, alpha in [0, 1]:")
    print(f"  baseline (0.5 in unknown): SAD {base_sad:.2f}  MSE {base_mse:.5f}")
    print(f"  trained ViTMatte:          SAD {sad:.2f}  MSE {mse:.5f}")
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "vitmatte_example.png"
    save_grid(png, heldout, pred)
    print(f"saved {png}  (training and evaluation: {time.perf_counter() - start:.1f} s)")
    return sad, mse


if __name__ == "__main__":
    main()
