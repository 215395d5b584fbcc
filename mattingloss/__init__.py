"""mattingloss: the Deep Image Matting losses as fused CPU and CUDA kernels.

>>> from mattingloss import DIMLoss
>>> loss = DIMLoss()(pred_alpha=pred, alpha=alpha, trimap=trimap, image=img, fg=fg, bg=bg)
"""
from ._version import __version__
from ._ops import cuda_kernels_built
from .loss import DIMLoss, dim_loss
from . import reference, trimap

__all__ = ["DIMLoss", "dim_loss", "cuda_kernels_built", "reference", "trimap", "__version__"]
from .alpha import AlphaLoss, VitMatteAlphaLosses, alpha_loss, vitmatte_alpha_losses
from .gradient import GradientLoss, gradient_loss

__all__ += ["AlphaLoss", "VitMatteAlphaLosses", "alpha_loss", "vitmatte_alpha_losses", "GradientLoss", "gradient_loss"]
