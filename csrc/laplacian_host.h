// Host-side glue of the Laplacian loss shared by the CPU and CUDA
// registrations: checks the raw op's arguments (the Python API checks first,
// with friendlier messages; these keep a direct torch.ops call from reading
// out of bounds), allocates the outputs and scratch, and fills lap::Args.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <optional>
#include <tuple>

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
                              bool grad_pred, const std::optional<at::Tensor>& grad_bases,
                              const std::optional<at::Tensor>& grad_coefs);

}  // namespace mattingloss
