// CUDA registration of temporal_loss_forward: the kernel's launch with its
// scratch (../common/cuda_host.h) on the current stream, behind the host
// forward (../temporal_host.h). No host synchronisation (CUDA-graph safe).
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/cuda_host.h"
#include "../temporal_host.h"
#include "temporal_kernel.h"

namespace mattingloss {
namespace {

struct TemporalCuda {
  using Guard = c10::cuda::CUDAGuard;
  template <typename acc_t>
  static void run(const TemporalArgs<acc_t>& a, const at::Tensor& like) {
    launch_with_ticket<acc_t, TemporalSums<acc_t>>(
        like, temporal_cuda_blocks(a.batch, a.pixels),
        [&](TemporalSums<acc_t>* scratch, unsigned int* counter, cudaStream_t stream) {
          return launch_temporal_forward(a, scratch, counter, stream);
        });
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("temporal_loss_forward", &temporal_loss_forward<TemporalCuda>); }

}  // namespace mattingloss
