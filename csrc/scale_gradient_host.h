// Host-side glue shared by the CPU and CUDA registrations of scale_gradient_:
// checks the raw op's arguments and fills one argument struct per gradient.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "common/host_tensors.h"
#include "scale_gradient.h"

namespace mattingloss {

struct ScaleGradientOp {
  ScaleGradientArgs<float> f32;
  ScaleGradientArgs<double> f64;
  bool use_double = false;
  at::Tensor grad_output, scale;  // in the accumulation type (kept alive while it runs)
};

ScaleGradientOp prepare_scale_gradient(const at::Tensor& grad, const at::Tensor& grad_output,
                                       const std::optional<at::Tensor>& scale, bool shared_scale);

// scale_gradient_ for a backend that gives its device guard and run<acc_t>.
template <typename Backend>
void scale_gradient(at::TensorList grads, const at::Tensor& grad_output, const std::optional<at::Tensor>& scale,
                    bool shared_scale) {
  for (const at::Tensor& grad : grads) {
    const typename Backend::Guard guard(grad.device());
    ScaleGradientOp op = prepare_scale_gradient(grad, grad_output, scale, shared_scale);
    for_acc_type(op, [](const auto& args) { Backend::run(args); });
  }
}

}  // namespace mattingloss
