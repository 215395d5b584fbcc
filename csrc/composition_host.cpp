// Host side of the composition loss, the op's only torch-including file:
// checks the raw op's arguments (the Python API checks first, with friendlier
// messages; these keep a direct torch.ops call from reading out of bounds),
// allocates the outputs, fills ForwardArgs and runs the backend's kernel
// (../composition.h declares both); the CPU and CUDA registrations.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "common/pointwise_host.h"
#include "composition.h"

namespace mattingloss {
namespace composition {
namespace {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct ForwardOp {
  ForwardResult outputs;  // (loss, scale, grad_pred, grad_fg, grad_bg)
  ForwardArgs<float> f32;
  ForwardArgs<double> f64;
  bool use_double = false;
};

template <typename acc_t>
void fill(ForwardArgs<acc_t>& a, const at::Tensor& pred, const at::Tensor& image, const at::Tensor& fg,
          const at::Tensor& bg, const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo,
          double mask_hi, int64_t rho, double eps, c10::ArrayRef<double> color_scale, bool count_channels,
          double guard, int64_t reduction, const ForwardResult& out) {
  Params<acc_t>& P = a.params;
  P.eps2 = acc_t(eps * eps);
  for (int c = 0; c < 3; ++c) P.inv_scale[c] = acc_t(1.0 / color_scale[c]);
  if (mask.has_value() && (mask_mode == kUnknownEqual || mask_mode == kUnknownRange)) {
    mask_lo = comparison_bound(mask_lo, *mask);
    mask_hi = comparison_bound(mask_hi, *mask);
  }
  P.mask_lo = acc_t(mask_lo);
  P.mask_hi = acc_t(mask_hi);
  P.channels = count_channels ? acc_t(3) : acc_t(1);
  P.guard = acc_t(guard);
  P.mask_mode = mask_mode;
  P.rho = rho;
  P.reduction = reduction;
  const auto& [loss, scale, grad_pred, grad_fg, grad_bg] = out;
  fill_io(a, pred, mask_mode != kAllPixels ? &*mask : nullptr, &image, &fg, &bg, reduction, loss, scale, grad_pred,
          grad_fg, grad_bg);
}

ForwardOp prepare_forward(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& fg,
                          const at::Tensor& bg, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                          double mask_lo, double mask_hi, int64_t rho, double eps, c10::ArrayRef<double> color_scale,
                          bool count_channels, double guard, int64_t reduction, bool grad_pred, bool grad_fg,
                          bool grad_bg) {
  check_pred(pred);
  check_map(image, "image", pred, 3);
  check_map(fg, "fg", pred, 3);
  check_map(bg, "bg", pred, 3);
  TORCH_CHECK(mask_mode >= kUnknownEqual && mask_mode <= kAllPixels, "mattingloss: bad mask_mode ", mask_mode);
  TORCH_CHECK(mask.has_value() == (mask_mode != kAllPixels),
              "mattingloss: a mask goes with mask modes 0-2, none with mode 3 (all pixels)");
  if (mask.has_value()) check_map(*mask, "mask", pred, 1);
  TORCH_CHECK(rho >= kL1 && rho <= kL2, "mattingloss: bad rho ", rho);
  TORCH_CHECK(reduction >= kMean && reduction <= kNone, "mattingloss: bad reduction ", reduction);
  TORCH_CHECK(rho != kCharbonnier || eps > 0, "mattingloss: eps must be > 0, got ", eps);
  TORCH_CHECK(color_scale.size() == 3, "mattingloss: color_scale needs 3 values, got ", color_scale.size());
  for (double s : color_scale) {
    TORCH_CHECK(std::isfinite(s) && s > 0, "mattingloss: color_scale values must be finite and > 0, got ", s);
  }
  TORCH_CHECK(std::isfinite(guard) && guard >= 0, "mattingloss: guard must be >= 0, got ", guard);

  const bool use_double = pred.scalar_type() == at::kDouble;
  const auto opts = pred.options().dtype(use_double ? at::kDouble : at::kFloat);
  const int64_t B = pred.size(0);
  ForwardOp op;
  op.use_double = use_double;
  op.outputs = ForwardResult(reduction == kNone ? at::empty(pred.sizes(), opts) : at::empty({}, opts),
                             at::empty({B}, opts), gradient_buffer(grad_pred, pred, pred),
                             gradient_buffer(grad_fg, fg, pred), gradient_buffer(grad_bg, bg, pred));
  for_acc_type(op, [&](auto& args) {
    fill(args, pred, image, fg, bg, mask, mask_mode, mask_lo, mask_hi, rho, eps, color_scale, count_channels, guard,
         reduction, op.outputs);
  });
  return op;
}

}  // namespace

template <typename Backend>
ForwardResult composition_loss_forward(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& fg,
                                       const at::Tensor& bg, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                                       double mask_lo, double mask_hi, int64_t rho, double eps,
                                       c10::ArrayRef<double> color_scale, bool count_channels, double guard,
                                       int64_t reduction, bool grad_pred, bool grad_fg, bool grad_bg) {
  return run_op<Backend>(pred, [&] {
    return prepare_forward(pred, image, fg, bg, mask, mask_mode, mask_lo, mask_hi, rho, eps, color_scale,
                           count_channels, guard, reduction, grad_pred, grad_fg, grad_bg);
  });
}

MATTINGLOSS_IMPL("composition_loss_forward", composition_loss_forward)

}  // namespace composition
}  // namespace mattingloss
