#!/usr/bin/env python
"""Benchmark of RVM's L1 + temporal-coherence terms: the fused op against our
eager reference of RVM's matting_loss (those four terms) and its torch.compile.

Every contender computes pha_l1, pha_coherence, fgr_l1, fgr_coherence and the
gradient of their sum w.r.t. pred_fgr and pred_pha (forward + backward, timed
together; fresh .grad each repetition). Rows of one case take turns in rounds
so that drift of a shared machine hits them alike; the figure is the median
(the minimum is printed too: on a loaded machine it is the steadier one).
The ``copy`` row is the bandwidth yardstick: ``dst.copy_(src)`` of as many bytes
as the fused forward must move (every input read once, both gradients written
once); bandwidth = 2 x bytes / time. The fused row's percentage is of that,
for its forward's minimum traffic (the backward's in-place scaling of the two
gradients is extra traffic, reported separately).

    python benchmarks/bench_temporal.py [--B 2 --T 4 --H 288 --W 512] [--device cpu]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mattingloss.reference.rvm import rvm_matting_loss  # noqa: E402
from mattingloss.temporal import video_matting_losses  # noqa: E402


def four_terms_reference(pf, pp, tf, tp):
    out = rvm_matting_loss(pf, pp, tf, tp)
    return out["total"]


def fused(pf, pp, tf, tp):
    return video_matting_losses(pf, pp, tf, tp)["total"]


def make(B, T, H, W, pred_dtype, target_dtype, device):
    g = torch.Generator().manual_seed(0)
    pf = torch.rand(B, T, 3, H, W, generator=g)
    pp = torch.rand(B, T, 1, H, W, generator=g)
    tf = torch.rand(B, T, 3, H, W, generator=g)
    tp = torch.rand(B, T, 1, H, W, generator=g)
    tp[tp < 0.3] = 0
    if target_dtype == torch.uint8:
        tf, tp = (tf * 255).round().to(torch.uint8), (tp * 255).round().to(torch.uint8)
    return [t.to(device) for t in (pf.to(pred_dtype), pp.to(pred_dtype))] + [tf.to(device), tp.to(device)]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--H", type=int, default=288)
    ap.add_argument("--W", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=6, help="repetitions per row per round")
    args = ap.parse_args()
    dev = args.device
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}, "
          f"load average {os.getloadavg()}")
    cases = [(torch.float32, torch.float32), (torch.bfloat16, torch.float32), (torch.float32, torch.uint8)]
    for pred_dtype, target_dtype in cases:
        pf, pp, tf, tp = make(args.B, args.T, args.H, args.W, pred_dtype, target_dtype, dev)
        scale = 255.0 if target_dtype == torch.uint8 else 1.0
        tf_ref, tp_ref = (tf.float() / 255, tp.float() / 255) if target_dtype == torch.uint8 else (tf, tp)

        def fused_run(pf, pp):
            return video_matting_losses(pf, pp, tf, tp, true_fgr_scale=scale, true_pha_scale=scale)["total"]

        def ref_run(pf, pp):
            return four_terms_reference(pf, pp, tf_ref, tp_ref)

        t0 = time.perf_counter()
        compiled = torch.compile(ref_run, dynamic=False)
        contenders = {"fused": fused_run, "eager": ref_run, "compiled": compiled}
        # check before timing, and warm up (compiles)
        results = {}
        for name, fn in contenders.items():
            a, b = pf.clone().requires_grad_(), pp.clone().requires_grad_()
            loss = fn(a, b)
            loss.backward()
            results[name] = (loss.detach().double(), a.grad.double(), b.grad.double())
        compile_s = time.perf_counter() - t0
        ref = results["eager"]
        for name, r in results.items():
            for x, y in zip(r, ref):
                err = ((x - y).abs().max() / y.abs().max()).item()
                assert err < (2e-2 if pred_dtype == torch.bfloat16 else 1e-4), (name, err)

        elem = args.B * args.T * args.H * args.W
        pb, tb = pf.element_size(), tf.element_size()
        traffic = elem * 4 * (2 * pb + tb)  # 4 channels: preds read, targets read, gradients written
        backward_traffic = elem * 4 * 2 * pb  # in-place scaling of both gradients
        src = torch.empty(traffic // 4, dtype=torch.float32, device=dev)
        dst = torch.empty_like(src)

        def timed(fn):
            if fn is None:
                sync(dev)
                s = time.perf_counter_ns()
                dst.copy_(src)
                sync(dev)
                return time.perf_counter_ns() - s
            a, b = pf.clone().requires_grad_(), pp.clone().requires_grad_()
            sync(dev)
            s = time.perf_counter_ns()
            fn(a, b).backward()
            sync(dev)
            return time.perf_counter_ns() - s

        rows = {"copy": None, **contenders}
        times = {k: [] for k in rows}
        for name, fn in rows.items():
            timed(fn)
        for _ in range(args.rounds):
            for name, fn in rows.items():
                times[name] += [timed(fn) for _ in range(args.reps)]
        med = {k: statistics.median(v) / 1e6 for k, v in times.items()}
        q = {k: statistics.quantiles(v, n=5) for k, v in times.items()}
        copy_bw = 2 * traffic / (med["copy"] / 1e3)
        print(f"\nB={args.B} T={args.T} {args.H}x{args.W} preds {pred_dtype} targets {target_dtype} "
              f"(compile+check {compile_s:.1f} s); fwd traffic {traffic / 1e6:.1f} MB, "
              f"backward scaling {backward_traffic / 1e6:.1f} MB; load average {os.getloadavg()}")
        for name in rows:
            lo, hi = q[name][0] / 1e6, q[name][-1] / 1e6
            extra = ""
            if name == "copy":
                extra = f"  {copy_bw / 1e9:.1f} GB/s"
            elif name == "fused":
                bw = traffic / (med[name] / 1e3)
                extra = (f"  {bw / 1e9:.1f} GB/s of forward traffic = {100 * bw / copy_bw:.0f}% of copy; "
                         f"{100 * (traffic + backward_traffic) / (med[name] / 1e3) / copy_bw:.0f}% counting "
                         "the backward's scaling")
            else:
                extra = f"  fused is {med[name] / med['fused']:.1f}x faster"
            print(f"  {name:9s} {med[name]:9.2f} ms  (min {min(times[name]) / 1e6:.2f}, p20 {lo:.2f}, p80 {hi:.2f})"
                  f"{extra}")


if __name__ == "__main__":
    main()
