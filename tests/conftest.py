"""Shared test inputs. Every check compares with mattingloss.reference."""
import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def make_inputs(B=2, H=7, W=13, *, unknown="random", seed=0, dtype=torch.float64, device="cpu",
                target_dtype=None):
    """A batch in the seed's conventions: pred in [0,1], everything else 0..255.

    unknown: "random" (a mix of 0/128/255), "all", "none", "single" (one unknown pixel).
    Targets (alpha, trimap, image, fg, bg) hold integers, so they are exact in any dtype.
    """
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)
    alpha = torch.randint(0, 256, (B, 1, H, W), generator=g).double()
    if unknown == "random":
        trimap = torch.tensor([0.0, 128.0, 255.0], dtype=torch.float64)[torch.randint(0, 3, (B, 1, H, W), generator=g)]
        trimap[0, 0, 0, 0] = 128  # at least one unknown pixel: the seed divides by N
    else:
        trimap = torch.zeros(B, 1, H, W, dtype=torch.float64)
        if unknown == "all":
            trimap.fill_(128)
        elif unknown == "single":
            trimap[B - 1, 0, H - 1, W // 2] = 128
    image, fg, bg = (torch.randint(0, 256, (B, 3, H, W), generator=g).double() for _ in range(3))
    tdt = target_dtype or dtype
    return dict(
        pred_alpha=pred.to(dtype=dtype, device=device),
        alpha=alpha.to(dtype=tdt, device=device),
        trimap=trimap.to(dtype=tdt, device=device),
        image=image.to(dtype=tdt, device=device),
        fg=fg.to(dtype=tdt, device=device),
        bg=bg.to(dtype=tdt, device=device),
    )


def max_rel_err(actual, expected):
    """max|a - e| / max|e|: a relative error that is well defined for gradients with zeros."""
    actual, expected = actual.double().cpu(), expected.double().cpu()
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()
