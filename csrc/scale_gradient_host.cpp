#include "scale_gradient_host.h"

#include <c10/util/Exception.h>

#include "common/host_tensors.h"

namespace mattingloss {
namespace {

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

}  // namespace

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

}  // namespace mattingloss
