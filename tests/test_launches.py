"""Launch budgets: the ops one forward + backward dispatches (each at least one kernel
launch on CUDA, views aside), counted on the CPU by benchmarks/mlbench/launches.py. A
count is deterministic; this is no timed test. Budgets from issue 27: DIM, composition,
the alpha loss and ViTMatte's trio <= 3, the Laplacian <= 4 at any level count,
presets.vitmatte() <= 5, presets.rvm() <= 6; and no default path reads a value to the
host (no .item(), no bool(tensor)): on CUDA each would be a sync."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch

import mattingloss
from mattingloss import presets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from mlbench import launches  # noqa: E402

SYNCS = {"aten._local_scalar_dense", "aten.item", "aten.is_nonzero"}


def counted(call, inputs):
    """(forward ops, backward ops) of one call of `call()` (a loss, a (total, ...) tuple
    or a preset's dict) and its backward w.r.t. `inputs`; the grad seed is made outside."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        call()  # once-per-process work (the trimap convention check) stays out of the count
    out = {}
    forward = launches.ops(lambda: None, lambda _: out.setdefault("v", call()))
    total = out["v"]
    total = total["total"] if isinstance(total, dict) else total[0] if isinstance(total, tuple) else total
    seed = torch.ones_like(total)
    backward = launches.ops(lambda: None, lambda _: torch.autograd.grad(total, inputs, seed))
    return forward, backward


def batch(B=2, H=64, W=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    pred = r(B, 1, H, W).requires_grad_()
    trimap = torch.randint(0, 3, (B, 1, H, W), generator=g).double() * 127.5
    return dict(pred=pred, alpha=r(B, 1, H, W), trimap=trimap, trimap01=trimap / 255, weight=(r(B, 1, H, W) > 0.5).double(),
                image=r(B, 3, H, W), fg=r(B, 3, H, W), bg=r(B, 3, H, W))


def cases():
    x = batch()
    p, a, t01, w = x["pred"], x["alpha"], x["trimap01"], x["weight"]
    a255, t255 = a * 255, x["trimap"].round()
    img255, fg255, bg255 = x["image"] * 255, x["fg"] * 255, x["bg"] * 255
    dim_sample = mattingloss.DIMLoss(reduction="sample")
    yield "dim_loss", 3, lambda: mattingloss.dim_loss(p, a255, t255, img255, fg255, bg255), [p]
    yield "DIMLoss(sample)", 3, lambda: dim_sample(p, a255, t255, img255, fg255, bg255), [p]
    yield "composition_loss", 3, lambda: mattingloss.composition_loss(p, img255, fg255, bg255, t255,
                                                                      color_scale=255.0), [p]
    # weight= reads the weights' sign by default (check_weight): the count without that check
    yield "composition_loss(weight)", 3, lambda: mattingloss.composition_loss(
        p, x["image"], x["fg"], x["bg"], weight=w, check_weight=False), [p]
    yield "alpha_loss", 3, lambda: mattingloss.alpha_loss(p, a, t01, unknown_value=0.5), [p]
    yield "alpha_loss(weight)", 3, lambda: mattingloss.alpha_loss(p, a, weight=w, check_weight=False), [p]
    yield "vitmatte_alpha_losses", 3, lambda: mattingloss.vitmatte_alpha_losses(p, a, t01), [p]
    yield "gradient_loss", 3, lambda: mattingloss.gradient_loss(p, a, t01, unknown_value=0.5), [p]
    for levels in range(1, 6):
        yield f"laplacian_loss(levels={levels})", 4, lambda levels=levels: mattingloss.laplacian_loss(
            p, a, levels=levels), [p]
    yield "laplacian_loss(mgmatting, weight)", 4, lambda: mattingloss.laplacian_loss(
        p, a, w, convention="mgmatting"), [p]
    yield "presets.vitmatte", 5, lambda: presets.vitmatte()(p, a, t01), [p]
    v = batch(B=2, seed=1)
    frames = [t.view(2, 1, *t.shape[1:]).expand(2, 3, *t.shape[1:]).contiguous()
              for t in (v["fg"], v["pred"].detach(), v["image"], v["alpha"])]
    fgr, pha = frames[0].requires_grad_(), frames[1].requires_grad_()
    yield "presets.rvm", 6, lambda: presets.rvm()(fgr, pha, frames[2], frames[3]), [fgr, pha]


CASES = list(cases())


@pytest.mark.parametrize("name, budget, call, inputs", CASES, ids=[c[0] for c in CASES])
def test_forward_and_backward_within_the_launch_budget(name, budget, call, inputs):
    forward, backward = counted(call, inputs)
    assert len(forward) + len(backward) <= budget, (forward, backward)


def presets_and_losses():
    x = batch()
    p, a, w, img, fg, bg = (x[k] for k in ("pred", "alpha", "weight", "image", "fg", "bg"))
    a255, t255, t_norm = a * 255, x["trimap"].round(), x["trimap"].round() / 255
    img255, fg255, bg255 = img * 255, fg * 255, bg * 255
    yield from ((c[0], c[2], c[3]) for c in CASES)
    yield "presets.matteformer", lambda: presets.matteformer()(p, a, w, img, fg, bg), [p]
    yield "presets.gca", lambda: presets.gca(comp_weight=1.0, smooth_l1_weight=1.0, grad_weight=1.0)(
        p, a, w, img, fg, bg), [p]
    yield "presets.dim", lambda: presets.dim()(p, a255, t255, img255, fg255, bg255), [p]
    yield "presets.mmagic_dim", lambda: presets.mmagic_dim()(p, a, t_norm, fg, bg, img), [p]


SYNC_CASES = list(presets_and_losses())


@pytest.mark.parametrize("name, call, inputs", SYNC_CASES, ids=[c[0] for c in SYNC_CASES])
def test_no_host_read_in_the_default_path(name, call, inputs):
    forward, backward = counted(call, inputs)
    assert not SYNCS & set(forward + backward), (forward, backward)


def test_a_check_that_reads_values_is_seen():
    """The sync check can fail: check_weight=True reads the weights (one host read)."""
    x = batch()
    forward, _ = counted(lambda: mattingloss.alpha_loss(x["pred"], x["alpha"], weight=x["weight"],
                                                        check_weight=True), [x["pred"]])
    assert "aten._local_scalar_dense" in forward


def test_counts_every_op_views_included():
    """launches.ops sees every dispatched op; launches.launches leaves out views only."""
    x = torch.ones(4)
    names = launches.ops(lambda: None, lambda _: (x + 1).view(2, 2).unbind())
    assert names == ["aten.add", "aten.view", "aten.unbind"]
    assert launches.launches(names) == 1
