// CUDA registration of scale_gradient_: device guard, launch on the current
// stream. No host synchronisation.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../scale_gradient_host.h"
#include "scale_gradient_kernel.h"

namespace mattingloss {
namespace {

void scale_gradient_cuda(const at::Tensor& grad, const at::Tensor& factor) {
  const c10::cuda::CUDAGuard guard(grad.device());
  const ScaleGradientOp op = prepare_scale_gradient(grad, factor);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (op.use_double) {
    C10_CUDA_CHECK(launch_scale_gradient(op.f64, stream));
  } else {
    C10_CUDA_CHECK(launch_scale_gradient(op.f32, stream));
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("scale_gradient_", &scale_gradient_cuda); }

}  // namespace mattingloss
