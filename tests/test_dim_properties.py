"""Property-based: random shapes, dtypes, conventions and reductions against the oracle."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mattingloss import dim_loss
from mattingloss.reference import dim_loss_reference

from conftest import DEVICES, alpha_as_read, max_rel_err, well_conditioned

case = st.fixed_dictionaries(
    dict(
        B=st.integers(1, 3),
        H=st.integers(1, 40),
        W=st.integers(1, 40),
        seed=st.integers(0, 2**31 - 1),
        pred_dtype=st.sampled_from([torch.float32, torch.float64]),
        target_dtype=st.sampled_from([torch.uint8, torch.float32, torch.float64]),
        scale=st.sampled_from([255.0, 1.0]),
        mask=st.sampled_from(["equal", "range", "weight"]),
        reduction=st.sampled_from(["mean", "sample", "sum", "none"]),
        wl=st.floats(0.0, 1.0),
        eps=st.sampled_from([1e-6, 1e-3]),
        comp=st.booleans(),
        grad_fg_bg=st.booleans(),
        device=st.sampled_from(DEVICES),
    )
)


@settings(max_examples=400, deadline=None)
@given(case)
def test_matches_oracle(c):
    g = torch.Generator().manual_seed(c["seed"])
    B, H, W = c["B"], c["H"], c["W"]
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)

    def target(channels):
        """(as passed to dim_loss, the same values in float64 for the oracle)."""
        values = torch.randint(0, 256, (B, channels, H, W), generator=g).double()
        if c["target_dtype"] == torch.uint8:
            low = values.to(torch.uint8)  # uint8 holds 0..255 only: scale stays 255
        else:
            low = (values / 255.0 * c["scale"]).to(c["target_dtype"])
        return low, low.double()

    alpha, alpha64 = target(1)
    scale = 255.0 if c["target_dtype"] == torch.uint8 else c["scale"]
    t = torch.tensor([0.0, 128.0, 255.0], dtype=torch.float64)[torch.randint(0, 3, (B, 1, H, W), generator=g)]
    kwargs = dict(alpha_scale=scale, color_scale=scale, reduction=c["reduction"], wl=c["wl"], eps=c["eps"])
    if c["mask"] == "weight":
        mask64 = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
        masks = dict(weight=mask64.to(c["target_dtype"] if c["target_dtype"] != torch.uint8 else torch.float32))
    else:
        mask64 = t
        masks = dict(trimap=t.to(c["target_dtype"]))
        if c["mask"] == "range":
            kwargs["unknown_range"] = (85, 170)
    acc = torch.float64 if c["pred_dtype"] == torch.float64 else torch.float32
    exact = dict(alpha=alpha_as_read(alpha.double(), scale, acc), **{k: v.double() for k, v in masks.items()})
    low = dict(alpha=alpha, **masks)
    if c["comp"]:
        for name in ("image", "fg", "bg"):
            low[name], exact[name] = target(3)
    dev = c["device"]
    grads_of = ["pred_alpha"] + (["fg", "bg"] if c["comp"] and c["grad_fg_bg"] and c["target_dtype"] != torch.uint8 else [])

    def run(fn, inputs, pred_value, **overrides):
        x = {k: v.to(dev) for k, v in inputs.items()}
        x["pred_alpha"] = pred_value.to(dev)
        for k in grads_of:
            x[k] = x[k].detach().clone().requires_grad_()
        loss = fn(**x, **{**kwargs, **overrides})
        return loss, torch.autograd.grad(loss, [x[k] for k in grads_of], torch.ones_like(loss))

    loss, grads = run(dim_loss, low, pred.to(c["pred_dtype"]))
    want, want_grads = run(dim_loss_reference, exact, pred.to(c["pred_dtype"]).double())
    tol = 1e-10 if acc == torch.float64 else 1e-5
    assert max_rel_err(loss, want) <= tol
    keep = torch.ones(B, 1, H, W, dtype=torch.bool)
    if acc == torch.float32:  # leave out the pixels where float32 itself is ill-conditioned
        keep = well_conditioned(pred.to(c["pred_dtype"]), exact["alpha"], c["eps"], scale,
                                exact.get("image"), exact.get("fg"), exact.get("bg"), scale)
    # The comp part of d(loss)/d(pred) sums signed per-channel terms that can cancel to
    # ~0 (relative error then means nothing), so the pred gradient's error is measured
    # against the larger of its own size and the alpha-term gradient's (|slope| <= 1).
    _, (alpha_grad, *_) = run(dim_loss_reference, exact, pred.to(c["pred_dtype"]).double(), wl=1.0)
    mask = keep.to(dev)
    assert max_rel_err(grads[0][mask], want_grads[0][mask], at_least=alpha_grad[mask]) <= tol
    for got, exp in zip(grads[1:], want_grads[1:]):
        mask = keep.expand_as(exp).to(exp.device)
        # a float32 fg/bg gets a float32 gradient: rounded when stored, then scaled by
        # 1/N in float32 (the factor and the product rounded too): 3 roundings of 2^-24
        grad_tol = tol if got.dtype == torch.float64 else max(tol, 4 * 2.0**-24)
        assert max_rel_err(got[mask], exp[mask]) <= grad_tol
