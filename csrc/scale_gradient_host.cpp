// Host side of scale_gradient_, the op's only torch-including file: checks
// the raw op's arguments, fills one argument struct per gradient and runs the
// backend's kernel (../scale_gradient.h declares both); the CPU and CUDA
// registrations.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "common/host_tensors.h"
#include "scale_gradient.h"
#ifdef MATTINGLOSS_CUDA
#include "common/cuda_host.h"
#endif

namespace mattingloss {
namespace {

struct ScaleGradientOp {
  ScaleGradientArgs<float> f32;
  ScaleGradientArgs<double> f64;
  bool use_double = false;
  at::Tensor grad_output, scale;  // in the accumulation type (kept alive while it runs)
  std::tuple<> outputs;           // none: the gradient is scaled in place
};

// A factor tensor in the gradient's accumulation type: 1 value, or one per sample.
at::Tensor factor_input(const at::Tensor& t, const char* name, const at::Tensor& grad, at::ScalarType acc,
                        bool& per_sample) {
  const int64_t samples = grad.dim() == 0 ? 1 : grad.size(0);
  TORCH_CHECK(t.numel() == 1 || (t.dim() >= 1 && t.numel() == samples && t.size(0) == samples),
              "mattingloss: ", name, " must hold one value or one per sample (", samples, "), got shape ",
              t.sizes());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "mattingloss: ", name, " must be floating, got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == grad.device(), "mattingloss: ", name, " must be on grad's device (", grad.device(),
              "), got ", t.device());
  per_sample = t.numel() > 1;
  // A gradient of another dtype than the loss (a float64 input of a float32
  // loss): its factor converted, the rare path.
  return t.scalar_type() == acc ? t.contiguous() : t.to(acc).contiguous();
}

ScaleGradientOp prepare_scale_gradient(const at::Tensor& grad, const at::Tensor& grad_output,
                                       const std::optional<at::Tensor>& scale, bool shared_scale) {
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), "mattingloss: grad must be floating, got ", grad.scalar_type());
  TORCH_CHECK(grad.is_contiguous(), "mattingloss: grad must be contiguous");
  const auto acc = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  ScaleGradientOp op;
  op.use_double = acc == at::kDouble;
  bool per_sample_output = false, per_sample_scale = false;
  op.grad_output = factor_input(grad_output, "grad_output", grad, acc, per_sample_output);
  if (scale.has_value()) {
    TORCH_CHECK(shared_scale || scale->numel() == (grad.dim() == 0 ? 1 : grad.size(0)),
                "mattingloss: a per-sample scale needs one value per sample, got shape ", scale->sizes());
    op.scale = factor_input(*scale, "scale", grad, acc, per_sample_scale);
    per_sample_scale = !shared_scale;
  }
  for_acc_type(op, [&](auto& a) {
    using acc_t = std::remove_const_t<std::remove_pointer_t<decltype(a.grad_output)>>;
    a.samples = per_sample_output || per_sample_scale ? grad.size(0) : 1;
    a.per_sample = a.samples == 0 ? 0 : grad.numel() / a.samples;
    a.in = input(grad, "grad");
    a.out = output(grad);
    a.grad_output = op.grad_output.template const_data_ptr<acc_t>();
    a.per_sample_output = per_sample_output;
    a.scale = op.scale.defined() ? op.scale.template const_data_ptr<acc_t>() : nullptr;
    a.per_sample_scale = per_sample_scale;
  });
  return op;
}

}  // namespace

template <typename acc_t>
void run(CpuBackend, const ScaleGradientArgs<acc_t>& a, const at::Tensor&) {
  scale_gradient_cpu(a);
}

#ifdef MATTINGLOSS_CUDA
// No host synchronisation.
template <typename acc_t>
void run(CudaBackend, const ScaleGradientArgs<acc_t>& a, const at::Tensor&) {
  C10_CUDA_CHECK(launch_scale_gradient(a, c10::cuda::getCurrentCUDAStream()));
}
#endif

template <typename Backend>
void scale_gradient(at::TensorList grads, const at::Tensor& grad_output, const std::optional<at::Tensor>& scale,
                    bool shared_scale) {
  for (const at::Tensor& grad : grads) {
    run_op<Backend>(grad, [&] { return prepare_scale_gradient(grad, grad_output, scale, shared_scale); });
  }
}

MATTINGLOSS_IMPL("scale_gradient_", scale_gradient)

}  // namespace mattingloss
