// Host side of the DIM loss, the op's only torch-including file: checks the
// raw op's arguments (the Python API checks first and with friendlier
// messages; these keep a direct torch.ops call from reading out of bounds),
// allocates the outputs, fills ForwardArgs and runs the backend's kernel
// (../dim_loss.h declares both); the CPU and CUDA registrations.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "common/pointwise_host.h"
#include "dim_loss.h"

namespace mattingloss {
namespace {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct ForwardOp {
  ForwardResult outputs;  // (loss, components, scale, grad_pred, grad_fg, grad_bg)
  ForwardArgs<float> f32;
  ForwardArgs<double> f64;
  bool use_double = false;
};

template <typename acc_t>
void fill(ForwardArgs<acc_t>& a, const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
          const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
          const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo, double mask_hi,
          double wl, double eps, double alpha_scale, double color_scale, int64_t reduction,
          const ForwardResult& out) {
  if (mask_mode != kWeight) {
    mask_lo = comparison_bound(mask_lo, mask);
    mask_hi = comparison_bound(mask_hi, mask);
  }
  a.params = {acc_t(wl),          acc_t(1.0 - wl), acc_t(eps * eps), acc_t(alpha_scale), acc_t(color_scale),
              acc_t(mask_lo),     acc_t(mask_hi),  mask_mode,         reduction};
  a.has_comp = image.has_value();
  const auto& [loss, components, scale, grad_pred, grad_fg, grad_bg] = out;
  fill_io(a, pred, &mask, optional_ptr(image), optional_ptr(fg), optional_ptr(bg), reduction, loss, scale, grad_pred,
          grad_fg, grad_bg);
  a.alpha = input(alpha, "alpha");
  a.components = components.mutable_data_ptr<acc_t>();
  a.scale = scale.mutable_data_ptr<acc_t>();
}

ForwardOp prepare_forward(const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
                          const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
                          const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo,
                          double mask_hi, double wl, double eps, double alpha_scale, double color_scale,
                          int64_t reduction, bool grad_pred, bool grad_fg, bool grad_bg) {
  check_pred(pred);
  check_map(alpha, "alpha", pred, 1);
  check_map(mask, "mask", pred, 1);
  TORCH_CHECK(image.has_value() == fg.has_value() && fg.has_value() == bg.has_value(),
              "mattingloss: image, fg and bg go together");
  if (image.has_value()) {
    check_map(*image, "image", pred, 3);
    check_map(*fg, "fg", pred, 3);
    check_map(*bg, "bg", pred, 3);
  }
  TORCH_CHECK(!(grad_fg || grad_bg) || image.has_value(), "mattingloss: fg/bg gradients need image, fg, bg");
  TORCH_CHECK(mask_mode >= kUnknownEqual && mask_mode <= kWeight, "mattingloss: bad mask_mode ", mask_mode);
  TORCH_CHECK(reduction >= kMean && reduction <= kNone, "mattingloss: bad reduction ", reduction);
  TORCH_CHECK(eps > 0, "mattingloss: eps must be > 0, got ", eps);

  const bool use_double = pred.scalar_type() == at::kDouble;
  const auto acc = use_double ? at::kDouble : at::kFloat;
  const auto opts = pred.options().dtype(acc);
  const int64_t B = pred.size(0);
  ForwardOp op;
  op.use_double = use_double;
  op.outputs = ForwardResult(
      reduction == kNone ? at::empty(pred.sizes(), opts) : at::empty({}, opts), at::empty({2}, opts),
      at::empty({B}, opts), gradient_buffer(grad_pred, pred, pred),
      gradient_buffer(grad_fg, fg.value_or(pred), pred), gradient_buffer(grad_bg, bg.value_or(pred), pred));
  for_acc_type(op, [&](auto& args) {
    fill(args, pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps, alpha_scale, color_scale,
         reduction, op.outputs);
  });
  return op;
}

}  // namespace

template <typename Backend>
ForwardResult dim_loss_forward(const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
                               const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
                               const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo,
                               double mask_hi, double wl, double eps, double alpha_scale, double color_scale,
                               int64_t reduction, bool grad_pred, bool grad_fg, bool grad_bg) {
  return run_op<Backend>(pred, [&] {
    return prepare_forward(pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps, alpha_scale,
                           color_scale, reduction, grad_pred, grad_fg, grad_bg);
  });
}

MATTINGLOSS_IMPL("dim_loss_forward", dim_loss_forward)

}  // namespace mattingloss
