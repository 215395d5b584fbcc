// The single definition of the masked alpha loss (L1 / Charbonnier, unknown
// and known regions) and the Sobel gradient loss (ViTMatte, mmagic, GCA
// styles), shared by the CPU and CUDA backends: the per-pixel terms, their
// derivatives, the 3x3 Sobel stencil and its adjoint. Only plain arithmetic on
// the accumulation type (float, or double for float64 inputs) lives here.
//
// One pass computes, per sample, the sums every convention is made of
// (AlphaGradSum) and the per-pixel gradient of the weighted sum of terms
// sum_t coef[t] * S_t, split into up to kMaxGroups maps: terms that a caller
// normalises differently (ViTMatte's unknown and known L1 have their own
// data-dependent scales) go to different maps, which backward scales and adds.
#pragma once

#include <cmath>
#include <cstdint>
#if !defined(__CUDACC__)
#include <bit>
#include <type_traits>
#endif

#include "codes.h"
#include "common/defs.h"
#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace mattingloss {

constexpr int kMaxGroups = 3;

// Gradient coefficient and output map of each term.
enum AlphaGradTerm : int { kTermUnknown = 0, kTermKnown = 1, kTermSobel = 2, kTermPenalty = 3 };

template <typename acc_t>
struct AlphaGradParams {
  acc_t alpha_scale;  // gt / alpha_scale is the ground truth in [0, 1]
  acc_t eps;          // Charbonnier: sqrt(d^2 + eps), eps as added (already squared)
  acc_t grad_eps;     // GCA magnitude: sqrt(gy^2 + gx^2 + grad_eps)
  acc_t mask_lo, mask_hi;
  acc_t coef[4];      // d(weighted loss)/d(term sum), by AlphaGradTerm
  // coef of the unknown [0] and known [1] term in each map: 0 in the maps the
  // term does not go to, and when the term is off (set by set_map_coefs).
  acc_t map_coef[2][kMaxGroups];
  // coef of the unknown [0] and known [1] term in the per-pixel value (0 when off).
  acc_t value_coef[2];
  int64_t group[3];   // map of the unknown, known and Sobel (+ penalty) terms
  int64_t mask_mode;  // MaskMode
  int64_t rho;        // Rho (L1 or Charbonnier)
  int64_t sobel;      // SobelStyle
  bool unknown_term, known_term;
  bool mask_in_diff;  // rho(p*w - g*w) (ViTMatte, GCA) instead of w * rho(p - g) (mmagic)
  bool binary_mask;   // w is exactly 0 or 1: a trimap's region, or no mask (see l1_in_diff_binary)
};

template <typename acc_t>
ML_INLINE void set_map_coefs(AlphaGradParams<acc_t>& P) {
  for (int k = 0; k < kMaxGroups; ++k) {
    P.map_coef[0][k] = P.unknown_term && P.group[0] == k ? P.coef[kTermUnknown] : acc_t(0);
    P.map_coef[1][k] = P.known_term && P.group[1] == k ? P.coef[kTermKnown] : acc_t(0);
  }
  P.value_coef[0] = P.unknown_term ? P.coef[kTermUnknown] : acc_t(0);
  P.value_coef[1] = P.known_term ? P.coef[kTermKnown] : acc_t(0);
}

// The coefficients of one sample's gradient when the caller already knows the
// maps' factors (groups, B) (alpha_sobel_weights, then _compose on its sums):
// each term's coefficient times its map's factor for sample b, every term in map
// 0. The op then writes the total's gradient (at grad_output 1) as one map, and
// backward is a scaling by grad_output, skipped when that is 1.
template <typename acc_t>
ML_INLINE void scale_coefs_for_sample(AlphaGradParams<acc_t>& P, const acc_t* factors, int64_t b, int64_t batch) {
  const int64_t term_group[4] = {P.group[0], P.group[1], P.group[2], P.group[2]};  // the penalty: the Sobel map
  for (int t = 0; t < 4; ++t) P.coef[t] *= factors[term_group[t] * batch + b];
  for (int t = 0; t < 3; ++t) P.group[t] = 0;
  set_map_coefs(P);
}

