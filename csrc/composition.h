// The single definition of the composition loss math, shared by the CPU and
// CUDA backends:
//   per pixel  w * sum_c rho(p * fg_c + (1 - p) * bg_c - image_c) / color_scale_c
//   rho        |d| (L1), sqrt(d^2 + eps^2) (Charbonnier) or d^2 (L2)
// its derivatives w.r.t. p, fg and bg, and how the per-sample sums become the
// loss of each reduction. Plain arithmetic on the accumulation type (float,
// or double for float64 predictions) only, so the CPU tests check the CUDA
// path's math too.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "codes.h"
#include "common/defs.h"
#include "common/pointwise.h"

namespace mattingloss {
namespace composition {

template <typename acc_t>
struct Params {
  acc_t eps2;          // inside Charbonnier's root
  acc_t inv_scale[3];  // 1 / color_scale per channel
  acc_t mask_lo;       // unknown value, or the open range's lower bound (already rounded
  acc_t mask_hi;       // to the dtype torch would compare in, on the host)
  acc_t channels;      // the mean's denominator is channels * sum(w) + guard: 3 or 1
  acc_t guard;
  int64_t mask_mode;
  int64_t rho;
  int64_t reduction;
};

// Per-sample sums: sum of the weighted terms, sum of the weights.
template <typename acc_t>
struct CompSums {
  acc_t term, weight;
  ML_INLINE CompSums operator+(const CompSums& o) const { return {term + o.term, weight + o.weight}; }
};

template <typename acc_t>
ML_INLINE acc_t mask_weight(acc_t t, const Params<acc_t>& P) {
  // Branch-free (selects, not jumps) so CPU loops vectorize.
  const acc_t equal = static_cast<acc_t>(t == P.mask_lo);
  const acc_t inside = static_cast<acc_t>((t > P.mask_lo) & (t < P.mask_hi));
  if (P.mask_mode == kAllPixels) return acc_t(1);
  return P.mask_mode == kWeight ? t : (P.mask_mode == kUnknownEqual ? equal : inside);
}

// rho(d) and its derivative. L1's derivative is torch's sign(d): 0 at d = 0
// (and for NaN, as torch.sign), so gradients at the kink equal autograd's.
template <typename acc_t>
ML_INLINE void rho_and_slope(int64_t rho, acc_t eps2, acc_t d, acc_t& value, acc_t& slope) {
  using std::fabs;
  using std::sqrt;
  if (rho == kL1) {
    value = fabs(d);
    slope = static_cast<acc_t>(d > acc_t(0)) - static_cast<acc_t>(d < acc_t(0));
  } else if (rho == kCharbonnier) {
    value = sqrt(d * d + eps2);
    slope = d / value;
  } else {
    value = d * d;
    slope = acc_t(2) * d;
  }
}

// One pixel. p: predicted alpha; t: trimap or weight value (unused for
// kAllPixels); img/fg/bg: its 3 channels. Outputs the weighted term
// w * sum_c rho(d_c) / scale_c, the weight, and the gradients of that term
// (before the reduction's scale). The composite is p*fg + (1-p)*bg, then
// minus the image, in the references' order of operations. The weight
// multiplies (never selects), so a NaN in pred_alpha reaches the loss.
template <bool kColorGrads, typename acc_t>
ML_INLINE void composition_pixel(const Params<acc_t>& P, acc_t p, acc_t t, const acc_t* img, const acc_t* fg,
                                 const acc_t* bg, acc_t& term, acc_t& weight, acc_t& grad_pred, acc_t* grad_fg,
                                 acc_t* grad_bg) {
  const acc_t w = mask_weight(t, P);
  const acc_t q = acc_t(1) - p;
  acc_t sum = 0, dp = 0;
  ML_UNROLL for (int c = 0; c < 3; ++c) {
    const acc_t d = (p * fg[c] + q * bg[c]) - img[c];
    acc_t value, slope;
    rho_and_slope(P.rho, P.eps2, d, value, slope);
    sum += value * P.inv_scale[c];
    const acc_t k = w * (slope * P.inv_scale[c]);
    dp += k * (fg[c] - bg[c]);
    if (kColorGrads) {
      grad_fg[c] = k * p;
      grad_bg[c] = k * q;
    }
  }
  weight = w;
  term = w * sum;
  grad_pred = dp;
}

template <typename acc_t>
ML_INLINE acc_t denominator(const Params<acc_t>& P, acc_t weight) {
  return P.channels * weight + P.guard;
}

// What one sample adds to the batch total that finalize() reads: its raw sums
// (pooled "mean", "sum"), or its own mean ("sample"; 0 when empty).
template <typename acc_t>
ML_INLINE CompSums<acc_t> sample_contribution(const Params<acc_t>& P, const CompSums<acc_t>& s) {
  if (P.reduction != kSample) return s;
  const acc_t d = denominator(P, s.weight);
  return {d > acc_t(0) ? s.term / d : acc_t(0), acc_t(1)};
}

// The loss from the sum of all samples' contributions. An empty mask with
// guard 0 gives 0, not 0/0.
template <typename acc_t>
ML_INLINE acc_t finalize(const Params<acc_t>& P, const CompSums<acc_t>& total, int64_t batch) {
  if (P.reduction == kMean) {
    const acc_t d = denominator(P, total.weight);
    return d > acc_t(0) ? total.term / d : acc_t(0);
  }
  if (P.reduction == kSample) return total.term / acc_t(batch);
  return total.term;  // "sum"
}

// d(loss)/d(per-pixel term) for every pixel of one sample: what backward
// multiplies the stored per-pixel gradients by (times grad_output).
template <typename acc_t>
ML_INLINE acc_t grad_scale(const Params<acc_t>& P, const CompSums<acc_t>& sample, const CompSums<acc_t>& total,
                           int64_t batch) {
  if (P.reduction == kMean) {
    const acc_t d = denominator(P, total.weight);
    return d > acc_t(0) ? acc_t(1) / d : acc_t(0);
  }
  if (P.reduction == kSample) {
    const acc_t d = denominator(P, sample.weight);
    return d > acc_t(0) ? acc_t(1) / (acc_t(batch) * d) : acc_t(0);
  }
  return acc_t(1);
}

// What a backend's forward kernel gets: the inputs and outputs (read as
// stored, converted per element; mask.data is null for kAllPixels and alpha is
// not read) and the parameters. Plain data with no ATen types, so the .cu file
// needs no torch headers. Filled by prepare_forward() in composition_host.cpp.
template <typename acc_t>
struct CompositionPointwise;

template <typename acc_t>
struct ForwardArgs : PointwiseIO<acc_t> {
  using Policy = CompositionPointwise<acc_t>;
  Params<acc_t> params;
};

// The composition loss as a pointwise policy (common/pointwise.h): the
// per-pixel math above, its rho a kernel constant, and the end of the pass on
// both backends: the loss and the per-sample backward scales from the
// per-sample sums. With no mask every pixel counts 1: the counts are set
// exactly, whatever acc_t's integer range.
template <typename acc_t>
struct CompositionPointwise {
  using Acc = acc_t;
  using Args = ForwardArgs<acc_t>;
  using Params = composition::Params<acc_t>;
  using Sums = CompSums<acc_t>;
  static constexpr int kTerms = 1;
  static constexpr bool kReadsAlpha = false;
  static constexpr bool kHasAllPixels = true;
  static constexpr bool kRawLoadsFirst = std::is_same_v<acc_t, float>;  // float64's spill (sm_90)

