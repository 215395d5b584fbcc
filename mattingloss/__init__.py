"""mattingloss: image-matting training losses as fused CPU and CUDA kernels,
loss and analytic gradient in one pass.

>>> from mattingloss import DIMLoss
>>> loss = DIMLoss()(pred_alpha=pred, alpha=alpha, trimap=trimap, image=img, fg=fg, bg=bg)
"""
from ._version import __version__
from ._ops import cuda_kernels_built
from .dim import DIMLoss, dim_loss
from .composition import CompositionLoss, composition_loss
from .laplacian import LaplacianLoss, laplacian_loss
from .temporal import video_matting_losses
from .alpha import AlphaLoss, VitMatteAlphaLosses, alpha_loss, vitmatte_alpha_losses
from .gradient import GradientLoss, gradient_loss
from . import presets, reference, trimap
from . import metrics  # evaluation metrics (SAD, MSE, Gradient, Connectivity)

__all__ = ["DIMLoss", "dim_loss", "CompositionLoss", "composition_loss", "LaplacianLoss", "laplacian_loss",
           "video_matting_losses", "AlphaLoss", "alpha_loss", "VitMatteAlphaLosses", "vitmatte_alpha_losses",
           "GradientLoss", "gradient_loss", "presets", "cuda_kernels_built", "reference", "trimap", "__version__"]
