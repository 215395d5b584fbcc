// Host-side glue shared by the CPU and CUDA registrations of
// alpha_gradient_forward, _weights and _compose: checks the raw ops' arguments
// (the Python API checks first, with friendlier messages; these keep a direct
// torch.ops call from reading out of bounds), allocates the outputs and fills
// the kernels' argument structs.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "alpha_gradient_args.h"

namespace mattingloss {

using AlphaGradResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // (sums, grad, values)

struct AlphaGradOp {
  AlphaGradResult outputs;
  AlphaGradArgs<float> f32;
  AlphaGradArgs<double> f64;
  bool use_double = false;
};

AlphaGradOp prepare_alpha_gradient(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& mask,
                                   int64_t mask_mode, double mask_lo, double mask_hi, double alpha_scale,
                                   int64_t rho, double eps, bool mask_in_diff, bool unknown_term, bool known_term,
                                   int64_t sobel, double grad_eps, at::ArrayRef<double> coef,
                                   at::IntArrayRef group, int64_t groups, bool grad, bool per_pixel,
                                   const std::optional<at::Tensor>& factors);

// alpha_gradient_weights: the weight sums of alpha_gradient_forward alone (one read of the mask).
struct AlphaWeightsOp {
  at::Tensor sums;  // (B, kAgSums): the weight columns, 0 in the others
  AlphaGradArgs<float> f32;
  AlphaGradArgs<double> f64;
  bool use_double = false;
};

AlphaWeightsOp prepare_alpha_weights(const at::Tensor& pred, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                                     double mask_lo, double mask_hi);

// alpha_gradient_compose: (total, components, factors) from the sums.
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

}  // namespace mattingloss
