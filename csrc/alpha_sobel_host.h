// Host side of alpha_sobel_forward, _weights and _compose, shared by the
// CPU and CUDA registrations: checks the raw ops' arguments (the Python API
// checks first, with friendlier messages; these keep a direct torch.ops call
// from reading out of bounds), allocates the outputs and fills the kernels'
// argument structs; the templated ops below are each op for a backend that
// gives its device guard and forward / weights / compose in acc_t.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "alpha_sobel.h"
#include "common/host_tensors.h"

namespace mattingloss {

using AlphaGradResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // (sums, grad, values)

struct AlphaGradOp {
  AlphaGradResult outputs;
  AlphaGradArgs<float> f32;
  AlphaGradArgs<double> f64;
  bool use_double = false;
};

AlphaGradOp prepare_alpha_sobel(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& mask,
                                   int64_t mask_mode, double mask_lo, double mask_hi, double alpha_scale,
                                   int64_t rho, double eps, bool mask_in_diff, bool unknown_term, bool known_term,
                                   int64_t sobel, double grad_eps, at::ArrayRef<double> coef,
                                   at::IntArrayRef group, int64_t groups, bool grad, bool per_pixel,
                                   const std::optional<at::Tensor>& factors);

// alpha_sobel_weights: the weight sums of alpha_sobel_forward alone (one read of the mask).
struct AlphaWeightsOp {
  at::Tensor sums;  // (B, kAgSums): the weight columns, 0 in the others
  AlphaGradArgs<float> f32;
  AlphaGradArgs<double> f64;
  bool use_double = false;
};

AlphaWeightsOp prepare_alpha_weights(const at::Tensor& pred, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                                     double mask_lo, double mask_hi);

// alpha_sobel_compose: (total, components, factors) from the sums.
using AlphaComposeResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

struct AlphaComposeOp {
  AlphaComposeResult outputs;
  AlphaComposeParams<float> f32;
  AlphaComposeParams<double> f64;
  bool use_double = false;
};

AlphaComposeOp prepare_alpha_compose(const at::Tensor& sums, int64_t pixels, at::IntArrayRef norm,
                                     at::ArrayRef<double> guard, int64_t crop_pixels, double penalty,
                                     at::ArrayRef<double> weights, at::IntArrayRef group, int64_t groups,
                                     bool count_all);

template <typename Backend>
AlphaGradResult alpha_sobel_forward(const at::Tensor& pred, const at::Tensor& gt,
                                       const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo,
                                       double mask_hi, double alpha_scale, int64_t rho, double eps, bool mask_in_diff,
                                       bool unknown_term, bool known_term, int64_t sobel, double grad_eps,
                                       at::ArrayRef<double> coef, at::IntArrayRef group, int64_t groups, bool grad,
                                       bool per_pixel, const std::optional<at::Tensor>& factors) {
  const typename Backend::Guard device_guard(pred.device());
  AlphaGradOp op = prepare_alpha_sobel(pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps,
                                          mask_in_diff, unknown_term, known_term, sobel, grad_eps, coef, group,
                                          groups, grad, per_pixel, factors);
  for_acc_type(op, [&](const auto& args) { Backend::forward(args, pred); });
  return op.outputs;
}

template <typename Backend>
at::Tensor alpha_sobel_weights(const at::Tensor& pred, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                                  double mask_lo, double mask_hi) {
  const typename Backend::Guard device_guard(pred.device());
  AlphaWeightsOp op = prepare_alpha_weights(pred, mask, mask_mode, mask_lo, mask_hi);
  for_acc_type(op, [&](const auto& args) { Backend::weights(args, pred); });
  return op.sums;
}

template <typename Backend>
AlphaComposeResult alpha_sobel_compose(const at::Tensor& sums, int64_t pixels, at::IntArrayRef norm,
                                          at::ArrayRef<double> guard, int64_t crop_pixels, double penalty,
                                          at::ArrayRef<double> weights, at::IntArrayRef group, int64_t groups,
                                          bool count_all) {
  const typename Backend::Guard device_guard(sums.device());
  AlphaComposeOp op = prepare_alpha_compose(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups,
                                            count_all);
  const auto& [total, components, factors] = op.outputs;
  for_acc_type(op, [&](const auto& params) {
    using acc_t = decltype(params.penalty);
    Backend::compose(params, sums.const_data_ptr<acc_t>(), total.mutable_data_ptr<acc_t>(),
                     components.mutable_data_ptr<acc_t>(), factors.mutable_data_ptr<acc_t>());
  });
  return op.outputs;
}

}  // namespace mattingloss
