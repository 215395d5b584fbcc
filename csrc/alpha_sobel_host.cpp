// Host side of alpha_sobel_forward, _weights, _compose and _prescaled, the
// ops' only torch-including file: checks the raw ops' arguments (the Python
// API checks first, with friendlier messages; these keep a direct torch.ops
// call from reading out of bounds), allocates the outputs, fills the kernels'
// argument structs and runs the backend's kernels (../alpha_sobel.h declares
// them); the CPU and CUDA registrations.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <tuple>
#include <type_traits>

#include "alpha_sobel.h"
#include "common/host_tensors.h"
#ifdef MATTINGLOSS_CUDA
#include "common/cuda_host.h"
#endif

namespace mattingloss {
namespace {

using AlphaGradResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // (sums, grad, values)

struct AlphaGradOp {
  AlphaGradResult outputs;
  AlphaGradArgs<float> f32;
  AlphaGradArgs<double> f64;
  bool use_double = false;
};

// alpha_sobel_weights: the weight sums of alpha_sobel_forward alone (one read of the mask).
struct AlphaWeightsOp {
  at::Tensor outputs;  // the sums (B, kAgSums): the weight columns, 0 in the others
  AlphaGradArgs<float> f32;
  AlphaGradArgs<double> f64;
  bool use_double = false;
};

// alpha_sobel_compose: (total, components, factors) from the sums.
using AlphaComposeResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// What a backend's compose gets: the parameters and where the sums are read
// and the results written.
template <typename acc_t>
struct ComposeCall {
  AlphaComposeParams<acc_t> params;
  const acc_t* sums = nullptr;
  acc_t *total = nullptr, *components = nullptr, *factors = nullptr;
};

struct AlphaComposeOp {
  AlphaComposeResult outputs;
  ComposeCall<float> f32;
  ComposeCall<double> f64;
  bool use_double = false;
};

// The map of each of the 3 terms (group) and the number of maps (groups).
void check_groups(at::IntArrayRef group, int64_t groups) {
  TORCH_CHECK(groups >= 1 && groups <= kMaxGroups, "mattingloss: groups must be in 1..", kMaxGroups, ", got ", groups);
  for (int64_t g : group) TORCH_CHECK(g >= 0 && g < groups, "mattingloss: group index ", g, " out of 0..", groups - 1);
}

// pred_alpha (B, 1, H, W) and the mask as mask_mode reads it (both ops read them).
void check_pred_and_mask(const at::Tensor& pred, const std::optional<at::Tensor>& mask, int64_t mask_mode) {
  check_pred(pred);
  TORCH_CHECK(mask_mode >= kUnknownEqual && mask_mode <= kAllPixels, "mattingloss: bad mask_mode ", mask_mode);
  TORCH_CHECK(mask.has_value() == (mask_mode != kAllPixels), "mattingloss: mask must be given unless mask_mode is ",
              int64_t(kAllPixels));
  if (mask.has_value()) check_map(*mask, "mask", pred, 1);
}

// The parameters the region's weight needs (both ops), and the sizes.
template <typename acc_t>
void fill_region(AlphaGradArgs<acc_t>& a, const at::Tensor& pred, const std::optional<at::Tensor>& mask,
                 int64_t mask_mode, double mask_lo, double mask_hi) {
  auto& P = a.params;
  if (mask.has_value() && (mask_mode == kUnknownEqual || mask_mode == kUnknownRange)) {
    mask_lo = comparison_bound(mask_lo, *mask);
    mask_hi = comparison_bound(mask_hi, *mask);
  }
  P.mask_lo = acc_t(mask_lo);
  P.mask_hi = acc_t(mask_hi);
  P.mask_mode = mask_mode;
  P.binary_mask = mask_mode != kWeight;
  a.batch = pred.size(0);
  a.height = pred.size(2);
  a.width = pred.size(3);
  if (mask.has_value()) a.mask = input(*mask, "mask");
}

// The factors of alpha_sobel_forward: (groups, B), the accumulation type, on pred's device.
void check_factors(const at::Tensor& factors, int64_t groups, int64_t batch, at::ScalarType acc, const at::Tensor& pred) {
  TORCH_CHECK(factors.dim() == 2 && factors.size(0) == groups && factors.size(1) == batch,
              "mattingloss: factors has shape ", factors.sizes(), ", expected (", groups, ", ", batch, ")");
  TORCH_CHECK(factors.scalar_type() == acc, "mattingloss: factors must be ", acc, ", got ", factors.scalar_type());
  TORCH_CHECK(factors.is_contiguous() && factors.device() == pred.device(),
              "mattingloss: factors must be contiguous, on pred_alpha's device");
}

template <typename acc_t>
void fill(AlphaGradArgs<acc_t>& a, const at::Tensor& pred, const at::Tensor& gt,
          const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo, double mask_hi,
          double alpha_scale, int64_t rho, double eps, bool mask_in_diff, bool unknown_term, bool known_term,
          int64_t sobel, double grad_eps, at::ArrayRef<double> coef, at::IntArrayRef group, int64_t groups,
          const AlphaGradResult& out, const std::optional<at::Tensor>& factors) {
  fill_region(a, pred, mask, mask_mode, mask_lo, mask_hi);
  auto& P = a.params;
  P.alpha_scale = acc_t(alpha_scale);
  P.eps = acc_t(eps);
  P.grad_eps = acc_t(grad_eps);
  for (int t = 0; t < 4; ++t) P.coef[t] = acc_t(coef[t]);
  for (int t = 0; t < 3; ++t) P.group[t] = group[t];
  P.rho = rho;
  P.sobel = sobel;
  P.unknown_term = unknown_term;
  P.known_term = known_term;
  P.mask_in_diff = mask_in_diff;
  set_map_coefs(P);
  a.groups = factors.has_value() ? 1 : groups;
  if (factors.has_value()) a.factors = factors->const_data_ptr<acc_t>();
  a.pred = input(pred, "pred_alpha");
  a.gt = input(gt, "alpha");
  const auto& [sums, grad, values] = out;
  a.grad = output(grad);
  a.values = output(values);
  a.sums = sums.mutable_data_ptr<acc_t>();
}

AlphaGradOp prepare_alpha_sobel(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& mask,
                                   int64_t mask_mode, double mask_lo, double mask_hi, double alpha_scale,
                                   int64_t rho, double eps, bool mask_in_diff, bool unknown_term, bool known_term,
                                   int64_t sobel, double grad_eps, at::ArrayRef<double> coef,
                                   at::IntArrayRef group, int64_t groups, bool grad, bool per_pixel,
                                   const std::optional<at::Tensor>& factors) {
  check_pred_and_mask(pred, mask, mask_mode);
  check_map(gt, "alpha", pred, 1);
  // > 0 and finite: the CUDA kernel scales its zero padding by it too
  TORCH_CHECK(alpha_scale > 0 && std::isfinite(alpha_scale), "mattingloss: alpha_scale must be > 0, got ",
              alpha_scale);
  TORCH_CHECK(rho == kL1 || rho == kCharbonnier, "mattingloss: bad rho ", rho);
  TORCH_CHECK(rho == kL1 || eps > 0, "mattingloss: eps must be > 0, got ", eps);
  TORCH_CHECK(sobel >= kSobelNone && sobel <= kSobelMagnitude, "mattingloss: bad sobel ", sobel);
  TORCH_CHECK(sobel != kSobelMagnitude || grad_eps > 0, "mattingloss: grad_eps must be > 0, got ", grad_eps);
  TORCH_CHECK(coef.size() == 4, "mattingloss: coef needs 4 values, got ", coef.size());
  TORCH_CHECK(group.size() == 3, "mattingloss: group needs 3 values, got ", group.size());
  check_groups(group, groups);
  // A Sobel term's per-pixel gradient is no multiple of its per-pixel value: no "none" for it.
  TORCH_CHECK(!per_pixel || sobel == kSobelNone, "mattingloss: per_pixel values need sobel == ", int64_t(kSobelNone));

  const bool use_double = pred.scalar_type() == at::kDouble;
  const auto acc = use_double ? at::kDouble : at::kFloat;
  const int64_t B = pred.size(0), H = pred.size(2), W = pred.size(3);
  if (factors.has_value()) {
    TORCH_CHECK(grad, "mattingloss: factors scale the gradient: they need grad=True");
    check_factors(*factors, groups, B, acc, pred);
  }
  const int64_t maps = factors.has_value() ? 1 : groups;
  AlphaGradOp op;
  op.use_double = use_double;
  op.outputs = AlphaGradResult(at::empty({B, kAgSums}, pred.options().dtype(acc)),
                               grad ? at::empty({maps, B, 1, H, W}, pred.options()) : at::empty({0}, pred.options()),
                               per_pixel ? at::empty({B, 1, H, W}, pred.options().dtype(acc))
                                         : at::empty({0}, pred.options().dtype(acc)));
  for_acc_type(op, [&](auto& args) {
    fill(args, pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps, mask_in_diff, unknown_term,
         known_term, sobel, grad_eps, coef, group, groups, op.outputs, factors);
  });
  return op;
}

AlphaWeightsOp prepare_alpha_weights(const at::Tensor& pred, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                                     double mask_lo, double mask_hi) {
  check_pred_and_mask(pred, mask, mask_mode);
  AlphaWeightsOp op;
  op.use_double = pred.scalar_type() == at::kDouble;
  op.outputs = at::empty({pred.size(0), kAgSums}, pred.options().dtype(op.use_double ? at::kDouble : at::kFloat));
  for_acc_type(op, [&](auto& args) {
    fill_region(args, pred, mask, mask_mode, mask_lo, mask_hi);
    args.sums = op.outputs.mutable_data_ptr<std::remove_pointer_t<decltype(args.sums)>>();
  });
  return op;
}

template <typename acc_t>
void fill_compose(AlphaComposeParams<acc_t>& C, int64_t batch, int64_t pixels, at::IntArrayRef norm,
                  at::ArrayRef<double> guard, int64_t crop_pixels, double penalty, at::ArrayRef<double> weights,
                  at::IntArrayRef group, int64_t groups, bool count_all) {
  C.batch = batch;
  C.pixels = pixels;
  C.crop_pixels = crop_pixels;
  for (int t = 0; t < 3; ++t) {
    C.norm[t] = norm[t];
    C.group[t] = group[t];
    C.guard[t] = acc_t(guard[t]);
    C.weights[t] = acc_t(weights[t]);
  }
  C.groups = groups;
  C.penalty = acc_t(penalty);
  C.count_all = count_all;
}

AlphaComposeOp prepare_alpha_compose(const at::Tensor& sums, int64_t pixels, at::IntArrayRef norm,
                                     at::ArrayRef<double> guard, int64_t crop_pixels, double penalty,
                                     at::ArrayRef<double> weights, at::IntArrayRef group, int64_t groups,
                                     bool count_all) {
  TORCH_CHECK(sums.dim() == 2 && sums.size(0) > 0 && sums.size(1) == kAgSums, "mattingloss: sums has shape ",
              sums.sizes(), ", expected (B, ", int64_t(kAgSums), ") with B >= 1");
  TORCH_CHECK(sums.scalar_type() == at::kFloat || sums.scalar_type() == at::kDouble,
              "mattingloss: sums must be float32 or float64, got ", sums.scalar_type());
  TORCH_CHECK(sums.is_contiguous(), "mattingloss: sums must be contiguous");
  TORCH_CHECK(pixels >= 1, "mattingloss: pixels must be >= 1, got ", pixels);
  TORCH_CHECK(crop_pixels >= 0, "mattingloss: crop_pixels must be >= 0, got ", crop_pixels);
  TORCH_CHECK(norm.size() == 3 && guard.size() == 3 && weights.size() == 3 && group.size() == 3,
              "mattingloss: norm, guard, weights and group need 3 values each");
  check_groups(group, groups);
  for (int t = 0; t < 3; ++t) {
    TORCH_CHECK(norm[t] >= kNormOff && norm[t] <= kNormVitmatte, "mattingloss: bad norm ", norm[t]);
    TORCH_CHECK(guard[t] >= 0, "mattingloss: guard must be >= 0, got ", guard[t]);
  }
  const int64_t B = sums.size(0);
  AlphaComposeOp op;
  op.use_double = sums.scalar_type() == at::kDouble;
  op.outputs = AlphaComposeResult(at::empty({}, sums.options()), at::empty({3}, sums.options()),
                                  at::empty({groups, B}, sums.options()));
  const auto& [total, components, factors] = op.outputs;
  for_acc_type(op, [&](auto& call) {
    using acc_t = decltype(call.params.penalty);
    fill_compose(call.params, B, pixels, norm, guard, crop_pixels, penalty, weights, group, groups, count_all);
    call.sums = sums.const_data_ptr<acc_t>();
    call.total = total.mutable_data_ptr<acc_t>();
    call.components = components.mutable_data_ptr<acc_t>();
    call.factors = factors.mutable_data_ptr<acc_t>();
  });
  return op;
}

// Each backend's kernels.
template <typename acc_t>
void forward(CpuBackend, const AlphaGradArgs<acc_t>& a, const at::Tensor&) {
  alpha_sobel_cpu(a);
}
template <typename acc_t>
void weights(CpuBackend, const AlphaGradArgs<acc_t>& a, const at::Tensor&) {
  alpha_sobel_weights_cpu(a);
}
template <typename acc_t>
void compose(CpuBackend, const ComposeCall<acc_t>& c) {
  compose_alpha_losses(c.params, c.sums, c.total, c.components, c.factors);
}

#ifdef MATTINGLOSS_CUDA
// No host synchronisation.
template <typename acc_t>
void forward(CudaBackend, const AlphaGradArgs<acc_t>& a, const at::Tensor& pred) {
  launch_with_ticket<acc_t>(pred, alpha_sobel_scratch(a.batch, a.height, a.width), &launch_alpha_sobel_forward<acc_t>,
                            a);
}
template <typename acc_t>
void weights(CudaBackend, const AlphaGradArgs<acc_t>& a, const at::Tensor& pred) {
  launch_with_ticket<acc_t>(pred, alpha_sobel_scratch(a.batch, a.height, a.width), &launch_alpha_sobel_weights<acc_t>,
                            a);
}
template <typename acc_t>
void compose(CudaBackend, const ComposeCall<acc_t>& c) {
  C10_CUDA_CHECK(launch_alpha_sobel_compose(c.params, c.sums, c.total, c.components, c.factors,
                                            c10::cuda::getCurrentCUDAStream()));
}
#endif

template <typename Backend>
AlphaGradResult alpha_sobel_forward(const at::Tensor& pred, const at::Tensor& gt,
                                    const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo,
                                    double mask_hi, double alpha_scale, int64_t rho, double eps, bool mask_in_diff,
                                    bool unknown_term, bool known_term, int64_t sobel, double grad_eps,
                                    at::ArrayRef<double> coef, at::IntArrayRef group, int64_t groups, bool grad,
                                    bool per_pixel, const std::optional<at::Tensor>& factors) {
  return run_op<Backend>(
      pred,
      [&] {
        return prepare_alpha_sobel(pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps, mask_in_diff,
                                   unknown_term, known_term, sobel, grad_eps, coef, group, groups, grad, per_pixel,
                                   factors);
      },
      [&](const auto& a) { forward(Backend{}, a, pred); });
}

template <typename Backend>
at::Tensor alpha_sobel_weights(const at::Tensor& pred, const std::optional<at::Tensor>& mask, int64_t mask_mode,
                               double mask_lo, double mask_hi) {
  return run_op<Backend>(
      pred, [&] { return prepare_alpha_weights(pred, mask, mask_mode, mask_lo, mask_hi); },
      [&](const auto& a) { weights(Backend{}, a, pred); });
}

template <typename Backend>
AlphaComposeResult alpha_sobel_compose(const at::Tensor& sums, int64_t pixels, at::IntArrayRef norm,
                                       at::ArrayRef<double> guard, int64_t crop_pixels, double penalty,
                                       at::ArrayRef<double> weights, at::IntArrayRef group, int64_t groups,
                                       bool count_all) {
  return run_op<Backend>(
      sums,
      [&] {
        return prepare_alpha_compose(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups,
                                     count_all);
      },
      [&](const auto& c) { compose(Backend{}, c); });
}

// alpha_sobel_prescaled: the alpha losses with their final gradient in one
// call, through the dispatcher (so on every backend): the weight sums
// (alpha_sobel_weights), the gradient maps' factors from them (_compose),
// the pass with those factors (_forward: one map, the total's gradient) and
// the losses from its sums (_compose). The same four ops the Python code would
// call, bitwise the same results: one crossing from Python instead of four,
// with no Python between the kernels. CUDA has its own (two launches, below).
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

#ifdef MATTINGLOSS_CUDA
// alpha_sobel_prescaled on CUDA: the same four steps in two launches, each
// compose run by the last block of the kernel before it (LastBlockCompose in
// ../alpha_sobel.h), since a one-thread kernel per compose was half the op's
// launches (issue 27's budget). The four ops' checks, outputs and argument
// structs, the same functions on the same sums in the same order: bitwise
// their results. No host sync; each kernel takes the stream's ticket counter
// as the standalone ops do (CUDA-graph safe likewise).
Tensors3 alpha_sobel_prescaled_cuda(const at::Tensor& pred, const at::Tensor& gt,
                                    const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo,
                                    double mask_hi, double alpha_scale, int64_t rho, double eps, bool mask_in_diff,
                                    bool unknown_term, bool known_term, int64_t sobel, double grad_eps,
                                    at::ArrayRef<double> coef, at::IntArrayRef group, int64_t groups,
                                    at::IntArrayRef norm, at::ArrayRef<double> guard, int64_t crop_pixels,
                                    double penalty, at::ArrayRef<double> weights) {
  const CudaBackend::Guard device_guard(pred.device());
  AlphaWeightsOp w = prepare_alpha_weights(pred, mask, mask_mode, mask_lo, mask_hi);  // checks pred's shape
  const int64_t pixels = pred.size(2) * pred.size(3);
  auto compose = [&](const at::Tensor& sums) {
    return prepare_alpha_compose(sums, pixels, norm, guard, crop_pixels, penalty, weights, group, groups,
                                 mask_mode == kAllPixels);
  };
  AlphaComposeOp scales = compose(w.outputs);  // its total and components: written, unused
  AlphaGradOp f = prepare_alpha_sobel(pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps,
                                      mask_in_diff, unknown_term, known_term, sobel, grad_eps, coef, group, groups,
                                      true, false, std::get<2>(scales.outputs));
  AlphaComposeOp losses = compose(std::get<0>(f.outputs));  // its factors: written, unused
  auto run = [&](auto& weights_args, const auto& scales_call, auto& forward_args, const auto& losses_call) {
    auto last_block = [](const auto& c) {
      return LastBlockCompose<std::remove_const_t<std::remove_pointer_t<decltype(c.sums)>>>{
          c.params, c.total, c.components, c.factors};
    };
    weights_args.compose = last_block(scales_call);
    mattingloss::weights(CudaBackend{}, weights_args, pred);  // (the op's `weights` argument hides it)
    forward_args.compose = last_block(losses_call);  // (the factors above are read, these written elsewhere)
    forward(CudaBackend{}, forward_args, pred);
  };
  if (f.use_double) {
    run(w.f64, scales.f64, f.f64, losses.f64);
  } else {
    run(w.f32, scales.f32, f.f32, losses.f32);
  }
  const auto& [total, components, unused] = losses.outputs;
  return {total, components, std::get<1>(f.outputs).select(0, 0)};
}
#endif

}  // namespace

MATTINGLOSS_IMPL("alpha_sobel_forward", alpha_sobel_forward)
MATTINGLOSS_IMPL("alpha_sobel_weights", alpha_sobel_weights)
MATTINGLOSS_IMPL("alpha_sobel_compose", alpha_sobel_compose)
TORCH_LIBRARY_IMPL(mattingloss, CompositeExplicitAutograd, m) {
  m.impl("alpha_sobel_prescaled", &alpha_sobel_prescaled);  // CPU and Meta: the four ops
}
#ifdef MATTINGLOSS_CUDA
TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) {
  m.impl("alpha_sobel_prescaled", &alpha_sobel_prescaled_cuda);
}
#endif

}  // namespace mattingloss
