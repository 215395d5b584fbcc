// Host-side glue shared by the CPU and CUDA registrations of
// alpha_gradient_forward, _compose and _combine_: checks the raw ops' arguments
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
                                   at::IntArrayRef group, int64_t groups, bool grad, bool per_pixel);

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

// alpha_gradient_combine_: checks, and the arguments in maps' accumulation type.
struct AlphaCombineOp {
  AlphaCombineArgs<float> f32;
  AlphaCombineArgs<double> f64;
  bool use_double = false;
};

AlphaCombineOp prepare_alpha_combine(const at::Tensor& maps, const at::Tensor& factors, const at::Tensor& grad_output);

}  // namespace mattingloss
