// The single definition of the Deep Image Matting loss math, shared by the CPU
// and CUDA backends: the per-pixel terms and their derivatives, and how the
// per-sample sums become the loss of each reduction mode. Only plain
// arithmetic on the accumulation type (float, or double for float64 inputs)
// lives here, so that the CPU tests check the CUDA path's math too.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "codes.h"
#include "common/defs.h"
#include "common/pointwise.h"

namespace mattingloss {

template <typename acc_t>
struct LossParams {
  acc_t wl;            // weight of the alpha term
  acc_t wc;            // 1 - wl, the comp term's, computed in double (1 - wl in float loses
                       // digits when wl is near 1)
  acc_t eps2;          // eps^2, inside the square roots
  acc_t alpha_scale;   // value of full opacity in `alpha`
  acc_t color_scale;   // value of full intensity in image / fg / bg
  acc_t mask_lo;       // unknown value, or the open range's lower bound
  acc_t mask_hi;       // the open range's upper bound
  int64_t mask_mode;   // MaskMode
  int64_t reduction;   // Reduction
};

// Per-sample sums: sum of w * alpha term, sum of w * comp term, sum of w.
template <typename acc_t>
struct Sums {
  acc_t alpha, comp, weight;
  ML_INLINE Sums operator+(const Sums& o) const {
    return {alpha + o.alpha, comp + o.comp, weight + o.weight};
  }
};

// What one pixel contributes: its terms, in Sums' order,
//   term[kAlphaTerm]  w * sqrt((p - a)^2 + eps^2)
//   term[kCompTerm]   w * sum_c sqrt((c_p - c_g)^2 + eps^2) / color_scale
// and the gradients of the per-pixel loss
//   w * (wl * alpha_term + (1 - wl) * comp_term / 3)
// i.e. not yet multiplied by the reduction's scale (1/N for "mean").
constexpr int kAlphaTerm = 0, kCompTerm = 1;
template <typename acc_t>
using PixelResult = PointResult<acc_t, 2>;

template <typename acc_t>
ML_INLINE acc_t unknown_weight(acc_t t, const LossParams<acc_t>& P) {
  // Computed branch-free (selects, not jumps) so CPU loops vectorize.
  const acc_t equal = static_cast<acc_t>(t == P.mask_lo);
  const acc_t inside = static_cast<acc_t>((t > P.mask_lo) & (t < P.mask_hi));
  return P.mask_mode == kWeight ? t : (P.mask_mode == kUnknownEqual ? equal : inside);
}

// p: predicted alpha in [0,1]; alpha: ground truth in 0..alpha_scale; t: the
// trimap or weight value; img/fg/bg: the 3 channels in 0..color_scale (read
// only when kComp). The weight multiplies every term (never selects), so a
// NaN or Inf in pred_alpha propagates as it does in the reference formulas.
// The ground-truth alpha is divided by its scale exactly as the reference
// does: near p == a the gradient amplifies any rounding of a by 1/eps. The
// other constant divisions are multiplications by reciprocals (hoisted out of
// the loops, within an ulp of dividing).
template <bool kComp, typename acc_t>
ML_INLINE void dim_pixel(const LossParams<acc_t>& P, acc_t p, acc_t alpha, acc_t t,
                         const acc_t* img, const acc_t* fg, const acc_t* bg,
                         PixelResult<acc_t>& r) {
  using std::sqrt;
  const acc_t w = unknown_weight(t, P);
  const acc_t da = p - alpha / P.alpha_scale;  // divided, as the reference: see the note above
  const acc_t ra = sqrt(da * da + P.eps2);
  r.weight = w;
  r.term[kAlphaTerm] = w * ra;
  acc_t dp = P.wl * (da / ra);
  acc_t comp = 0;
  if (kComp) {
    // d/dc_p of (1 - wl) * sqrt(d^2 + eps^2) / (3 * color_scale)
    const acc_t comp_slope = P.wc / (acc_t(3) * P.color_scale);
    const acc_t k = w * comp_slope;
    acc_t dcomp = 0;
    ML_UNROLL for (int c = 0; c < 3; ++c) {
      const acc_t composite = p * fg[c] + (acc_t(1) - p) * bg[c];
      const acc_t d = composite - img[c];
      const acc_t rc = sqrt(d * d + P.eps2);
      const acc_t slope = d / rc;
      comp += rc;
      dcomp += slope * (fg[c] - bg[c]);
      r.grad_fg[c] = k * slope * p;
      r.grad_bg[c] = k * slope * (acc_t(1) - p);
    }
    dp += comp_slope * dcomp;
  }
  r.term[kCompTerm] = w * comp * (acc_t(1) / P.color_scale);
  r.grad_pred = w * dp;
}

// The per-pixel value of reduction="none".
template <typename acc_t>
ML_INLINE acc_t pixel_loss(const LossParams<acc_t>& P, acc_t alpha_term, acc_t comp_term) {
  return P.wl * alpha_term + P.wc * comp_term * (acc_t(1) / acc_t(3));
}

// What one sample adds to the batch total that finalize() reads: its raw sums
// (pooled "mean", "sum"), or its own mean losses ("sample"; 0 when empty).
template <typename acc_t>
ML_INLINE Sums<acc_t> sample_contribution(const Sums<acc_t>& s, int64_t reduction) {
  if (reduction != kSample) return s;
  if (!(s.weight > acc_t(0))) return {acc_t(0), acc_t(0), acc_t(0)};
  return {s.alpha / s.weight, s.comp / (acc_t(3) * s.weight), acc_t(1)};
}

// loss_out[0] = total, [1] = alpha loss, [2] = comp loss, from the sum of all
// samples' contributions. An empty unknown region gives 0, not 0/0.
template <typename acc_t>
ML_INLINE void finalize(const LossParams<acc_t>& P, const Sums<acc_t>& total, int64_t batch,
                        acc_t* total_out, acc_t* alpha_out, acc_t* comp_out) {
  acc_t la = 0, lc = 0;
  if (P.reduction == kMean) {
    if (total.weight > acc_t(0)) {
      la = total.alpha / total.weight;
      lc = total.comp / (acc_t(3) * total.weight);
    }
  } else if (P.reduction == kSample) {
    la = total.alpha / acc_t(batch);
    lc = total.comp / acc_t(batch);
  } else if (P.reduction == kSum) {
    la = total.alpha;
    lc = total.comp / acc_t(3);
  }
  *total_out = P.wl * la + P.wc * lc;
  *alpha_out = la;
  *comp_out = lc;
}

// d(loss)/d(per-pixel loss) for every pixel of one sample: what backward
// multiplies the stored per-pixel gradients by (times grad_output).
template <typename acc_t>
ML_INLINE acc_t grad_scale(const LossParams<acc_t>& P, const Sums<acc_t>& sample,
                           const Sums<acc_t>& total, int64_t batch) {
  if (P.reduction == kMean) return total.weight > acc_t(0) ? acc_t(1) / total.weight : acc_t(0);
  if (P.reduction == kSample)
    return sample.weight > acc_t(0) ? acc_t(1) / (acc_t(batch) * sample.weight) : acc_t(0);
  return acc_t(1);
}

// What a backend's DIM forward kernel gets: the inputs and outputs (read as
// stored, converted per element to the accumulation type), the loss
// parameters and where the components go. Plain data with no ATen types, so
// the .cu file needs no torch headers. Filled by prepare_forward() in
// dim_loss_host.cpp.
template <typename acc_t>
struct DimPointwise;

template <typename acc_t>
struct ForwardArgs : PointwiseIO<acc_t> {
  using Policy = DimPointwise<acc_t>;
  LossParams<acc_t> params;
  bool has_comp = false;        // image, fg and bg given
  acc_t* components = nullptr;  // [alpha loss, comp loss]
};

// The DIM loss as a pointwise policy (common/pointwise.h): the per-pixel math
// above, one rho (Charbonnier's root), and the end of the pass on both
// backends: from the per-sample sums, the loss, its components and the
// per-sample backward scales.
template <typename acc_t>
struct DimPointwise {
  using Acc = acc_t;
  using Args = ForwardArgs<acc_t>;
  using Params = LossParams<acc_t>;
  using Sums = mattingloss::Sums<acc_t>;
  static constexpr int kTerms = 2;
  static constexpr bool kReadsAlpha = true;
  static constexpr bool kHasAllPixels = false;
  static constexpr bool kRawLoadsFirst = true;  // no spills in float64 either (sm_90: 146 registers)

