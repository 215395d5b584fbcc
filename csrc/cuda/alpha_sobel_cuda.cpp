// CUDA registration of alpha_sobel_forward, _weights and _compose: the
// kernels' launches with their scratch (../common/cuda_host.h) on the current
// stream, behind the host ops (../alpha_sobel_host.h). No host
// synchronisation.
#include <torch/library.h>

#include "../alpha_sobel_host.h"
#include "../common/cuda_host.h"
#include "alpha_sobel_kernel.h"

namespace mattingloss {
namespace {

struct AlphaSobelCuda : CudaBackend {
  template <typename acc_t>
  static void forward(const AlphaGradArgs<acc_t>& a, const at::Tensor& pred) {
    launch_with_ticket<acc_t>(pred, alpha_sobel_scratch(a.batch, a.height, a.width),
                              &launch_alpha_sobel_forward<acc_t>, a);
  }
  template <typename acc_t>
  static void weights(const AlphaGradArgs<acc_t>& a, const at::Tensor& pred) {
    launch_with_ticket<acc_t>(pred, alpha_sobel_scratch(a.batch, a.height, a.width),
                              &launch_alpha_sobel_weights<acc_t>, a);
  }
  template <typename acc_t>
  static void compose(const AlphaComposeParams<acc_t>& params, const acc_t* sums, acc_t* total, acc_t* components,
                      acc_t* factors) {
    C10_CUDA_CHECK(launch_alpha_sobel_compose(params, sums, total, components, factors,
                                                 c10::cuda::getCurrentCUDAStream()));
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) {
  m.impl("alpha_sobel_forward", &alpha_sobel_forward<AlphaSobelCuda>);
  m.impl("alpha_sobel_weights", &alpha_sobel_weights<AlphaSobelCuda>);
  m.impl("alpha_sobel_compose", &alpha_sobel_compose<AlphaSobelCuda>);
}

}  // namespace mattingloss