// Whether a trimap value is in the unknown region (binary modes; every pixel without a mask).
template <typename acc_t>
ML_INLINE bool region_inside(acc_t t, int64_t mode, acc_t lo, acc_t hi) {
  return mode == kUnknownEqual ? t == lo : (mode == kUnknownRange ? (t > lo) & (t < hi) : true);
}

// w: 1 in the unknown region (or the weight itself); branch-free so CPU loops vectorize.
template <typename acc_t>
ML_INLINE acc_t region_weight(acc_t t, int64_t mode, acc_t lo, acc_t hi) {
  return mode == kWeight ? t : (region_inside(t, mode, lo, hi) ? acc_t(1) : acc_t(0));  // (see alpha_pixel_binary's w)
}

// ViTMatte's known region: new_sample_map[sample_map == 0] = 1.
template <typename acc_t>
ML_INLINE acc_t known_weight(acc_t w) {
  return static_cast<acc_t>(w == acc_t(0));
}

// a * b rounded on its own, never fused into a following add: `p*w - g*w`
// must be exactly 0 where the references (separate roundings) find it 0, the L1
// kink. nvcc contracts a*b - c*d into an FMA by default; the CPU file is
// compiled with fp-contract=off instead (alpha_sobel_cpu.cpp).
template <typename acc_t>
ML_INLINE acc_t mul_rn(acc_t a, acc_t b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(acc_t) == sizeof(double)) {
    return __dmul_rn(a, b);
  } else {
    return __fmul_rn(a, b);
  }
#else
  return a * b;
#endif
}

// d|x|/dx as torch's abs backward computes it: sign(x), 0 at x = 0 (and at
// NaN): exactly 1, -1 or +0, as (x > 0) - (x < 0) gives them, in fewer
// vector instructions (one ordered compare, one sign-bit merge, one mask).
template <typename acc_t>
ML_INLINE acc_t sign0(acc_t x) {
  using std::copysign;
  return (x > acc_t(0)) | (x < acc_t(0)) ? copysign(acc_t(1), x) : acc_t(0);
}

// |a*w - b*w| and its derivative w.r.t. a, sign0(.) * w, for a weight w that is
// exactly 0 or 1: then a*w - b*w is (a - b) * w, a rounding for a rounding
// (w = 1: both a - b; w = 0: both +-0, or NaN from a non-finite a or b), up to
// the sign of a zero, which neither |.| nor sign0 sees, so the value is |d| and
// the derivative sign0(d) (where w = 0, d is +-0 and sign0 gives 0): one product
// instead of two, no product in the derivative. (Only an a - b that overflows,
// |a|, |b| ~ 1e38, gives NaN where the references give 0, at a pixel whose
// complement term is then infinite anyway.)
template <typename acc_t>
ML_INLINE void l1_in_diff_binary(acc_t a, acc_t b, acc_t w, acc_t& value, acc_t& slope) {
  using std::fabs;
  const acc_t d = (a - b) * w;
  value = fabs(d);
  slope = sign0(d);
}

// rho of the masked difference and d(rho)/dp:
//   mask_in_diff: rho(p*w - g*w), derivative rho'(.) * w
//   else:         w * rho(p - g),  derivative w * rho'(p - g)
// They agree for L1 (|w x| = w |x| for w >= 0); for Charbonnier they differ
// where w != 1: a pixel with w = 0 adds sqrt(eps) in the first form, 0 in the second.
// binary: w is exactly 0 or 1 (l1_in_diff_binary's shortcut for L1).
template <typename acc_t>
ML_INLINE void rho_masked(const AlphaGradParams<acc_t>& P, bool binary, acc_t p, acc_t g, acc_t w, acc_t& value,
                          acc_t& slope) {
  using std::fabs;
  using std::sqrt;
  if (P.mask_in_diff && binary && P.rho == kL1) return l1_in_diff_binary(p, g, w, value, slope);
  const acc_t d = P.mask_in_diff ? mul_rn(p, w) - mul_rn(g, w) : p - g;
  acc_t r, dr;
  if (P.rho == kL1) {
    r = fabs(d);  // |d|; +0 where d = -0: the same in any sum of these terms
    dr = sign0(d);
  } else {
    r = sqrt(d * d + P.eps);
    dr = d / r;
  }
  value = P.mask_in_diff ? r : w * r;
  slope = dr * w;
}

