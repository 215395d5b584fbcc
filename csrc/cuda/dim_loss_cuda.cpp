// CUDA registration of the DIM loss: the kernel's launch with its scratch
// (../common/cuda_host.h) on the current stream, behind the host forward
// (../dim_loss_host.h). No host synchronisation: everything, the final
// reduction included, is enqueued on the stream.
#include <torch/library.h>

#include "../common/cuda_host.h"
#include "../dim_loss_host.h"
#include "dim_loss_kernel.h"

namespace mattingloss {
namespace {

struct DimCuda : CudaBackend {
  template <typename acc_t>
  static void run(const ForwardArgs<acc_t>& a, const at::Tensor& pred) {
    launch_with_ticket<acc_t>(pred, gpu::point_scratch_sums(a.batch, a.pixels), &launch_dim_loss_forward<acc_t>, a);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("dim_loss_forward", &dim_loss_forward<DimCuda>); }

}  // namespace mattingloss
