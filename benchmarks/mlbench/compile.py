"""The ``compiled`` contender: ``torch.compile`` of a loss's eager code, once per case."""
from __future__ import annotations

from typing import Callable

import torch

from .cases import Case

_CACHE: dict[tuple, Callable] = {}


def compiled(fn: Callable, case: Case) -> Callable:
    """``torch.compile(fn, dynamic=False)``, one per (function, loss, size, dtype row, device).

    Every case is one more specialisation of the same code object: the recompile limit is
    raised so that dynamo never silently falls back to eager. The compilation itself happens
    on the first call, in the check against fused, never in the timed repetitions.
    """
    key = (fn, case.loss, case.size, case.dtype_name, str(next(iter(case.tensors.values())).device))
    if key not in _CACHE:
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), 256))
        _CACHE[key] = torch.compile(fn, dynamic=False)
    return _CACHE[key]
