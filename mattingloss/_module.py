"""The base of every public loss Module: options at construction, tensors at call."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import _args


class OptionsModule(torch.nn.Module):
    """An nn.Module that remembers its constructor's options for its repr."""

    def __init__(self, **options):
        super().__init__()
        self._options = options

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options.items())


class LossModule(OptionsModule):
    """A loss whose options are checked once, at construction, so that a bad option
    fails there and not mid-training.

    ``make(**options, **variant)`` checks the options into what a call needs (a
    config); ``variants`` are the kinds of call the module accepts (say, with a
    trimap and with weight=), the first of which must accept the options. A
    variant the options rule out (weight= with unknown_value, say) raises, with
    make's own message, when a call asks for it.
    """

    def __init__(self, make: Callable, variants: Sequence[dict] = ({},), *, check_weight: bool = True,
                 **options):
        super().__init__(**options)
        self.check_weight = _args.boolean("check_weight", check_weight)
        self._make = make
        self._configs = {}
        for i, variant in enumerate(variants):
            try:
                config = make(**options, **variant)
            except ValueError:
                if i == 0:
                    raise
                config = None
            self._configs[tuple(sorted(variant.items()))] = config

    def config(self, **variant):
        # One keyword per call in every module: its items are already in sorted order.
        key = tuple(variant.items()) if len(variant) < 2 else tuple(sorted(variant.items()))
        config = self._configs[key]
        if config is None:
            self._make(**self._options, **variant)  # raises, saying why
        return config
