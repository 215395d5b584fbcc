// CPU backend of alpha_sobel_forward and _weights (and of _compose, plain
// scalar code, at the end): fixed chunks of (sample, band of rows) over the
// threads (../common/cpu_parallel.h). A band walks its rows once: each input
// row is read in place (converted into a small ring of staging rows only when
// its dtype is not the accumulation type), plus a 1-row halo per band each side. The Sobel
// stencil and its adjoint are separable, so each runs as a column pass (down
// three rows, into one zero-padded row) and a row pass (across three columns of
// it). Per row: the responses' column pass; their row pass, giving the
// derivative rows ex/ey (a ring) and, from the last three of those, the
// adjoint's column pass; then the pointwise terms, the adjoint's row pass and
// the gradient. Every inner loop runs over the columns of one row and
// vectorizes, the sums in kLanes lanes. A trimap's region with L1 terms takes
// the fast form (../alpha_sobel.h, alpha_pixel_binary): masks instead of
// products, a band redone in the general form where its values were not all
// finite. Band size and lane layout depend on the shape alone, so results are
// bitwise the same with 1 or N threads.
// No fused multiply-adds in this file: `p*w - g*w` must round each product as
// the references do, so that it is exactly 0 where they find it 0 (the L1
// kink, where torch's abs backward gives 0). An FMA would leave its rounding
// error there instead.
#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "../alpha_sobel.h"
#include "../common/cpu_convert.h"
#include "../common/cpu_lanes.h"
#include "../common/cpu_parallel.h"
#include "../common/cpu_rows.h"

namespace mattingloss {
namespace {

constexpr int64_t kBandPixels = 32768;  // pixels per band (and partial sum)...
constexpr int64_t kMinBandRows = 16;     // ...but at least this many rows: each band recomputes 2 halo rows
constexpr int64_t kRing = 4;            // row y of an input or of ex/ey at slot y & 3 (at most 3 are live)

template <typename acc_t>
using SumArray = std::array<acc_t, kAgSums>;

// Accumulators of a band's sums: pixel x of every row goes to lane x % kLanes.
template <typename acc_t>
struct Lanes {
  acc_t lane[kAgSums][kLanes] = {};
  acc_t probe[kLanes] = {};  // the fast form's check of the Sobel responses (sobel_pixel_binary)

  // Whether the fast form's values were all finite (see alpha_pixel_binary,
  // sobel_pixel_binary): else its masked sums missed the references' NaN.
  bool finite() const {
    bool ok = true;
    for (int64_t k = 0; k < kLanes; ++k)
      ok &= std::isfinite(lane[kSumUnknown][k] + lane[kSumKnown][k]) & std::isfinite(probe[k]);
    return ok;
  }

  SumArray<acc_t> total() const {
    SumArray<acc_t> s{};
    for (int j = 0; j < kAgSums; ++j)
      for (int64_t k = 0; k < kLanes; ++k) s[j] += lane[j][k];
    return s;
  }
};

// Runs body(x, k) for x in [0, W), k = x % kLanes: whole blocks of kLanes
// pixels in an inner loop of constant trip count (the compiler vectorizes it,
// each lane's sum staying in its own vector element), then the tail.
// ivdep: the rows written are our own buffers or fresh outputs, never an input.
#define ML_LANE_LOOP(W, ...)                                        \
  do {                                                              \
    int64_t x0_ = 0;                                                \
    for (; x0_ + kLanes <= (W); x0_ += kLanes) {                    \
      _Pragma("GCC ivdep") for (int64_t k = 0; k < kLanes; ++k) {   \
        const int64_t x = x0_ + k;                                  \
        __VA_ARGS__                                                 \
      }                                                             \
    }                                                               \
    for (int64_t k = 0; x0_ + k < (W); ++k) {                       \
      const int64_t x = x0_ + k;                                    \
      __VA_ARGS__                                                   \
    }                                                               \
  } while (0)

// Everything one band needs (../common/cpu_rows.h: rows aligned, zero-padded
// so that r[-1] and r[W] are 0, the stencils' zero padding).
template <typename acc_t>
struct RowBuffers {
  static constexpr int kRows = 1 + 3 * kRing + 4 + 2 * kRing + 2 + kMaxGroups + 1;
  PaddedRows<acc_t> rows;
  acc_t* zeros;                        // a row of zeros: rows outside the image
  acc_t *p[kRing], *g[kRing], *m[kRing];  // staging of converted input rows
  acc_t *sp, *tp, *sg, *tg;            // column pass of the Sobel responses
  acc_t *ex[kRing], *ey[kRing];        // derivative rows d/dSx(p), d/dSy(p)
  acc_t *cx, *cy;                      // column pass of the adjoint
  acc_t* grad[kMaxGroups];             // the gradient rows (staged when not acc_t)
  acc_t* values;                       // the per-pixel values (unused unless requested)

