"""Sizes, dtype rows, realistic matting inputs and the Case a loss is timed on."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

UNKNOWN_FRACTION = 0.3  # share of pixels the trimap marks unknown

# dtype row -> (dtype of pred, dtype of every other input). A loss lists the rows it supports.
DTYPE_ROWS = {
    "float32": (torch.float32, torch.float32),
    "bf16+uint8": (torch.bfloat16, torch.uint8),  # a mixed-precision net, targets as stored
    "bf16": (torch.bfloat16, torch.float32),  # a mixed-precision net, targets as a pipeline holds them
    "uint8": (None, torch.uint8),  # no prediction: e.g. trimap generation from an alpha matte
}
MATTING_INPUTS = ("pred", "alpha", "trimap", "image", "fg", "bg")


def parse_size(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r} is not BxHxW")
    return tuple(int(v) for v in match.groups())


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    sizes = [parse_size(s) for s in text.split(",") if s.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given")
    return sizes


def size_str(size) -> str:
    return "x".join(map(str, size))


def grid(sizes: str, dtypes) -> list[tuple[str, str]]:
    """``grid("16x320x320,1x2048x2048", ("float32",))`` -> every (size, dtype row) pair."""
    return [(size_str(s), d) for s in parse_sizes(sizes) for d in dtypes]


@dataclass
class Case:
    """One (size, dtype row) of one loss, with its input tensors.

    ``tensors`` holds the inputs by name in the order the loss takes them; ``pred`` (when the
    loss has one) requires grad, and the gradient the benchmark checks and times is its.
    ``extras`` holds what only the reference contenders read, built once with the case (never
    inside a timed call) and not counted in the loss's traffic: e.g. the float [0, 1] copy of
    a uint8 target that the fused kernel reads as stored (a code base's pipeline holds float
    targets). ``ref(name)`` is that copy where there is one, else the tensor itself.
    """

    loss: str
    batch: int
    height: int
    width: int
    dtype_name: str
    tensors: dict[str, torch.Tensor] = field(repr=False)
    extras: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> str:
        return f"{self.batch}x{self.height}x{self.width}"

    @property
    def label(self) -> str:
        return f"{self.loss} {self.size} {self.dtype_name}"

    @property
    def pred(self) -> torch.Tensor | None:
        return self.tensors.get("pred")

    @property
    def grad_bytes(self) -> int:
        """Size of the gradient w.r.t. ``pred`` (0 for an op without one)."""
        p = self.pred
        return 0 if p is None else p.numel() * p.element_size()

    @property
    def input_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def ref(self, name: str) -> torch.Tensor:
        """The reference contenders' copy of input ``name`` (see ``extras``)."""
        return self.extras[name] if name in self.extras else self.tensors[name]


def make_alpha_and_trimap(batch, height, width, generator):
    """Blurred random blobs: an alpha 0..255 with a soft band and a 0/128/255 trimap.

    A smooth random field (low-resolution noise, bicubic upsampling) is thresholded at zero;
    the trimap's unknown band is ``|field| < t`` with ``t`` chosen so that UNKNOWN_FRACTION of
    each sample is unknown; alpha ramps from 0 to 1 across the inner 60 % of that band and is
    exactly 0 or 1 elsewhere, so the unknown region also holds some definite pixels, like a
    dilated trimap does. Returns float32 CPU tensors (alpha rounded to integers).
    """
    cell = 40
    low = torch.randn(batch, 1, height // cell + 2, width // cell + 2, generator=generator)
    field_ = F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)
    flat = field_.abs().reshape(batch, -1)
    k = max(1, int(UNKNOWN_FRACTION * flat.shape[1]))
    band = flat.kthvalue(k, dim=1).values.view(batch, 1, 1, 1)
    alpha = (0.5 + 0.5 * field_ / (0.6 * band)).clamp(0.0, 1.0)
    alpha255 = (alpha * 255.0).round()
    trimap = torch.where(field_.abs() < band, 128.0, torch.where(field_ > 0, 255.0, 0.0))
    return alpha255, trimap


def matting_inputs(batch, height, width, seed=0) -> dict[str, torch.Tensor]:
    """float32 CPU tensors in the seed's conventions: ``pred`` in [0, 1] (alpha plus noise),
    ``alpha``, ``trimap``, ``image`` = composite of ``fg`` over ``bg``, all 0..255 integers."""
    gen = torch.Generator().manual_seed(seed)
    alpha255, trimap = make_alpha_and_trimap(batch, height, width, gen)
    fg = torch.randint(0, 256, (batch, 3, height, width), generator=gen).float()
    bg = torch.randint(0, 256, (batch, 3, height, width), generator=gen).float()
    a = alpha255 / 255.0
    image = (a * fg + (1.0 - a) * bg).round().clamp(0, 255)
    noise = 0.05 * torch.randn(batch, 1, height, width, generator=gen)
    pred = (a + noise).clamp(0.0, 1.0)
    return {"pred": pred, "alpha": alpha255, "trimap": trimap, "image": image, "fg": fg, "bg": bg}


def make_case(loss: str, size, dtype_name: str, device, names=MATTING_INPUTS, seed=0) -> Case:
    """The Case of ``loss`` with the inputs ``names`` (a subset of MATTING_INPUTS, in the
    loss's argument order) in ``dtype_name``'s dtypes on ``device``."""
    batch, height, width = parse_size(size) if isinstance(size, str) else size
    if dtype_name not in DTYPE_ROWS:
        raise ValueError(f"dtype row {dtype_name!r} not in {', '.join(DTYPE_ROWS)}")
    pred_dtype, data_dtype = DTYPE_ROWS[dtype_name]
    if "pred" in names and pred_dtype is None:
        raise ValueError(f"dtype row {dtype_name!r} has no dtype for pred")
    if set(names) <= {"alpha", "trimap"}:  # skip generating what is not used
        alpha255, trimap = make_alpha_and_trimap(batch, height, width, torch.Generator().manual_seed(seed))
        data = {"alpha": alpha255, "trimap": trimap}
    else:
        data = matting_inputs(batch, height, width, seed)
    tensors = {}
    for name in names:
        dtype = pred_dtype if name == "pred" else data_dtype
        tensors[name] = data[name].to(dtype).to(device).contiguous()
    if "pred" in tensors:
        tensors["pred"].requires_grad_(True)
    return Case(loss, batch, height, width, dtype_name, tensors)


def inputs_plus_gradient(case: Case, mode: str) -> int:
    """The bytes a loss must move: ``forward``/``full``, every input read once in its dtype
    plus the gradient written once; ``backward``, the gradient read once and written once."""
    if mode == "backward":
        return 2 * case.grad_bytes
    return case.input_bytes + case.grad_bytes
