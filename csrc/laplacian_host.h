// Host side of the Laplacian loss, shared by the CPU and CUDA registrations:
// checks the raw op's arguments (the Python API checks first, with friendlier
// messages; these keep a direct torch.ops call from reading out of bounds),
// allocates the outputs and scratch, and fills lap::Args;
// laplacian_loss_forward<Backend> is the op for a backend that gives its
// device guard and run<acc_t>.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <optional>
#include <tuple>

#include "common/host_tensors.h"
#include "laplacian.h"

namespace mattingloss {

using LaplacianResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // loss, level_losses, grad_pred

struct LaplacianOp {
  LaplacianResult outputs;
  at::Tensor scratch;
  lap::Args<float> f32;
  lap::Args<double> f64;
  bool use_double = false;
};

LaplacianOp prepare_laplacian(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight,
                              int64_t levels, c10::ArrayRef<double> level_weights, int64_t padding,
                              bool crop_to_even, int64_t weight_mode, double gt_scale, double mask_numer,
                              bool grad_pred, const std::optional<at::Tensor>& grad_base, double grad_coef);

template <typename Backend>
LaplacianResult laplacian_loss_forward(const at::Tensor& pred, const at::Tensor& gt,
                                       const std::optional<at::Tensor>& weight, int64_t levels,
                                       c10::ArrayRef<double> level_weights, int64_t padding, bool crop_to_even,
                                       int64_t weight_mode, double gt_scale, double mask_numer, bool grad_pred,
                                       const std::optional<at::Tensor>& grad_base, double grad_coef) {
  const typename Backend::Guard guard(pred.device());
  LaplacianOp op = prepare_laplacian(pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode,
                                     gt_scale, mask_numer, grad_pred, grad_base, grad_coef);
  return run_in_acc_type<Backend>(op, pred);
}

}  // namespace mattingloss
