#include "scale_gradient_host.h"

#include <c10/util/Exception.h>

#include "common/host_tensors.h"

namespace mattingloss {
namespace {

template <typename acc_t>
void fill(ScaleGradientArgs<acc_t>& a, const at::Tensor& grad, const at::Tensor& factor) {
  a.numel = grad.numel();
  a.in = input(grad, "grad");
  a.out = output(grad);
  a.factor = factor.const_data_ptr<acc_t>();
}

}  // namespace

ScaleGradientOp prepare_scale_gradient(const at::Tensor& grad, const at::Tensor& factor) {
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), "mattingloss: grad must be floating, got ", grad.scalar_type());
  TORCH_CHECK(grad.is_contiguous(), "mattingloss: grad must be contiguous");
  const auto acc = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(factor.numel() == 1, "mattingloss: factor must hold one value, got ", factor.numel());
  TORCH_CHECK(factor.scalar_type() == acc, "mattingloss: factor must be ", acc, " (grad is ", grad.scalar_type(),
              "), got ", factor.scalar_type());
  TORCH_CHECK(factor.device() == grad.device(), "mattingloss: factor must be on grad's device (", grad.device(),
              "), got ", factor.device());
  ScaleGradientOp op;
  op.use_double = acc == at::kDouble;
  for_acc_type(op, [&](auto& args) { fill(args, grad, factor); });
  return op;
}

}  // namespace mattingloss