  template <typename F>
  static void with_variant(const Args& a, const F& f) {
    using Charbonnier = std::integral_constant<int64_t, kCharbonnier>;
    if (a.has_comp) {
      f(std::true_type(), Charbonnier());
    } else {
      f(std::false_type(), Charbonnier());
    }
  }
  template <int64_t kRho>
  ML_INLINE static Params with_rho(const Params& P) {
    return P;
  }
  template <bool kComp, bool kColorGrads>
  ML_INLINE static void pixel(const Params& P, acc_t p, acc_t alpha, acc_t t, const acc_t* img, const acc_t* fg,
                              const acc_t* bg, PixelResult<acc_t>& r) {
    dim_pixel<kComp>(P, p, alpha, t, img, fg, bg, r);
  }
  ML_INLINE static acc_t loss(const Params& P, const acc_t* terms) {
    return pixel_loss(P, terms[kAlphaTerm], terms[kCompTerm]);
  }
  ML_INLINE static Sums sums(const PixelResult<acc_t>& r) { return {r.term[kAlphaTerm], r.term[kCompTerm], r.weight}; }

  const Args& a;
  acc_t* scale_out;  // a.scale
  ML_INLINE void fix(Sums&) const {}
  ML_INLINE Sums contribution(const Sums& s) const { return sample_contribution(s, a.params.reduction); }
  ML_INLINE void finish(Sums& total) const {
    acc_t value;
    finalize(a.params, total, a.batch, &value, a.components, a.components + 1);
    if (a.loss) *a.loss = value;
  }
  ML_INLINE acc_t scale(const Sums& sample, const Sums& total) const {
    return grad_scale(a.params, sample, total, a.batch);
  }
};

}  // namespace mattingloss
