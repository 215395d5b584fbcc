// Host-side glue shared by the CPU and CUDA registrations of scale_gradient_:
// checks the raw op's arguments and fills the kernels' argument struct.
#pragma once

#include <ATen/core/Tensor.h>

#include "common/host_tensors.h"
#include "scale_gradient.h"

namespace mattingloss {

struct ScaleGradientOp {
  ScaleGradientArgs<float> f32;
  ScaleGradientArgs<double> f64;
  bool use_double = false;
};

ScaleGradientOp prepare_scale_gradient(const at::Tensor& grad, const at::Tensor& factor);

// scale_gradient_ for a backend that gives its device guard and run<acc_t>.
template <typename Backend>
void scale_gradient(const at::Tensor& grad, const at::Tensor& factor) {
  const typename Backend::Guard guard(grad.device());
  ScaleGradientOp op = prepare_scale_gradient(grad, factor);
  for_acc_type(op, [](const auto& args) { Backend::run(args); });
}

}  // namespace mattingloss