  explicit RowBuffers(int64_t W) : rows(kRows, W, true) {
    int next_row = 0;
    auto next = [&]() { return rows[next_row++]; };
    zeros = next();
    for (int i = 0; i < kRing; ++i) p[i] = next(), g[i] = next(), m[i] = next();
    sp = next(), tp = next(), sg = next(), tg = next();
    for (int i = 0; i < kRing; ++i) ex[i] = next(), ey[i] = next();
    cx = next(), cy = next();
    for (auto& r : grad) r = next();
    values = next();
  }
};

// The ground truth row `src` divided by alpha_scale into dst (may be src).
template <typename acc_t>
ML_CPU_CLONES void gt_row(const AlphaGradParams<acc_t>& P, const acc_t* src, acc_t* dst, int64_t W) {
  for (int64_t x = 0; x < W; ++x) dst[x] = ground_truth(P, src[x]);
}

template <int64_t kMode, typename acc_t>
ML_INLINE acc_t weight_at(const AlphaGradParams<acc_t>& P, const acc_t* m, int64_t x) {
  return kMode == kAllPixels ? acc_t(1) : region_weight(m[x], kMode, P.mask_lo, P.mask_hi);
}

template <int64_t kMode, typename acc_t>
ML_INLINE bool inside_at(const AlphaGradParams<acc_t>& P, const acc_t* m, int64_t x) {
  return kMode == kAllPixels || region_inside(m[x], kMode, P.mask_lo, P.mask_hi);
}

// Column pass of the Sobel responses of row y, from rows u = y-1, m = y, d = y+1
// of pred and the ground truth: per column, the [1,2,1] (for Sx) and [-1,0,1]
// (for Sy) combinations.
template <typename acc_t>
ML_CPU_CLONES void sobel_col_row(const acc_t* pu, const acc_t* pm, const acc_t* pd, const acc_t* gu, const acc_t* gm,
                                 const acc_t* gd, acc_t* sp, acc_t* tp, acc_t* sg, acc_t* tg, int64_t W) {
#pragma GCC ivdep
  for (int64_t x = 0; x < W; ++x) {
    sp[x] = sobel_smooth(pu[x], pm[x], pd[x]);
    tp[x] = sobel_diff(pu[x], pd[x]);
    sg[x] = sobel_smooth(gu[x], gm[x], gd[x]);
    tg[x] = sobel_diff(gu[x], gd[x]);
  }
}

// Row pass: the Sobel responses of row y, the derivative rows ex/ey and (when
// the row is the band's own, kSums) the four Sobel sums. kAdj: also the
// adjoint's column pass at row y-1 (from derivative rows y-2 (exu, eyu), y-1
// (exm) and y, this one) into the rows cx/cy, while ex/ey are in registers.
template <int64_t kMode, int64_t kSobel, bool kInDiff, bool kFast, bool kSums, bool kAdj, typename acc_t>
ML_INLINE void sobel_row_body(const AlphaGradParams<acc_t>& params, const acc_t* sp, const acc_t* tp, const acc_t* sg,
                              const acc_t* tg, const acc_t* m, acc_t* ex, acc_t* ey, Lanes<acc_t>& lanes,
                              const acc_t* exu, const acc_t* exm, const acc_t* eyu, acc_t* cx, acc_t* cy, int64_t W) {
  AlphaGradParams<acc_t> P = params;  // a local copy: stores can't alias it
  P.sobel = kSobel;
  P.mask_in_diff = kInDiff;  // constants: no per-element selects on them
  P.binary_mask = kMode != kWeight;
  acc_t sums[5][kLanes];     // local: no aliasing with the rows written; [4]: the probe
  for (int j = 0; j < 4; ++j)
    for (int64_t k = 0; k < kLanes; ++k) sums[j][k] = lanes.lane[kSumSobelX + j][k];
  for (int64_t k = 0; k < kLanes; ++k) sums[4][k] = lanes.probe[k];
  ML_LANE_LOOP(W, {
    const acc_t gxp = sobel_diff(sp[x - 1], sp[x + 1]);
    const acc_t gyp = sobel_smooth(tp[x - 1], tp[x], tp[x + 1]);
    const acc_t gxg = sobel_diff(sg[x - 1], sg[x + 1]);
    const acc_t gyg = sobel_smooth(tg[x - 1], tg[x], tg[x + 1]);
    SobelResult<acc_t> s;
    acc_t probe = 0;
    if (kFast) {
      sobel_pixel_binary(P, gxp, gyp, gxg, gyg, inside_at<kMode>(P, m, x), s, probe);
    } else {
      sobel_pixel(P, gxp, gyp, gxg, gyg, weight_at<kMode>(P, m, x), s);
    }
    ex[x] = s.ex;
    ey[x] = s.ey;
    if (kAdj) {
      cx[x] = sobel_adjoint_col_x(exu[x], exm[x], s.ex);
      cy[x] = sobel_adjoint_col_y(eyu[x], s.ey);
    }
    if (kSums) {
      sums[0][k] += s.sx;
      sums[1][k] += s.sy;
      sums[2][k] += s.px;
      sums[3][k] += s.py;
      if (kFast) sums[4][k] += probe;
    }
  });
  if (kSums) {
    for (int j = 0; j < 4; ++j)
      for (int64_t k = 0; k < kLanes; ++k) lanes.lane[kSumSobelX + j][k] = sums[j][k];
    for (int64_t k = 0; k < kLanes; ++k) lanes.probe[k] = sums[4][k];
  }
}

// sobel_row_body as its own function: compiled per instruction set for float
// (the speed), once in baseline code for float64 (for checking: the same IEEE
// operations in the same order, so the same results; no FMA in this file).
// The row functions' instances are most of this file's code.
template <int64_t kMode, int64_t kSobel, bool kInDiff, bool kFast, bool kSums, bool kAdj, typename acc_t>
ML_CPU_CLONES void sobel_row(const AlphaGradParams<acc_t>& params, const acc_t* sp, const acc_t* tp, const acc_t* sg,
                             const acc_t* tg, const acc_t* m, acc_t* ex, acc_t* ey, Lanes<acc_t>& lanes,
                             const acc_t* exu, const acc_t* exm, const acc_t* eyu, acc_t* cx, acc_t* cy, int64_t W) {
  sobel_row_body<kMode, kSobel, kInDiff, kFast, kSums, kAdj>(params, sp, tp, sg, tg, m, ex, ey, lanes, exu, exm, eyu,
                                                             cx, cy, W);
}

template <int64_t kMode, int64_t kSobel, bool kInDiff, bool kFast, bool kSums, bool kAdj, typename acc_t>
void sobel_row_plain(const AlphaGradParams<acc_t>& params, const acc_t* sp, const acc_t* tp, const acc_t* sg,
                     const acc_t* tg, const acc_t* m, acc_t* ex, acc_t* ey, Lanes<acc_t>& lanes, const acc_t* exu,
                     const acc_t* exm, const acc_t* eyu, acc_t* cx, acc_t* cy, int64_t W) {
  sobel_row_body<kMode, kSobel, kInDiff, kFast, kSums, kAdj>(params, sp, tp, sg, tg, m, ex, ey, lanes, exu, exm, eyu,
                                                             cx, cy, W);
}

// The sobel_row instance for acc_t (see above).
template <int64_t kMode, int64_t kSobel, bool kInDiff, bool kFast, bool kSums, bool kAdj, typename acc_t>
constexpr auto sobel_row_for() {
  if constexpr (std::is_same_v<acc_t, float>) {
    return &sobel_row<kMode, kSobel, kInDiff, kFast, kSums, kAdj, acc_t>;
  } else {
    return &sobel_row_plain<kMode, kSobel, kInDiff, kFast, kSums, kAdj, acc_t>;
  }
}

// Column pass of the adjoint at row y from derivative rows y-1, y, y+1, where
// sobel_row could not do it: row y+1 outside the image.
template <typename acc_t>
ML_CPU_CLONES void adjoint_col_row(const acc_t* exu, const acc_t* exm, const acc_t* exd, const acc_t* eyu,
                                   const acc_t* eyd, acc_t* cx, acc_t* cy, int64_t W) {
#pragma GCC ivdep
  for (int64_t x = 0; x < W; ++x) {
    cx[x] = sobel_adjoint_col_x(exu[x], exm[x], exd[x]);
    cy[x] = sobel_adjoint_col_y(eyu[x], eyd[x]);
  }
}

// The pointwise terms of row y and its gradient rows: the pointwise
// derivatives plus, in the Sobel term's map, the adjoint's row pass over cx/cy;
// kValues: the per-pixel values too.
template <int64_t kMode, bool kSobel, int64_t kGroups, int64_t kRho, bool kInDiff, bool kFast, bool kValues,
          typename acc_t>
ML_INLINE void point_row_body(const AlphaGradParams<acc_t>& params, const acc_t* p, const acc_t* g, const acc_t* m,
                              const acc_t* cx, const acc_t* cy, acc_t* const* grad, acc_t* values,
                              Lanes<acc_t>& lanes, int64_t W) {
  AlphaGradParams<acc_t> P = params;  // a local copy: stores can't alias it
  P.rho = kRho;                         // constants: GCC vectorizes no select on a
  P.mask_in_diff = kInDiff;             // scalar condition, so these must fold away
  P.binary_mask = kMode != kWeight;
  acc_t* g0 = grad[0];
  acc_t* g1 = grad[kGroups > 1 ? 1 : 0];
  acc_t* g2 = grad[kGroups > 2 ? 2 : 0];
  const int64_t sobel_group = P.group[2];
  acc_t sums[4][kLanes];  // local: no aliasing with the rows written
  for (int j = 0; j < 4; ++j)
    for (int64_t k = 0; k < kLanes; ++k) sums[j][k] = lanes.lane[kSumUnknown + j][k];
  ML_LANE_LOOP(W, {
    PointResult<acc_t> pt;
    if (kFast) {
      alpha_pixel_binary(P, p[x], g[x], inside_at<kMode>(P, m, x), pt);
    } else {
      alpha_pixel(P, p[x], g[x], weight_at<kMode>(P, m, x), pt);
    }
    sums[0][k] += pt.unknown;
    sums[1][k] += pt.known;
    sums[2][k] += pt.w;
    sums[3][k] += pt.wk;
    if (kValues) values[x] = pt.value;
    acc_t adj = 0;
    if (kSobel) adj = sobel_adjoint_row(cx[x - 1], cx[x + 1], cy[x - 1], cy[x], cy[x + 1]);
    g0[x] = pt.grad[0] + (sobel_group == 0 ? adj : acc_t(0));
    if (kGroups > 1) g1[x] = pt.grad[1] + (sobel_group == 1 ? adj : acc_t(0));
    if (kGroups > 2) g2[x] = pt.grad[2] + (sobel_group == 2 ? adj : acc_t(0));
  });
  for (int j = 0; j < 4; ++j)
    for (int64_t k = 0; k < kLanes; ++k) lanes.lane[kSumUnknown + j][k] = sums[j][k];
}

// point_row_body per instruction set (float) or once (float64), as sobel_row.
template <int64_t kMode, bool kSobel, int64_t kGroups, int64_t kRho, bool kInDiff, bool kFast, bool kValues,
          typename acc_t>
ML_CPU_CLONES void point_row(const AlphaGradParams<acc_t>& params, const acc_t* p, const acc_t* g, const acc_t* m,
                             const acc_t* cx, const acc_t* cy, acc_t* const* grad, acc_t* values,
                             Lanes<acc_t>& lanes, int64_t W) {
  point_row_body<kMode, kSobel, kGroups, kRho, kInDiff, kFast, kValues>(params, p, g, m, cx, cy, grad, values, lanes,
                                                                        W);
}

template <int64_t kMode, bool kSobel, int64_t kGroups, int64_t kRho, bool kInDiff, bool kFast, bool kValues,
          typename acc_t>
void point_row_plain(const AlphaGradParams<acc_t>& params, const acc_t* p, const acc_t* g, const acc_t* m,
                     const acc_t* cx, const acc_t* cy, acc_t* const* grad, acc_t* values, Lanes<acc_t>& lanes,
                     int64_t W) {
  point_row_body<kMode, kSobel, kGroups, kRho, kInDiff, kFast, kValues>(params, p, g, m, cx, cy, grad, values, lanes,
                                                                        W);
}

// The rows of one input as acc_t by image row: in place when the input is
// already acc_t (and needs no scaling), else converted into a staging slot;
// zeros outside the image (the stencil's zero padding).
template <typename acc_t>
struct RowSource {
  const Input* in = nullptr;
  acc_t* const* staging = nullptr;
  const acc_t* zeros = nullptr;
  const acc_t* row[kRing] = {};
  bool scale = false;  // the ground truth: divide by alpha_scale

