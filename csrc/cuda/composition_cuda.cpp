// CUDA registration of the composition loss: device guard, scratch
// allocation, launch on the current stream. No host synchronisation.
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../composition_host.h"
#include "composition_kernel.h"

namespace mattingloss {
namespace composition {
namespace {

template <typename acc_t>
void launch(const ForwardArgs<acc_t>& args, const at::Tensor& pred) {
  const int64_t sums = cuda_scratch_sums(args.batch, args.pixels);
  const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
  at::Tensor scratch = at::empty({sums * 2}, pred.options().dtype(acc));
  at::Tensor counter = at::zeros({1}, pred.options().dtype(at::kInt));
  C10_CUDA_CHECK(launch_composition_forward(
      args, reinterpret_cast<CompSums<acc_t>*>(scratch.mutable_data_ptr<acc_t>()),
      reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()), c10::cuda::getCurrentCUDAStream()));
}

ForwardResult composition_loss_forward_cuda(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& fg,
                                            const at::Tensor& bg, const std::optional<at::Tensor>& mask,
                                            int64_t mask_mode, double mask_lo, double mask_hi, int64_t rho,
                                            double eps, c10::ArrayRef<double> color_scale, bool count_channels,
                                            double guard, int64_t reduction, bool grad_pred, bool grad_fg,
                                            bool grad_bg) {
  const c10::cuda::CUDAGuard device_guard(pred.device());
  ForwardOp op = prepare_forward(pred, image, fg, bg, mask, mask_mode, mask_lo, mask_hi, rho, eps, color_scale,
                                 count_channels, guard, reduction, grad_pred, grad_fg, grad_bg);
  if (op.use_double) {
    launch(op.f64, pred);
  } else {
    launch(op.f32, pred);
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("composition_loss_forward", &composition_loss_forward_cuda); }

}  // namespace composition
}  // namespace mattingloss
