// CUDA registration of the Laplacian loss: device guard, scratch, launch on
// the current stream. No host synchronisation.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../laplacian_host.h"
#include "laplacian_kernel.h"

namespace mattingloss {
namespace {

template <typename acc_t>
void launch(const lap::Args<acc_t>& args, const at::Tensor& pred) {
  const LapCudaLayout layout = lap_cuda_layout(args.geo, args.planes, args.weight_mode);
  const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
  at::Tensor partials = at::empty({layout.total}, pred.options().dtype(acc));
  C10_CUDA_CHECK(launch_laplacian_forward(args, layout, partials.mutable_data_ptr<acc_t>(),
                                          c10::cuda::getCurrentCUDAStream()));
}

LaplacianResult laplacian_loss_forward_cuda(const at::Tensor& pred, const at::Tensor& gt,
                                            const std::optional<at::Tensor>& weight, int64_t levels,
                                            c10::ArrayRef<double> level_weights, int64_t padding, bool crop_to_even,
                                            int64_t weight_mode, double gt_scale, double mask_numer, bool grad_pred,
                                            const std::optional<at::Tensor>& grad_bases,
                                            const std::optional<at::Tensor>& grad_coefs) {
  const c10::cuda::CUDAGuard guard(pred.device());
  LaplacianOp op = prepare_laplacian(pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode,
                                     gt_scale, mask_numer, grad_pred, grad_bases, grad_coefs);
  if (op.use_double) {
    launch(op.f64, pred);
  } else {
    launch(op.f32, pred);
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("laplacian_loss_forward", &laplacian_loss_forward_cuda); }

}  // namespace mattingloss