// The pointwise part at one pixel: the term values (added to the sums), the
// weighted sum of the terms that are on (reduction "none"'s per-pixel value)
// and the gradient contribution to each map.
template <typename acc_t>
struct PointResult {
  acc_t unknown, known, w, wk;
  acc_t value;
  acc_t grad[kMaxGroups];
};

// The ground truth in [0, 1] from its stored value: divided, as the references
// do (both the pointwise terms and the Sobel responses read this).
template <typename acc_t>
ML_INLINE acc_t ground_truth(const AlphaGradParams<acc_t>& P, acc_t stored) {
  return stored / P.alpha_scale;
}

// g: the ground truth as ground_truth() gives it.
template <typename acc_t>
ML_INLINE void alpha_pixel(const AlphaGradParams<acc_t>& P, acc_t p, acc_t g, acc_t w, PointResult<acc_t>& r) {
  const acc_t wk = known_weight(w);
  r.w = w;
  r.wk = wk;
  // Both terms are always computed and combined with per-map coefficients (0
  // where a term is off or goes to another map): no branch, so CPU loops vectorize.
  acc_t vu, su, vk, sk;
  rho_masked(P, P.binary_mask, p, g, w, vu, su);
  rho_masked(P, true, p, g, wk, vk, sk);  // [w == 0] is 0 or 1 whatever w is
  r.unknown = vu;
  r.known = vk;
  r.value = P.value_coef[0] * vu + P.value_coef[1] * vk;
  ML_UNROLL for (int k = 0; k < kMaxGroups; ++k) r.grad[k] = P.map_coef[0][k] * su + P.map_coef[1][k] * sk;
}

// The Sobel responses (F.conv2d's cross-correlation with zero padding).
// ViTMatte's kernels:
//   Sx = [[-1,0,1],[-2,0,2],[-1,0,1]], Sy = [[-1,-2,-1],[0,0,0],[1,2,1]]
// (mmagic's are their negatives: the L1 of a difference does not see the sign.)
// Both are separable: Sx = [1,2,1]^T (x) [-1,0,1], Sy = [-1,0,1]^T (x) [1,2,1].
// Every backend computes them as a column pass (per column, down the three
// rows) and then a row pass (across the three columns' results), in this
// rounding order; the CPU computes each column's values once per row and
// reuses them for the three responses that read that column.
//
// [1, 2, 1] across three values (2*b is exact, so an FMA of it rounds the same).
template <typename acc_t>
ML_INLINE acc_t sobel_smooth(acc_t a, acc_t b, acc_t c) {
  return (a + acc_t(2) * b) + c;
}

// [-1, 0, 1] across three values (the middle one has weight 0).
template <typename acc_t>
ML_INLINE acc_t sobel_diff(acc_t a, acc_t c) {
  return c - a;
}

// A 3x3 neighbourhood given as rows up (y-1), mid (y), down (y+1), each read at
// columns x-1 (l), x (c), x+1 (r): the column pass then the row pass.
template <typename acc_t>
ML_INLINE acc_t sobel_x(acc_t ul, acc_t ur, acc_t ml, acc_t mr, acc_t dl, acc_t dr) {
  return sobel_diff(sobel_smooth(ul, ml, dl), sobel_smooth(ur, mr, dr));
}

template <typename acc_t>
ML_INLINE acc_t sobel_y(acc_t ul, acc_t uc, acc_t ur, acc_t dl, acc_t dc, acc_t dr) {
  return sobel_smooth(sobel_diff(ul, dl), sobel_diff(uc, dc), sobel_diff(ur, dr));
}

// What the Sobel terms at one pixel add to the sums, and the derivative of the
// weighted loss w.r.t. the prediction's responses there (ex = d/dSx(p),
// ey = d/dSy(p)), which the adjoint stencil spreads to the 3x3 neighbourhood.
template <typename acc_t>
struct SobelResult {
  acc_t sx, sy, px, py;  // kSumSobelX, kSumSobelY, kSumPenaltyX, kSumPenaltyY
  acc_t ex, ey;
};

