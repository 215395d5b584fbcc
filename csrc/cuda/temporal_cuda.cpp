// CUDA registration of temporal_loss_forward: the kernel's launch with its
// scratch (../common/cuda_host.h) on the current stream, behind the host
// forward (../temporal_host.h). No host synchronisation (CUDA-graph safe).
#include <torch/library.h>

#include "../common/cuda_host.h"
#include "../temporal_host.h"
#include "temporal_kernel.h"

namespace mattingloss {
namespace {

struct TemporalCuda : CudaBackend {
  template <typename acc_t>
  static void run(const TemporalArgs<acc_t>& a, const at::Tensor& like) {
    launch_with_ticket<acc_t>(like, temporal_cuda_blocks(a.batch, a.pixels), &launch_temporal_forward<acc_t>, a);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("temporal_loss_forward", &temporal_loss_forward<TemporalCuda>); }

}  // namespace mattingloss
