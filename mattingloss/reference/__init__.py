"""Reference implementations shared by the tests and the benchmark: one module
per source, each our own code computing exactly what that source computes,
cited in its docstring.

* :mod:`.seed`: the seed document's ``gen_loss`` as written.
* :mod:`.dim`: an eager PyTorch oracle of every option of :func:`mattingloss.dim_loss`.
* :mod:`.mmagic`: mmagic's Charbonnier losses.
"""
from .dim import dim_loss_reference, unknown_weight
from .mmagic import mmagic_charbonnier_losses
from .seed import seed_gen_loss, seed_total_loss

__all__ = ["dim_loss_reference", "unknown_weight", "mmagic_charbonnier_losses", "seed_gen_loss",
           "seed_total_loss"]
from . import alpha, gradient  # the masked alpha and Sobel gradient losses of ViTMatte, GCA, mmagic, RVM