// |a*w - b*w| (mask_in_diff) or w * |a - b|, and its derivative w.r.t. a.
template <typename acc_t>
ML_INLINE void l1_masked(bool in_diff, bool binary, acc_t a, acc_t b, acc_t w, acc_t& value, acc_t& slope) {
  using std::fabs;
  if (in_diff && binary) return l1_in_diff_binary(a, b, w, value, slope);
  const acc_t d = in_diff ? mul_rn(a, w) - mul_rn(b, w) : a - b;
  const acc_t r = fabs(d);
  value = in_diff ? r : w * r;
  slope = sign0(d) * w;
}

template <typename acc_t>
ML_INLINE void sobel_pixel(const AlphaGradParams<acc_t>& P, acc_t gx_p, acc_t gy_p, acc_t gx_g, acc_t gy_g, acc_t w,
                           SobelResult<acc_t>& r) {
  using std::sqrt;
  if (P.sobel == kSobelDiff) {
    acc_t sx, sy, px, py;
    l1_masked(P.mask_in_diff, P.binary_mask, gx_p, gx_g, w, r.sx, sx);
    l1_masked(P.mask_in_diff, P.binary_mask, gy_p, gy_g, w, r.sy, sy);
    l1_masked(P.mask_in_diff, P.binary_mask, gx_p, acc_t(0), w, r.px, px);
    l1_masked(P.mask_in_diff, P.binary_mask, gy_p, acc_t(0), w, r.py, py);
    r.ex = P.coef[kTermSobel] * sx + P.coef[kTermPenalty] * px;
    r.ey = P.coef[kTermSobel] * sy + P.coef[kTermPenalty] * py;
  } else {
    // GCA: sqrt((Sy^2 + Sx^2) + eps) of each (its channels summed in filter order: y, x).
    const acc_t mp = sqrt((gy_p * gy_p + gx_p * gx_p) + P.grad_eps);
    const acc_t mg = sqrt((gy_g * gy_g + gx_g * gx_g) + P.grad_eps);
    acc_t s;
    l1_masked(P.mask_in_diff, P.binary_mask, mp, mg, w, r.sx, s);
    r.sy = 0;
    r.px = 0;
    r.py = 0;
    const acc_t k = P.coef[kTermSobel] * s / mp;
    r.ex = k * gx_p;
    r.ey = k * gy_p;
  }
}

// ------------------------------------------------- binary region, L1: the CPU's fast form
// With w exactly 0 or 1 and rho = L1, each term above is |x| where w = 1 and
// |x * 0| where w = 0 (+0, or NaN for a non-finite x), and its derivative is
// c * sign0(x) where w = 1, else 0. Where every x is finite, no product is
// needed: |x| where w = 1 else +0 is one AND of x's bits, and c * sign0(x) is
// c with x's sign bit, masked. The CPU computes each band in this form, checks
// that its values were finite and redoes a band that was not in the forms above
// (alpha_sobel_cpu.cpp), so the sums keep the references' NaN. (CPU only:
// on a GPU this pass should be bound by memory, where fewer operations buy
// nothing; the CUDA kernel keeps the forms above.)
#if !defined(__CUDACC__)
template <typename acc_t>
using FloatBits = std::conditional_t<sizeof(acc_t) == sizeof(uint64_t), uint64_t, uint32_t>;

// The bits that keep |x| where `in` (all but the sign), else none.
template <typename acc_t>
ML_INLINE FloatBits<acc_t> abs_bits_if(bool in) {
  return in ? ~FloatBits<acc_t>(0) >> 1 : FloatBits<acc_t>(0);
}

// x & keep: |x| or +0.
template <typename acc_t>
ML_INLINE acc_t keep_bits(acc_t x, FloatBits<acc_t> keep) {
  return std::bit_cast<acc_t>(std::bit_cast<FloatBits<acc_t>>(x) & keep);
}

// c * sign0(x) where `in`, else 0 (up to the sign of a zero): c with its sign
// flipped where x is negative, exactly c * -1 (one bitwise operation).
template <typename acc_t>
ML_INLINE acc_t scaled_sign0(bool in, acc_t c, acc_t x) {
  using Bits = FloatBits<acc_t>;
  const Bits sign = ~(~Bits(0) >> 1);
  const acc_t signed_c = std::bit_cast<acc_t>(std::bit_cast<Bits>(c) ^ (std::bit_cast<Bits>(x) & sign));
  return in & ((x > acc_t(0)) | (x < acc_t(0))) ? signed_c : acc_t(0);
}