  template <typename F>
  static void with_variant(const Args& a, const F& f) {
    switch (a.params.rho) {
      case kL1: return f(std::true_type(), std::integral_constant<int64_t, kL1>());
      case kCharbonnier: return f(std::true_type(), std::integral_constant<int64_t, kCharbonnier>());
      default: return f(std::true_type(), std::integral_constant<int64_t, kL2>());
    }
  }
  template <int64_t kRho>
  ML_INLINE static Params with_rho(Params P) {
    P.rho = kRho;  // a constant: the other rhos' code folds away
    return P;
  }
  template <bool kComp, bool kColorGrads>
  ML_INLINE static void pixel(const Params& P, acc_t p, acc_t, acc_t t, const acc_t* img, const acc_t* fg,
                              const acc_t* bg, PointResult<acc_t, 1>& r) {
    composition_pixel<kColorGrads>(P, p, t, img, fg, bg, r.term[0], r.weight, r.grad_pred, r.grad_fg, r.grad_bg);
  }
  ML_INLINE static acc_t loss(const Params&, const acc_t* terms) { return terms[0]; }
  ML_INLINE static Sums sums(const PointResult<acc_t, 1>& r) { return {r.term[0], r.weight}; }

  const Args& a;
  acc_t* scale_out;  // a.scale
  ML_INLINE void fix(Sums& s) const {
    if (a.params.mask_mode == kAllPixels) s.weight = acc_t(a.pixels);
  }
  ML_INLINE Sums contribution(const Sums& s) const { return sample_contribution(a.params, s); }
  ML_INLINE void finish(Sums& total) const {
    if (a.params.mask_mode == kAllPixels && a.params.reduction != kSample)
      total.weight = acc_t(double(a.pixels) * double(a.batch));
    if (a.loss) *a.loss = finalize(a.params, total, a.batch);
  }
  ML_INLINE acc_t scale(const Sums& sample, const Sums& total) const {
    return grad_scale(a.params, sample, total, a.batch);
  }
};

}  // namespace composition
}  // namespace mattingloss
