"""Reference implementations shared by the tests and the benchmark: one module
per source, each our own code computing exactly what that source computes,
cited in its docstring.

* :mod:`.seed`: the seed document's ``gen_loss`` as written.
* :mod:`.dim`: an eager PyTorch oracle of every option of :func:`mattingloss.dim_loss`.
* :mod:`.mmagic`: mmagic's Charbonnier losses.
* :mod:`.composition`: the composition losses of mmagic and GCA-Matting/MGMatting/MatteFormer,
  and an eager oracle of :func:`mattingloss.composition_loss`.
* :mod:`.laplacian`: the Laplacian-pyramid losses of RVM (ViTMatte, ...), MGMatting (MatteFormer, ...)
  and SDMatte.
* :mod:`.rvm`: RobustVideoMatting's ``matting_loss``.
* :mod:`.alpha`, :mod:`.gradient`: the masked alpha (L1/Charbonnier) and Sobel gradient losses of
  ViTMatte, GCA-Matting, MGMatting/MatteFormer, mmagic and RVM.
* :mod:`.vitmatte`, :mod:`.matteformer`, :mod:`.gca` (and :mod:`.rvm`, :mod:`.seed`, :mod:`.mmagic`):
  each code base's whole training objective, the oracles of :mod:`mattingloss.presets`.
"""
from .dim import dim_loss_reference, unknown_weight
from .mmagic import mmagic_charbonnier_losses
from .seed import seed_gen_loss, seed_total_loss
from .composition import (composition_reference, gca_composition_loss, mmagic_charbonnier_comp_loss,
                          mmagic_l1_composition_loss, mmagic_mse_composition_loss)

from .laplacian import mgmatting_lap_loss, rvm_laplacian_loss, sdmatte_lap_loss
from .rvm import rvm_matting_loss
from . import alpha, gradient  # the masked alpha and Sobel gradient losses of ViTMatte, GCA, mmagic, RVM
from .gca import gca_losses
from .matteformer import matteformer_losses
from .vitmatte import vitmatte_criterion

__all__ = ["dim_loss_reference", "unknown_weight", "mmagic_charbonnier_losses", "seed_gen_loss",
           "seed_total_loss", "composition_reference", "gca_composition_loss", "mmagic_charbonnier_comp_loss",
           "mmagic_l1_composition_loss", "mmagic_mse_composition_loss", "rvm_laplacian_loss",
           "mgmatting_lap_loss", "sdmatte_lap_loss", "rvm_matting_loss", "gca_losses", "matteformer_losses",
           "vitmatte_criterion"]
