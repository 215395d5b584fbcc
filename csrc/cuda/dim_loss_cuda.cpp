// CUDA registration: device guard, scratch allocation, launch on the current
// stream. No host synchronisation: everything, the final reduction included,
// is enqueued on the stream.
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../dim_loss_host.h"
#include "dim_loss_kernel.h"

namespace mattingloss {
namespace {

template <typename acc_t>
void launch(const ForwardArgs<acc_t>& args, const at::Tensor& pred) {
  const int64_t sums = cuda_scratch_sums(args.batch, args.pixels);
  const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
  at::Tensor scratch = at::empty({sums * 3}, pred.options().dtype(acc));
  at::Tensor counter = at::zeros({1}, pred.options().dtype(at::kInt));
  C10_CUDA_CHECK(launch_dim_loss_forward(args, reinterpret_cast<Sums<acc_t>*>(scratch.mutable_data_ptr<acc_t>()),
                                         reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()),
                                         c10::cuda::getCurrentCUDAStream()));
}

ForwardResult dim_loss_forward_cuda(const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
                                    const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
                                    const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo,
                                    double mask_hi, double wl, double eps, double alpha_scale,
                                    double color_scale, int64_t reduction, bool grad_pred, bool grad_fg,
                                    bool grad_bg) {
  const c10::cuda::CUDAGuard guard(pred.device());
  ForwardOp op = prepare_forward(pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps,
                                 alpha_scale, color_scale, reduction, grad_pred, grad_fg, grad_bg);
  if (op.use_double) {
    launch(op.f64, pred);
  } else {
    launch(op.f32, pred);
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("dim_loss_forward", &dim_loss_forward_cuda); }

}  // namespace mattingloss
