// Host side of the DIM loss, shared by the CPU and CUDA registrations: checks
// the raw op's arguments (the Python API checks first and with friendlier
// messages; these keep a direct torch.ops call from reading out of bounds),
// allocates the outputs and fills ForwardArgs; dim_loss_forward<Backend> is
// the op for a backend that gives its device guard and run<acc_t>.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "common/host_tensors.h"
#include "dim_loss.h"

namespace mattingloss {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct ForwardOp {
  ForwardResult outputs;  // (loss, components, scale, grad_pred, grad_fg, grad_bg)
  ForwardArgs<float> f32;
  ForwardArgs<double> f64;
  bool use_double = false;
};

ForwardOp prepare_forward(const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
                          const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
                          const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo,
                          double mask_hi, double wl, double eps, double alpha_scale, double color_scale,
                          int64_t reduction, bool grad_pred, bool grad_fg, bool grad_bg);

template <typename Backend>
ForwardResult dim_loss_forward(const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
                               const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
                               const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo,
                               double mask_hi, double wl, double eps, double alpha_scale, double color_scale,
                               int64_t reduction, bool grad_pred, bool grad_fg, bool grad_bg) {
  const typename Backend::Guard guard(pred.device());
  ForwardOp op = prepare_forward(pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps,
                                 alpha_scale, color_scale, reduction, grad_pred, grad_fg, grad_bg);
  return run_in_acc_type<Backend>(op, pred);
}

}  // namespace mattingloss