// alpha_pixel's fast form. The unknown and known regions are complements, so
// |d| goes to exactly one of the two sums: a non-finite d makes their total
// non-finite (the CPU's check for this part).
template <typename acc_t>
ML_INLINE void alpha_pixel_binary(const AlphaGradParams<acc_t>& P, acc_t p, acc_t g, bool in, PointResult<acc_t>& r) {
  using std::fabs;
  const acc_t d = p - g;
  r.unknown = keep_bits(d, abs_bits_if<acc_t>(in));
  r.known = keep_bits(d, abs_bits_if<acc_t>(!in));
  r.w = in ? acc_t(1) : acc_t(0);  // (not a bool's conversion: that one is no vector operation)
  r.wk = in ? acc_t(0) : acc_t(1);
  // (Values loaded before the select: a select of two addresses is no vector load.)
  const acc_t vu = P.value_coef[0], vk = P.value_coef[1];
  r.value = (in ? vu : vk) * fabs(d);
  ML_UNROLL for (int k = 0; k < kMaxGroups; ++k) {
    const acc_t cu = P.map_coef[0][k], ck = P.map_coef[1][k];
    r.grad[k] = scaled_sign0(true, in ? cu : ck, d);
  }
}

// sobel_pixel's fast form (kSobelDiff). The x and y differences are finite
// exactly when all four responses are: `probe` gets their sum (the CPU's check).
template <typename acc_t>
ML_INLINE void sobel_pixel_binary(const AlphaGradParams<acc_t>& P, acc_t gx_p, acc_t gy_p, acc_t gx_g, acc_t gy_g,
                                  bool in, SobelResult<acc_t>& r, acc_t& probe) {
  const FloatBits<acc_t> keep = abs_bits_if<acc_t>(in);
  const acc_t dx = gx_p - gx_g, dy = gy_p - gy_g;
  r.sx = keep_bits(dx, keep);
  r.sy = keep_bits(dy, keep);
  r.px = keep_bits(gx_p, keep);
  r.py = keep_bits(gy_p, keep);
  r.ex = scaled_sign0(in, P.coef[kTermSobel], dx) + scaled_sign0(in, P.coef[kTermPenalty], gx_p);
  r.ey = scaled_sign0(in, P.coef[kTermSobel], dy) + scaled_sign0(in, P.coef[kTermPenalty], gy_p);
  probe = dx + dy;
}
#endif

// The adjoint of p -> (Sx(p), Sy(p)) at one pixel: sum over the neighbours of
// K[i+1][j+1] * e(y-i, x-j) for each kernel, e zero outside the image (the
// transposed stencil, with F.conv2d's zero padding respected at the borders):
// the correlation with the flipped kernels [1,2,1]^T (x) [1,0,-1] and
// [1,0,-1]^T (x) [1,2,1], again a column pass then a row pass.
// Column pass, rows u = y-1, m = y, d = y+1 of ex and ey at one column:
template <typename acc_t>
ML_INLINE acc_t sobel_adjoint_col_x(acc_t exu, acc_t exm, acc_t exd) {
  return sobel_smooth(exu, exm, exd);
}

template <typename acc_t>
ML_INLINE acc_t sobel_adjoint_col_y(acc_t eyu, acc_t eyd) {
  return sobel_diff(eyd, eyu);
}

// Row pass over the column values at x-1 (l), x (c), x+1 (r): the gradient at (y, x).
template <typename acc_t>
ML_INLINE acc_t sobel_adjoint_row(acc_t cxl, acc_t cxr, acc_t cyl, acc_t cyc, acc_t cyr) {
  return sobel_diff(cxr, cxl) + sobel_smooth(cyl, cyc, cyr);
}

// The same from the 3x3 neighbourhoods of ex and ey (rows u, m, d; columns l, c, r).
template <typename acc_t>
ML_INLINE acc_t sobel_adjoint(acc_t exul, acc_t exur, acc_t exml, acc_t exmr, acc_t exdl, acc_t exdr, acc_t eyul,
                              acc_t eyuc, acc_t eyur, acc_t eydl, acc_t eydc, acc_t eydr) {
  return sobel_adjoint_row(sobel_adjoint_col_x(exul, exml, exdl), sobel_adjoint_col_x(exur, exmr, exdr),
                           sobel_adjoint_col_y(eyul, eydl), sobel_adjoint_col_y(eyuc, eydc),
                           sobel_adjoint_col_y(eyur, eydr));
}

