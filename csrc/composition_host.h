// Host side of the composition loss, shared by the CPU and CUDA
// registrations: checks the raw op's arguments (the Python API checks first,
// with friendlier messages; these keep a direct torch.ops call from reading
// out of bounds), allocates the outputs and fills ForwardArgs;
// composition_loss_forward<Backend> is the op for a backend that gives its
// device guard and run<acc_t>.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <optional>
#include <tuple>

#include "common/host_tensors.h"
#include "composition.h"

namespace mattingloss {
namespace composition {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct ForwardOp {
  ForwardResult outputs;  // (loss, scale, grad_pred, grad_fg, grad_bg)
  ForwardArgs<float> f32;
  ForwardArgs<double> f64;
  bool use_double = false;
};

ForwardOp prepare_forward(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& fg,
                          const at::Tensor& bg, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                          double mask_lo, double mask_hi, int64_t rho, double eps, c10::ArrayRef<double> color_scale,
                          bool count_channels, double guard, int64_t reduction, bool grad_pred, bool grad_fg,
                          bool grad_bg);

template <typename Backend>
ForwardResult composition_loss_forward(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& fg,
                                       const at::Tensor& bg, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                                       double mask_lo, double mask_hi, int64_t rho, double eps,
                                       c10::ArrayRef<double> color_scale, bool count_channels, double guard,
                                       int64_t reduction, bool grad_pred, bool grad_fg, bool grad_bg) {
  const typename Backend::Guard device_guard(pred.device());
  ForwardOp op = prepare_forward(pred, image, fg, bg, mask, mask_mode, mask_lo, mask_hi, rho, eps, color_scale,
                                 count_channels, guard, reduction, grad_pred, grad_fg, grad_bg);
  return run_in_acc_type<Backend>(op, pred);
}

}  // namespace composition
}  // namespace mattingloss
