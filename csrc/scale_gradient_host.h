// Host-side glue shared by the CPU and CUDA registrations of scale_gradient_:
// checks the raw op's arguments and fills the kernels' argument struct.
#pragma once

#include <ATen/core/Tensor.h>

#include "scale_gradient.h"

namespace mattingloss {

struct ScaleGradientOp {
  ScaleGradientArgs<float> f32;
  ScaleGradientArgs<double> f64;
  bool use_double = false;
};

ScaleGradientOp prepare_scale_gradient(const at::Tensor& grad, const at::Tensor& factor);

}  // namespace mattingloss