// ---------------------------------------------------------------- composition
// The losses from the per-sample sums, by the second op (alpha_sobel_compose):
// a handful of scalar operations, one op (one tiny kernel on CUDA) instead of
// a chain of small torch ops per term.

template <typename acc_t>
struct AlphaComposeParams {
  int64_t batch, pixels;  // B, H * W
  int64_t crop_pixels;    // ViTMatte's 512^2; 0: pixels
  int64_t norm[3];        // AlphaNorm of the unknown, known and Sobel terms
  int64_t group[3];       // their gradient maps
  int64_t groups;
  acc_t guard[3];
  acc_t weights[3];  // of the three terms in the total
  acc_t penalty;     // of the prediction's own Sobel responses (ViTMatte 0.01)
  bool count_all;    // no mask: the unknown weight sum is H * W exactly (a float32 count of ones stops at 2^24)
};

// 1 / x where x > 0, else 0 (an empty region's term is 0, not NaN).
template <typename acc_t>
ML_INLINE acc_t inverse_or_zero(acc_t x) {
  return x > acc_t(0) ? acc_t(1) / x : acc_t(0);
}

// Outputs: total, components[3] (each term before its weight) and factors
// (groups, B): loss = sum_t weights[t] * sum_b factors[group[t]][b] * S_t[b], so
// factors times the total's weights scale the stored gradient maps in backward.
template <typename acc_t>
ML_INLINE void compose_alpha_losses(const AlphaComposeParams<acc_t>& C, const acc_t* sums, acc_t* total,
                                    acc_t* components, acc_t* factors) {
  const int64_t B = C.batch;
  ML_NO_UNROLL for (int64_t k = 0; k < C.groups * B; ++k) factors[k] = acc_t(0);
  ML_NO_UNROLL for (int t = 0; t < 3; ++t) {
    const int64_t weight_sum = t == kTermKnown ? kSumWKnown : kSumWUnknown;
    components[t] = acc_t(0);
    if (C.norm[t] == kNormOff) continue;
    const bool all = C.count_all && t != kTermKnown;
    acc_t w_total = 0;
    ML_NO_UNROLL for (int64_t b = 0; b < B; ++b) w_total += all ? acc_t(C.pixels) : sums[b * kAgSums + weight_sum];
    acc_t pooled = 1;  // the factor when one for the whole batch
    switch (C.norm[t]) {
      case kNormMean: pooled = inverse_or_zero(w_total + C.guard[t]); break;
      case kNormNumel: pooled = acc_t(1.0 / (double(B) * double(C.pixels))); break;
      case kNormVitmatte: {
        const acc_t crop = acc_t(B * (C.crop_pixels > 0 ? C.crop_pixels : C.pixels));
        pooled = w_total > acc_t(0) ? crop / w_total / acc_t(B * C.pixels) : acc_t(0);
        break;
      }
      default: break;
    }
    acc_t part = 0;
    ML_NO_UNROLL for (int64_t b = 0; b < B; ++b) {
      const acc_t* s = sums + b * kAgSums;
      const acc_t w = all ? acc_t(C.pixels) : s[weight_sum];
      const acc_t f = C.norm[t] == kNormSample ? inverse_or_zero(w + C.guard[t]) / acc_t(B) : pooled;
      const acc_t sobel = s[kSumSobelX] + s[kSumSobelY] + C.penalty * (s[kSumPenaltyX] + s[kSumPenaltyY]);
      const acc_t term = t == kTermUnknown ? s[kSumUnknown] : t == kTermKnown ? s[kSumKnown] : sobel;
      factors[C.group[t] * B + b] = f;
      part += f * term;
    }
    components[t] = part;
  }
  *total = C.weights[0] * components[0] + C.weights[1] * components[1] + C.weights[2] * components[2];
}

