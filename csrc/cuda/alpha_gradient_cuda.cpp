// CUDA registration of alpha_gradient_forward, _weights and _compose: device
// guard, scratch allocation, launch on the current stream.
// No host synchronisation.
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../alpha_gradient_host.h"
#include "alpha_gradient_kernel.h"

namespace mattingloss {
namespace {

// Runs launcher (launch_alpha_gradient_forward or _weights) with its scratch
// and ticket counter, on the current stream.
template <typename acc_t, typename Launcher>
void launch(const AlphaGradArgs<acc_t>& args, const at::Tensor& pred, Launcher launcher) {
  const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
  at::Tensor scratch =
      at::empty({alpha_gradient_scratch(args.batch, args.height, args.width)}, pred.options().dtype(acc));
  at::Tensor counter = at::zeros({1}, pred.options().dtype(at::kInt));
  C10_CUDA_CHECK(launcher(args, scratch.mutable_data_ptr<acc_t>(),
                          reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()),
                          c10::cuda::getCurrentCUDAStream()));
}

AlphaGradResult alpha_gradient_forward_cuda(const at::Tensor& pred, const at::Tensor& gt,
                                            const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo,
                                            double mask_hi, double alpha_scale, int64_t rho, double eps,
                                            bool mask_in_diff, bool unknown_term, bool known_term, int64_t sobel,
                                            double grad_eps, at::ArrayRef<double> coef, at::IntArrayRef group,
                                            int64_t groups, bool grad, bool per_pixel,
                                            const std::optional<at::Tensor>& factors) {
  const c10::cuda::CUDAGuard guard(pred.device());
  AlphaGradOp op = prepare_alpha_gradient(pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps,
                                          mask_in_diff, unknown_term, known_term, sobel, grad_eps, coef, group,
                                          groups, grad, per_pixel, factors);
  if (op.use_double) {
    launch(op.f64, pred, &launch_alpha_gradient_forward<double>);
  } else {
    launch(op.f32, pred, &launch_alpha_gradient_forward<float>);
  }
  return op.outputs;
}

at::Tensor alpha_gradient_weights_cuda(const at::Tensor& pred, const std::optional<at::Tensor>& mask,
                                       int64_t mask_mode, double mask_lo, double mask_hi) {
  const c10::cuda::CUDAGuard guard(pred.device());
  AlphaWeightsOp op = prepare_alpha_weights(pred, mask, mask_mode, mask_lo, mask_hi);
  if (op.use_double) {
    launch(op.f64, pred, &launch_alpha_gradient_weights<double>);
  } else {
    launch(op.f32, pred, &launch_alpha_gradient_weights<float>);
  }
  return op.sums;
}

AlphaComposeResult alpha_gradient_compose_cuda(const at::Tensor& sums, int64_t pixels, at::IntArrayRef norm,
                                               at::ArrayRef<double> guard, int64_t crop_pixels, double penalty,
                                               at::ArrayRef<double> weights, at::IntArrayRef group, int64_t groups,
                                               bool count_all) {
  const c10::cuda::CUDAGuard guard_device(sums.device());
  AlphaComposeOp op = prepare_alpha_compose(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups,
                                            count_all);
  const auto& [total, components, factors] = op.outputs;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (op.use_double) {
    C10_CUDA_CHECK(launch_alpha_gradient_compose(op.f64, sums.const_data_ptr<double>(), total.mutable_data_ptr<double>(),
                                                 components.mutable_data_ptr<double>(),
                                                 factors.mutable_data_ptr<double>(), stream));
  } else {
    C10_CUDA_CHECK(launch_alpha_gradient_compose(op.f32, sums.const_data_ptr<float>(), total.mutable_data_ptr<float>(),
                                                 components.mutable_data_ptr<float>(),
                                                 factors.mutable_data_ptr<float>(), stream));
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) {
  m.impl("alpha_gradient_forward", &alpha_gradient_forward_cuda);
  m.impl("alpha_gradient_weights", &alpha_gradient_weights_cuda);
  m.impl("alpha_gradient_compose", &alpha_gradient_compose_cuda);
}

}  // namespace mattingloss
