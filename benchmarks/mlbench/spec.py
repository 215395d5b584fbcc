"""LossBench: everything the benchmark needs to know about one loss (see losses/dim.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .cases import Case, inputs_plus_gradient

# A contender: given a Case, a no-argument callable computing the loss (graph attached) --
# or, for an op with no gradient, its output.
ContenderFactory = Callable[[Case], Callable[[], torch.Tensor]]
GRADIENT_MODES = ("forward", "backward", "full")
PRESETS = ("quick", "default", "full")


@dataclass(frozen=True)
class LossBench:
    """What a loss file declares. Adding a loss = one file building one of these + one line
    in losses/__init__.py.

    name         what ``--loss`` selects and the results' ``loss`` column says
    title        one line for the chart and the summary
    make_case    ``(size "BxHxW", dtype row, device) -> Case`` (see cases.make_case)
    contenders   name -> factory, in the order they are reported; must include ``fused``
    fused        the contender every other is checked against and compared with: the
                 project's kernel (``"fused"``), or the project's function for an op
    cases        preset -> [(size, dtype row)]: ``quick`` (CI, < 1 min for all losses),
                 ``default`` (the representative subset: all losses in <= 3 min on 2 cores),
                 ``full`` (the whole grid; on CUDA >= one case of >= 4M pixels, both rows);
                 a key ``"<preset>/cuda"`` replaces ``<preset>`` on a GPU (see cases_for)
    bytes_moved  ``(case, mode) -> bytes`` the loss must move at least (for GB/s, % of copy)
    check        ``(case, contender, got, expected) -> str``; got/expected are (value, grad)
                 pairs (grad None for an op); raises MismatchError (see check.py)
    modes        forward/backward/full for a loss with a gradient; ``("forward",)`` for an op
    targets      optional ``(device_type, summary entries) -> [target dicts]`` (report.py)
    leave_out    preset -> contenders not run in it unless ``--contenders`` names them: e.g.
                 ``{"default": ("compiled",)}`` where torch.compile of the loss's graph takes a
                 minute on 2 cores and the default run must stay within 3 minutes
    """

    name: str
    title: str
    make_case: Callable[[str, str, torch.device], Case]
    contenders: dict[str, ContenderFactory]
    cases: dict[str, list[tuple[str, str]]]
    check: Callable
    fused: str = "fused"
    bytes_moved: Callable[[Case, str], int] = inputs_plus_gradient
    modes: tuple[str, ...] = GRADIENT_MODES
    targets: Optional[Callable] = None
    leave_out: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        if self.fused not in self.contenders:
            raise ValueError(f"{self.name}: contenders {list(self.contenders)} lack {self.fused!r}")
        missing = [p for p in PRESETS if not self.cases.get(p)]
        if missing:
            raise ValueError(f"{self.name}: no cases for preset(s) {missing}")

    def cases_for(self, preset: str, device_type: str) -> list[tuple[str, str]]:
        return self.cases.get(f"{preset}/{device_type}", self.cases[preset])

    @property
    def summary_mode(self) -> str:
        """The mode the summary and the chart compare: forward + backward when there is one."""
        return "full" if "full" in self.modes else self.modes[0]

    @property
    def dtypes(self) -> list[str]:
        return list(dict.fromkeys(d for grid in self.cases.values() for _, d in grid))