  // Makes row y (of the sample starting at `base`) available, in slot y & 3.
  void enter(const AlphaGradParams<acc_t>& P, int64_t base, int64_t y, int64_t H, int64_t W) {
    const int slot = static_cast<int>(y & (kRing - 1));
    if (y < 0 || y >= H || !in->data) {
      row[slot] = zeros;
      return;
    }
    const acc_t* src = read(*in, base + y * W, W, staging[slot]);
    if (scale) {
      gt_row(P, src, staging[slot], W);
      src = staging[slot];
    }
    row[slot] = src;
  }
  const acc_t* operator[](int64_t y) const { return row[y & (kRing - 1)]; }
};

// The point_row instance for the options that are runtime values (the fast
// form is L1's, the same with the mask in the difference or not).
template <int64_t kMode, bool kSobel, int64_t kGroups, int64_t kRho, bool kInDiff, bool kFast, bool kValues,
          typename acc_t>
constexpr auto point_row_instance() {
  if constexpr (std::is_same_v<acc_t, float>) {
    return &point_row<kMode, kSobel, kGroups, kRho, kInDiff, kFast, kValues, acc_t>;
  } else {
    return &point_row_plain<kMode, kSobel, kGroups, kRho, kInDiff, kFast, kValues, acc_t>;
  }
}

// float64 takes one instance per form: its values always computed (into a
// staging row when not requested; the same arithmetic either way).
template <int64_t kMode, bool kSobel, int64_t kGroups, int64_t kRho, bool kFast, typename acc_t>
auto point_row_for(const AlphaGradParams<acc_t>& P, bool values) {
  constexpr bool kLean = std::is_same_v<acc_t, double>;
  values = values || kLean;
  if constexpr (kFast) {
    return values ? point_row_instance<kMode, kSobel, kGroups, kL1, false, true, true, acc_t>()
                  : point_row_instance<kMode, kSobel, kGroups, kL1, false, true, !kLean, acc_t>();
  } else {
    return P.mask_in_diff
               ? (values ? point_row_instance<kMode, kSobel, kGroups, kRho, true, false, true, acc_t>()
                         : point_row_instance<kMode, kSobel, kGroups, kRho, true, false, !kLean, acc_t>())
               : (values ? point_row_instance<kMode, kSobel, kGroups, kRho, false, false, true, acc_t>()
                         : point_row_instance<kMode, kSobel, kGroups, kRho, false, false, !kLean, acc_t>());
  }
}

// One band's rows, in the fast form (kFast: binary region, L1, see
// alpha_pixel_binary) or the general one. Returns the band's lanes.
template <int64_t kMode, int64_t kSobel, int64_t kGroups, bool kFast, typename acc_t>
Lanes<acc_t> run_band(const AlphaGradArgs<acc_t>& a, RowBuffers<acc_t>& b, int64_t sample, int64_t r0, int64_t r1) {
  const int64_t H = a.height, W = a.width;
  const int64_t plane = a.batch * H * W;  // one gradient map
  const int64_t base = sample * H * W;
  AlphaGradParams<acc_t> P = a.params;
  if (a.factors) scale_coefs_for_sample(P, a.factors, sample, a.batch);
  Lanes<acc_t> lanes;
  RowSource<acc_t> p, g, m;
  p.in = &a.pred, g.in = &a.gt, m.in = &a.mask;
  p.staging = b.p, g.staging = b.g, m.staging = b.m;
  p.zeros = g.zeros = m.zeros = b.zeros;
  g.scale = P.alpha_scale != acc_t(1);  // x / 1 == x: skip the pass
  auto enter = [&](int64_t y) {
    p.enter(P, base, y, H, W);
    g.enter(P, base, y, H, W);
    if (kMode != kAllPixels) m.enter(P, base, y, H, W);
  };
  constexpr bool kHasSobel = kSobel != kSobelNone;
  // Row y's gradient and pointwise terms (cx/cy hold the adjoint's column pass at row y).
  auto finish_row = [&](int64_t y) {
    acc_t* grad[kMaxGroups];
    const int64_t off = base + y * W;
    // float64 runs with kGroups == kMaxGroups (run_groups): the maps past
    // a.groups go to staging rows. float: every map requested, as before.
    constexpr bool kAllMaps = std::is_same_v<acc_t, double>;
    for (int64_t gi = 0; gi < kGroups; ++gi)
      grad[gi] = kAllMaps && gi >= a.groups ? b.grad[gi] : target(a.grad, gi * plane + off, b.grad[gi]);
    for (int64_t gi = kGroups; gi < kMaxGroups; ++gi) grad[gi] = b.grad[gi];
    acc_t* values = target(a.values, off, b.values);
    const bool per_pixel = a.values.data != nullptr;
    auto* row = kFast || P.rho == kL1  // the fast form is L1's alone
                    ? point_row_for<kMode, kHasSobel, kGroups, kL1, kFast>(P, per_pixel)
                    : point_row_for<kMode, kHasSobel, kGroups, kCharbonnier, false>(P, per_pixel);
    row(P, p[y], g[y], m[y], b.cx, b.cy, grad, values, lanes, W);
    for (int64_t gi = 0; gi < (kAllMaps ? a.groups : kGroups); ++gi) write_back(a.grad, gi * plane + off, W, b.grad[gi]);
    write_back(a.values, off, W, values);
  };
  if (!kHasSobel) {
    for (int64_t y = r0; y < r1; ++y) {
      enter(y);
      finish_row(y);
    }
    return lanes;
  }
  // Derivative row yy: ex/ey slot yy & 3 (zeros outside the image); with
  // `fuse`, the adjoint's column pass of row yy - 1 too. Returns whether that was done.
  const acc_t* ex[kRing] = {b.zeros, b.zeros, b.zeros, b.zeros};
  const acc_t* ey[kRing] = {b.zeros, b.zeros, b.zeros, b.zeros};
  auto e_row = [&](int64_t yy, bool fuse) {
    const int slot = static_cast<int>(yy & (kRing - 1));
    if (yy < 0 || yy >= H) {
      ex[slot] = ey[slot] = b.zeros;
      return false;
    }
    sobel_col_row(p[yy - 1], p[yy], p[yy + 1], g[yy - 1], g[yy], g[yy + 1], b.sp, b.tp, b.sg, b.tg, W);
    const bool own = yy >= r0 && yy < r1;
    constexpr bool kFastSobel = kFast && kSobel == kSobelDiff;  // the fast form: the mask's place does not matter
    const bool in_diff = P.mask_in_diff && !kFastSobel;
    auto* row = in_diff ? (own ? (fuse ? sobel_row_for<kMode, kSobel, true, false, true, true, acc_t>()
                                       : sobel_row_for<kMode, kSobel, true, false, true, false, acc_t>())
                               : (fuse ? sobel_row_for<kMode, kSobel, true, false, false, true, acc_t>()
                                       : sobel_row_for<kMode, kSobel, true, false, false, false, acc_t>()))
                        : (own ? (fuse ? sobel_row_for<kMode, kSobel, false, kFastSobel, true, true, acc_t>()
                                       : sobel_row_for<kMode, kSobel, false, kFastSobel, true, false, acc_t>())
                               : (fuse ? sobel_row_for<kMode, kSobel, false, kFastSobel, false, true, acc_t>()
                                       : sobel_row_for<kMode, kSobel, false, kFastSobel, false, false, acc_t>()));
    row(P, b.sp, b.tp, b.sg, b.tg, m[yy], b.ex[slot], b.ey[slot], lanes, ex[(yy - 2) & 3], ex[(yy - 1) & 3],
        ey[(yy - 2) & 3], b.cx, b.cy, W);
    ex[slot] = b.ex[slot];
    ey[slot] = b.ey[slot];
    return fuse;
  };
  // Derivative rows r0-1 .. r1 (a 1-row halo each side), input rows r0-2 .. r1+1.
  enter(r0 - 2);
  enter(r0 - 1);
  for (int64_t yy = r0 - 1; yy <= r1; ++yy) {
    enter(yy + 1);  // into the slot of row yy - 3: no longer read
    const int64_t y = yy - 1;
    const bool fused = e_row(yy, y >= r0);
    // Row yy - 1 now has its three derivative rows.
    if (y >= r0) {
      if (!fused) adjoint_col_row(ex[(y - 1) & 3], ex[y & 3], ex[yy & 3], ey[(y - 1) & 3], ey[yy & 3], b.cx, b.cy, W);
      finish_row(y);
    }
  }
  return lanes;
}

// Runs band(buffers, sample, r0, r1) -> SumArray over the bands of every sample
// in parallel and writes the per-sample sums, the bands' in order: the band
// layout depends on the shape alone (forward and weights share it, so their
// weight sums are bitwise the same).
template <typename acc_t, typename Band>
void over_bands(const AlphaGradArgs<acc_t>& a, const Band& band) {
  const int64_t H = a.height, W = a.width;
  const int64_t band_rows = std::max<int64_t>(kMinBandRows, kBandPixels / W);
  const int64_t bands = (H + band_rows - 1) / band_rows;
  std::vector<SumArray<acc_t>> partial(a.batch * bands);
  parallel_chunks(static_cast<int64_t>(partial.size()), 1, [&](ChunkQueue& queue) {
    RowBuffers<acc_t> buffers(W);
    for (int64_t chunk; queue.next(chunk);) {
      const int64_t sample = chunk / bands;
      const int64_t r0 = (chunk % bands) * band_rows;
      partial[chunk] = band(buffers, sample, r0, std::min(r0 + band_rows, H));
    }
  });
  for (int64_t s = 0; s < a.batch; ++s) {
    SumArray<acc_t> total{};
    for (int64_t c = 0; c < bands; ++c)
      for (int j = 0; j < kAgSums; ++j) total[j] += partial[s * bands + c][j];
    for (int j = 0; j < kAgSums; ++j) a.sums[s * kAgSums + j] = total[j];
  }
}

// A binary region with L1 terms runs each band in the fast form first, and
// again in the general one where its values were not all finite (Lanes::finite).
template <int64_t kMode, int64_t kSobel, int64_t kGroups, typename acc_t>
void forward(const AlphaGradArgs<acc_t>& a) {
  constexpr bool kFastForm = kMode != kWeight && kSobel != kSobelMagnitude;
  const bool fast = kFastForm && a.params.rho == kL1;
  over_bands(a, [&](RowBuffers<acc_t>& b, int64_t sample, int64_t r0, int64_t r1) {
    if (fast) {
      const Lanes<acc_t> lanes = run_band<kMode, kSobel, kGroups, kFastForm>(a, b, sample, r0, r1);
      if (lanes.finite()) return lanes.total();
    }
    return run_band<kMode, kSobel, kGroups, false>(a, b, sample, r0, r1).total();
  });
}

// The weight sums of one row, as point_row adds them (same lanes, same order).
template <int64_t kMode, typename acc_t>
ML_CPU_CLONES void weights_row(const AlphaGradParams<acc_t>& params, const acc_t* m, Lanes<acc_t>& lanes, int64_t W) {
  const AlphaGradParams<acc_t> P = params;
  acc_t sums[2][kLanes];
  for (int j = 0; j < 2; ++j)
    for (int64_t k = 0; k < kLanes; ++k) sums[j][k] = lanes.lane[kSumWUnknown + j][k];
  // ML_LANE_LOOP's order, written out: its 16-step inner loop, this small, is
  // unrolled whole and then not vectorized (GCC 12); `unroll 1` keeps it a loop.
  auto add = [&](int64_t x, int64_t k) {
    const acc_t w = weight_at<kMode>(P, m, x);
    sums[0][k] += w;
    sums[1][k] += known_weight(w);
  };
  int64_t x0 = 0;
  for (; x0 + kLanes <= W; x0 += kLanes) {
#pragma GCC unroll 1
    for (int64_t k = 0; k < kLanes; ++k) add(x0 + k, k);
  }
  for (int64_t k = 0; x0 + k < W; ++k) add(x0 + k, k);
  for (int j = 0; j < 2; ++j)
    for (int64_t k = 0; k < kLanes; ++k) lanes.lane[kSumWUnknown + j][k] = sums[j][k];
}

template <int64_t kMode, typename acc_t>
void weights(const AlphaGradArgs<acc_t>& a) {
  over_bands(a, [&](RowBuffers<acc_t>& b, int64_t sample, int64_t r0, int64_t r1) {
    Lanes<acc_t> lanes;
    for (int64_t y = r0; y < r1; ++y) {
      const acc_t* m = kMode == kAllPixels ? b.zeros : read(a.mask, (sample * a.height + y) * a.width, a.width, b.m[0]);
      weights_row<kMode>(a.params, m, lanes, a.width);
    }
    return lanes.total();
  });
}

// float64 writes every map (those past a.groups into staging rows: the same
// arithmetic), one instance instead of one per map count.
template <int64_t kMode, int64_t kSobel, typename acc_t>
void run_groups(const AlphaGradArgs<acc_t>& a) {
  if constexpr (std::is_same_v<acc_t, double>) return forward<kMode, kSobel, kMaxGroups>(a);
  switch (a.groups) {
    case 1: return forward<kMode, kSobel, 1>(a);
    case 2: return forward<kMode, kSobel, 2>(a);
    default: return forward<kMode, kSobel, 3>(a);
  }
}

template <int64_t kMode, typename acc_t>
void run_sobel(const AlphaGradArgs<acc_t>& a) {
  switch (a.params.sobel) {
    case kSobelNone: return run_groups<kMode, kSobelNone>(a);
    case kSobelDiff: return run_groups<kMode, kSobelDiff>(a);
    default: return run_groups<kMode, kSobelMagnitude>(a);
  }
}

}  // namespace

template <typename acc_t>
void alpha_sobel_cpu(const AlphaGradArgs<acc_t>& a) {
  with_mask_mode(a.params.mask_mode, [&](auto mode) { run_sobel<decltype(mode)::value>(a); });
}

template <typename acc_t>
void alpha_sobel_weights_cpu(const AlphaGradArgs<acc_t>& a) {
  with_mask_mode(a.params.mask_mode, [&](auto mode) { weights<decltype(mode)::value>(a); });
}

template void alpha_sobel_cpu<float>(const AlphaGradArgs<float>&);
template void alpha_sobel_cpu<double>(const AlphaGradArgs<double>&);
template void alpha_sobel_weights_cpu<float>(const AlphaGradArgs<float>&);
template void alpha_sobel_weights_cpu<double>(const AlphaGradArgs<double>&);

}  // namespace mattingloss
