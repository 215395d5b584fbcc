"""Shared test inputs. Every check compares with mattingloss.reference."""
import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def available_gib():
    """Free memory in GiB (MemAvailable), for the tests of 64-bit offsets that need 13-17 GiB."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return 0.0


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


def max_rel_err(actual, expected, at_least=None):
    """max|a - e| / max|e|: a relative error that is well defined for gradients with zeros.

    at_least: a tensor whose max |value| also bounds the denominator from below, for
    quantities that may cancel to ~0 (where a relative error means nothing).
    """
    actual, expected = actual.double().cpu(), expected.double().cpu()
    if expected.numel() == 0:
        return 0.0
    scale = expected.abs().max()
    if at_least is not None:
        scale = torch.maximum(scale, at_least.double().cpu().abs().max())
    return ((actual - expected).abs().max() / scale.clamp_min(1e-300)).item()


def alpha_as_read(alpha, scale=255.0, acc_dtype=torch.float32):
    """The ground truth as the float32 kernels see it: alpha/scale rounded to float32.

    Near p == a the gradient (p - a)/sqrt((p - a)^2 + eps^2) amplifies any rounding of a
    by up to 1/eps (1e6 for the default eps), so an oracle in float64 must start from the
    same rounded a to test the kernel's arithmetic, not the conditioning of the loss.
    """
    if acc_dtype == torch.float64:
        return alpha.double()
    return (alpha.double() / scale).float().double() * scale


def well_conditioned(pred, alpha, eps, alpha_scale=255.0, image=None, fg=None, bg=None, color_scale=255.0):
    """(B,1,H,W) mask of the pixels where a float32 gradient can be compared tightly.

    The derivative of sqrt(d^2 + eps^2) is d / sqrt(d^2 + eps^2); its sensitivity to d is
    eps^2 / r^3, up to 1/eps at d = 0. A float32 computation of d (the alpha difference,
    or the composite minus the image) carries a rounding error of about 1e-7 of its
    operands, so where |d| < (scale * eps^2)^(1/3) float32 rounding alone can move the
    gradient by more than 1e-6 of its range: the loss is ill-conditioned there, whatever
    the implementation. Those pixels are left out of the elementwise float32 check.
    """
    p = pred.double()
    ok = (p - alpha.double() / alpha_scale).abs() >= 2 * eps ** (2 / 3)
    if image is not None:
        d = p * fg.double() + (1 - p) * bg.double() - image.double()
        ok &= (d.abs() >= 2 * (color_scale * eps**2) ** (1 / 3)).all(1, keepdim=True)
    return ok
