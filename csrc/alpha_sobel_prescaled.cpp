// alpha_sobel_prescaled: the alpha losses with their final gradient in one
// call, through the dispatcher (so on every backend): the weight sums
// (alpha_sobel_weights), the gradient maps' factors from them (_compose),
// the pass with those factors (_forward: one map, the total's gradient) and
// the losses from its sums (_compose). The same four ops the Python code would
// call, bitwise the same results: one crossing from Python instead of four,
// with no Python between the kernels.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "alpha_sobel.h"

namespace mattingloss {
namespace {

using Tensors3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Tensors3 alpha_sobel_prescaled(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& mask,
                                  int64_t mask_mode, double mask_lo, double mask_hi, double alpha_scale, int64_t rho,
                                  double eps, bool mask_in_diff, bool unknown_term, bool known_term, int64_t sobel,
                                  double grad_eps, at::ArrayRef<double> coef, at::IntArrayRef group, int64_t groups,
                                  at::IntArrayRef norm, at::ArrayRef<double> guard, int64_t crop_pixels,
                                  double penalty, at::ArrayRef<double> weights) {
  static const auto weights_op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mattingloss::alpha_sobel_weights", "")
          .typed<at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&, int64_t, double, double)>();
  static const auto compose_op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mattingloss::alpha_sobel_compose", "")
          .typed<Tensors3(const at::Tensor&, int64_t, at::IntArrayRef, at::ArrayRef<double>, int64_t, double,
                          at::ArrayRef<double>, at::IntArrayRef, int64_t, bool)>();
  static const auto forward_op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mattingloss::alpha_sobel_forward", "")
          .typed<Tensors3(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, int64_t, double,
                          double, double, int64_t, double, bool, bool, bool, int64_t, double, at::ArrayRef<double>,
                          at::IntArrayRef, int64_t, bool, bool, const std::optional<at::Tensor>&)>();
  const at::Tensor weight_sums = weights_op.call(pred, mask, mask_mode, mask_lo, mask_hi);  // checks pred's shape
  const int64_t pixels = pred.size(2) * pred.size(3);
  auto compose = [&](const at::Tensor& sums) {
    return compose_op.call(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups,
                           mask_mode == kAllPixels);
  };
  const std::optional<at::Tensor> factors = std::get<2>(compose(weight_sums));
  const auto [sums, maps, values] =
      forward_op.call(pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps, mask_in_diff, unknown_term,
                      known_term, sobel, grad_eps, coef, group, groups, true, false, factors);
  const auto [total, components, unused] = compose(sums);
  return {total, components, maps.select(0, 0)};  // the one map: pred's shape, no view op in Python
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CompositeExplicitAutograd, m) {
  m.impl("alpha_sobel_prescaled", &alpha_sobel_prescaled);
}

}  // namespace mattingloss
