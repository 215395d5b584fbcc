// CUDA registration of the Laplacian loss: scratch and launch on the current
// stream, behind the host forward (../laplacian_host.h). No host
// synchronisation.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/cuda_host.h"
#include "../laplacian_host.h"
#include "laplacian_kernel.h"

namespace mattingloss {
namespace {

struct LaplacianCuda : CudaBackend {
  template <typename acc_t>
  static void run(const lap::Args<acc_t>& args, const at::Tensor& pred) {
    const LapCudaLayout layout = lap_cuda_layout(args.geo, args.planes, args.weight_mode, args.grad.data != nullptr);
    const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
    at::Tensor partials = at::empty({layout.total}, pred.options().dtype(acc));
    C10_CUDA_CHECK(launch_laplacian_forward(args, layout, partials.mutable_data_ptr<acc_t>(),
                                            c10::cuda::getCurrentCUDAStream()));
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("laplacian_loss_forward", &laplacian_loss_forward<LaplacianCuda>); }

}  // namespace mattingloss
