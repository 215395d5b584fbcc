"""torch.compile (no graph break, static and dynamic shapes) and CUDA graphs."""
import pytest
import torch

from mattingloss import DIMLoss, dim_loss

from conftest import make_inputs, max_rel_err


class TinyMattingNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, image, trimap):
        return torch.sigmoid(self.conv(torch.cat([image / 255.0, trimap / 255.0], 1)))


def training_step(model, criterion, x):
    pred = model(x["image"], x["trimap"])
    loss = criterion(pred_alpha=pred, alpha=x["alpha"], trimap=x["trimap"], image=x["image"], fg=x["fg"], bg=x["bg"])
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in model.parameters()]


def fresh(device, dtype=torch.float32):
    torch.manual_seed(0)
    return TinyMattingNet().to(device=device, dtype=dtype)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compiled_training_step_no_graph_break(device, dynamic):
    criterion = DIMLoss()
    x = make_inputs(2, 16, 16, dtype=torch.float32, device=device)
    model = fresh(device)

    def loss_fn(model, x):
        pred = model(x["image"], x["trimap"])
        return criterion(pred_alpha=pred, alpha=x["alpha"], trimap=x["trimap"], image=x["image"], fg=x["fg"], bg=x["bg"])

    explanation = torch._dynamo.explain(loss_fn)(model, x)
    assert explanation.graph_break_count == 0, explanation.break_reasons

    eager_loss, eager_grads = training_step(model, criterion, x)
    compiled = fresh(device)
    step = torch.compile(lambda m, x: loss_fn(m, x), fullgraph=True, dynamic=dynamic)
    for size in (16, 24) if dynamic else (16,):
        x = make_inputs(2, size, size + 2, dtype=torch.float32, device=device)
        model = fresh(device)
        eager_loss, eager_grads = training_step(model, criterion, x)
        compiled = fresh(device)
        loss = step(compiled, x)
        loss.backward()
        assert max_rel_err(loss, eager_loss) <= 1e-6
        for p, g in zip(compiled.parameters(), eager_grads):
            assert max_rel_err(p.grad, g) <= 1e-5


def test_functional_form_compiles_fullgraph(device):
    x = make_inputs(2, 8, 8, dtype=torch.float32, device=device)
    fn = torch.compile(lambda x: dim_loss(**x, reduction="sample", wl=0.3, unknown_range=(100, 150)), fullgraph=True)
    assert max_rel_err(fn(x), dim_loss(**x, reduction="sample", wl=0.3, unknown_range=(100, 150))) <= 1e-6


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_no_host_sync_in_loss_path():
    x = make_inputs(4, 64, 64, dtype=torch.float32, device="cuda")
    x["pred_alpha"].requires_grad_()
    x["fg"].requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for reduction in ("mean", "sample", "sum", "none"):
            loss = dim_loss(**x, reduction=reduction)
            loss.sum().backward()
        dim_loss(x["pred_alpha"], x["alpha"], weight=torch.ones_like(x["alpha"]), check_weight=False).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
def test_reduce_overhead_matches_eager():
    criterion = DIMLoss()
    x = make_inputs(4, 32, 32, dtype=torch.float32, device="cuda")
    model = fresh("cuda")
    eager_loss, eager_grads = training_step(model, criterion, x)
    compiled_model = fresh("cuda")
    step = torch.compile(lambda m, x: criterion(pred_alpha=m(x["image"], x["trimap"]), alpha=x["alpha"], trimap=x["trimap"],
                                                image=x["image"], fg=x["fg"], bg=x["bg"]), mode="reduce-overhead", fullgraph=True)
    for _ in range(3):  # warm-up runs, then graph replays
        compiled_model.zero_grad(set_to_none=True)
        loss = step(compiled_model, x)
        loss.backward()
    assert max_rel_err(loss, eager_loss) <= 1e-6
    for p, g in zip(compiled_model.parameters(), eager_grads):
        assert max_rel_err(p.grad, g) <= 1e-5


@cuda
def test_manual_cuda_graph_capture_and_replay():
    x = make_inputs(4, 32, 32, dtype=torch.float32, device="cuda")
    pred = x.pop("pred_alpha").clone().requires_grad_()
    static = {k: v.clone() for k, v in x.items()}
    # The reference on its own leaf: autograd caches a leaf's stream when it first
    # enters a graph, and a leaf first used on the legacy default stream cannot
    # join a capture (cudaErrorStreamCaptureImplicit, pytorch/pytorch#180090).
    # pred's first graph is the warm-up's, on the side stream, as CUDA graphs need.
    reference = pred.detach().clone().requires_grad_()
    eager_loss = dim_loss(reference, **x)
    (eager_grad,) = torch.autograd.grad(eager_loss, reference)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            pred.grad = None
            dim_loss(pred, **static).backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    pred.grad = None
    with torch.cuda.graph(graph):
        static_loss = dim_loss(pred, **static)
        static_loss.backward()
    for k in static:  # new data into the static inputs, then replay
        static[k].copy_(x[k])
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(static_loss, eager_loss)
    assert torch.equal(pred.grad, eager_grad)
