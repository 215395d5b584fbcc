// CUDA registration of the composition loss: the kernel's launch with its
// scratch (../common/cuda_host.h) on the current stream, behind the host
// forward (../composition_host.h). No host synchronisation.
#include <torch/library.h>

#include "../common/cuda_host.h"
#include "../composition_host.h"
#include "composition_kernel.h"

namespace mattingloss {
namespace composition {
namespace {

struct CompositionCuda : CudaBackend {
  template <typename acc_t>
  static void run(const ForwardArgs<acc_t>& a, const at::Tensor& pred) {
    launch_with_ticket<acc_t>(pred, gpu::point_scratch_sums(a.batch, a.pixels), &launch_composition_forward<acc_t>,
                              a);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) {
  m.impl("composition_loss_forward", &composition_loss_forward<CompositionCuda>);
}

}  // namespace composition
}  // namespace mattingloss
