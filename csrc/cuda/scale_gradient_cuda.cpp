// CUDA registration of scale_gradient_: device guard, launch on the current
// stream. No host synchronisation.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/cuda_host.h"
#include "../scale_gradient_host.h"
#include "scale_gradient_kernel.h"

namespace mattingloss {
namespace {

struct ScaleGradientCuda : CudaBackend {
  template <typename acc_t>
  static void run(const ScaleGradientArgs<acc_t>& a) {
    C10_CUDA_CHECK(launch_scale_gradient(a, c10::cuda::getCurrentCUDAStream()));
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("scale_gradient_", &scale_gradient<ScaleGradientCuda>); }

}  // namespace mattingloss
