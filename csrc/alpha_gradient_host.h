// Host-side glue shared by the CPU and CUDA registrations of
// alpha_gradient_forward: checks the raw op's arguments (the Python API checks
// first, with friendlier messages; these keep a direct torch.ops call from
// reading out of bounds), allocates the outputs and fills AlphaGradArgs.
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
                                   at::IntArrayRef group, int64_t groups, bool grad, bool per_pixel);

}  // namespace mattingloss