// What the CUDA prescaled op's last blocks compose from the sums they have just
// written, so that neither compose is a launch of its own (issue 27's budget):
// the weights kernel's factors, then the forward's losses. When factors is not
// null, the last block runs compose_alpha_losses(params, sums, total,
// components, factors) after the sums: the four ops' function on the four ops'
// sums, so their bits.
template <typename acc_t>
struct LastBlockCompose {
  AlphaComposeParams<acc_t> params;
  acc_t *total, *components, *factors;
};

// What a backend's alpha/Sobel-loss kernel gets: raw pointers, the dtype of
// each input (read as stored), sizes and the parameters. Plain data with no
// ATen types, so the .cu file needs no torch headers. Filled by
// prepare_alpha_sobel() in alpha_sobel_host.cpp.
template <typename acc_t>
struct AlphaGradArgs {
  AlphaGradParams<acc_t> params{};  // zeros where an op fills only some (alpha_sobel_weights)
  int64_t batch = 0, height = 0, width = 0;
  int64_t groups = 0;       // gradient maps written (1..kMaxGroups); 1 with factors
  Input pred, gt, mask;     // (B,1,H,W); mask.data is null for kAllPixels
  Output grad;              // (groups, B, 1, H, W) in pred's dtype; null: not requested
  // (params.group's maps, B): when given, every term's gradient times its map's
  // factor goes to the one map written (scale_coefs_for_sample).
  const acc_t* factors = nullptr;
  Output values;            // (B, 1, H, W) per-pixel value (acc_t); null: not requested
  acc_t* sums = nullptr;    // (B, kAgSums)
  LastBlockCompose<acc_t> compose{};  // CUDA's alpha_sobel_prescaled only (the CPU kernels ignore it)
};

// The backends' entry points, called by alpha_sobel_host.cpp: the CPU kernels
// of alpha_sobel_forward and _weights (cpu/alpha_sobel_cpu.cpp; _compose is
// compose_alpha_losses above) and, below, the CUDA launches
// (cuda/alpha_sobel_kernel.cu).
template <typename acc_t>
void alpha_sobel_cpu(const AlphaGradArgs<acc_t>& args);
template <typename acc_t>
void alpha_sobel_weights_cpu(const AlphaGradArgs<acc_t>& args);

#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
// A block computes one tile of kAgTileH x kAgTileW pixels of one sample (the
// tiling depends on the shape alone, so the partial sums do too): each of its
// kAgWarps warps kAgWarpRows consecutive rows of it, walked downward, each lane
// kAgCols consecutive pixels of a row; lanes 1..30 own the tile's columns,
// lanes 0 and 31 read the columns either side (the stencil's halo).
constexpr int kAgCols = 4;
constexpr int kAgWarpRows = 16;
constexpr int kAgWarps = 4;
constexpr int kAgThreads = 32 * kAgWarps;
constexpr int kAgTileW = 30 * kAgCols;
constexpr int kAgTileH = kAgWarps * kAgWarpRows;

inline int64_t alpha_sobel_tiles(int64_t height, int64_t width) {
  return ((height + kAgTileH - 1) / kAgTileH) * ((width + kAgTileW - 1) / kAgTileW);
}

// Scratch the launch needs, in acc_t values: kAgSums per tile.
inline int64_t alpha_sobel_scratch(int64_t batch, int64_t height, int64_t width) {
  return batch * alpha_sobel_tiles(height, width) * kAgSums;
}

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) sums the tiles' partials per sample in a
// fixed order into args.sums. Returns the launch status.
template <typename acc_t>
cudaError_t launch_alpha_sobel_forward(const AlphaGradArgs<acc_t>& args, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream);

// Enqueues alpha_sobel_weights: the forward's weight sums alone (same tiles,
// same order, same use of scratch and counter) into args.sums, 0 in the other columns.
template <typename acc_t>
cudaError_t launch_alpha_sobel_weights(const AlphaGradArgs<acc_t>& args, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream);

// Enqueues compose_alpha_losses (../alpha_sobel.h) as one single-thread
// kernel: B scalar steps, no reason for more threads.
template <typename acc_t>
cudaError_t launch_alpha_sobel_compose(const AlphaComposeParams<acc_t>& params, const acc_t* sums, acc_t* total,
                                          acc_t* components, acc_t* factors, cudaStream_t stream);
#endif

}  // namespace mattingloss
