// CPU backend of alpha_gradient_forward: at::parallel_for over fixed chunks of
// (sample, band of rows). A band walks its rows once, keeping three converted,
// zero-padded rows of pred, gt and the weight (the 3x3 stencil's window) and
// three rows of the Sobel loss's derivatives ex/ey (the adjoint's window), so
// each input row is read once plus a 2-row halo per band. The inner loops run
// over the columns of one row and vectorize. Band size and lane layout depend
// on the shape alone, so results are bitwise the same with 1 or N threads.
// No fused multiply-adds in this file: `p*w - g*w` must round each product as
// the references do, so that it is exactly 0 where they find it 0 (the L1
// kink, where torch's abs backward gives 0). An FMA would leave its rounding
// error there instead.
#pragma GCC optimize("fp-contract=off")

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "../alpha_gradient.h"
#include "../alpha_gradient_host.h"
#include "../common/cpu_convert.h"

namespace mattingloss {
namespace {

constexpr int64_t kBandPixels = 16384;  // pixels per band (and partial sum)...
constexpr int64_t kMinBandRows = 16;     // ...but at least this many rows: each band recomputes 2 halo rows
constexpr int64_t kLanes = 16;          // independent accumulators per sum, so the adds vectorize

template <typename acc_t>
using SumArray = std::array<acc_t, kAgSums>;

// Accumulators of the per-pixel term rows: pixel x goes to lane x % kLanes.
template <typename acc_t>
struct Lanes {
  acc_t lane[kAgSums][kLanes] = {};

  void add(int sum, const acc_t* v, int64_t n) {
    acc_t* l = lane[sum];
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int64_t k = 0; k < kLanes; ++k) l[k] += v[i + k];
    }
    for (int64_t k = 0; i < n; ++i, ++k) l[k] += v[i];
  }

  SumArray<acc_t> total() const {
    SumArray<acc_t> s{};
    for (int j = 0; j < kAgSums; ++j)
      for (int64_t k = 0; k < kLanes; ++k) s[j] += lane[j][k];
    return s;
  }
};

// Everything one band needs, padded rows of width W + 2 (index x + 1 holds column x).
template <typename acc_t>
struct RowBuffers {
  int64_t width;
  std::vector<acc_t> storage;
  acc_t *p[3], *g[3], *w[3];  // rows y-1, y, y+1 (rotated as the band advances)
  acc_t *ex[3], *ey[3];       // derivative rows y-1, y, y+1
  acc_t* grad[kMaxGroups];    // the gradient rows (staged when not acc_t)
  acc_t* term[kAgSums];       // per-pixel term values of one row, then summed into lanes

  explicit RowBuffers(int64_t W) : width(W) {
    const int64_t pw = W + 2;
    const int64_t rows = 15 + kMaxGroups + kAgSums;
    storage.assign(rows * pw, acc_t(0));
    acc_t* q = storage.data();
    auto next = [&]() {
      acc_t* r = q;
      q += pw;
      return r;
    };
    for (int i = 0; i < 3; ++i) p[i] = next(), g[i] = next(), w[i] = next(), ex[i] = next(), ey[i] = next();
    for (auto& r : grad) r = next();
    for (auto& r : term) r = next();
  }
};

// Row y of input `in` (sample s) into dst[1..W], zero columns at both ends;
// a row outside the image is all zeros (the stencil's zero padding).
template <typename acc_t>
void load_row(const Input& in, int64_t offset, int64_t W, bool inside, acc_t* dst) {
  dst[0] = dst[W + 1] = acc_t(0);
  if (!inside) {
    std::fill(dst + 1, dst + W + 1, acc_t(0));
    return;
  }
  const acc_t* src = read(in, offset, W, dst + 1);
  if (src != dst + 1) std::memcpy(dst + 1, src, sizeof(acc_t) * W);
}

// The ground truth row (in g[1..W], in place) divided by alpha_scale.
template <typename acc_t>
ML_CPU_CLONES void gt_row(const AlphaGradParams<acc_t>& P, acc_t* g, int64_t W) {
  for (int64_t x = 1; x <= W; ++x) g[x] = ground_truth(P, g[x]);
}

// The weight row from the mask row in w[1..W] (in place); outside: zeros.
template <int64_t kMode, typename acc_t>
ML_CPU_CLONES void weight_row(const AlphaGradParams<acc_t>& P, acc_t* w, int64_t W) {
  const acc_t lo = P.mask_lo, hi = P.mask_hi;
  for (int64_t x = 1; x <= W; ++x) w[x] = region_weight(w[x], kMode, lo, hi);
}

// The Sobel responses of row y (windows p/g rows 0..2, weight row w), the
// derivative rows ex/ey, and the four Sobel sums' per-pixel values.
template <int64_t kSobel, bool kInDiff, typename acc_t>
ML_CPU_CLONES void sobel_row(const AlphaGradParams<acc_t>& params, const acc_t* pu, const acc_t* pm, const acc_t* pd,
                             const acc_t* gu, const acc_t* gm, const acc_t* gd, const acc_t* w, acc_t* ex, acc_t* ey,
                             acc_t* sx, acc_t* sy, acc_t* px, acc_t* py, int64_t W) {
  AlphaGradParams<acc_t> P = params;  // a local copy: stores can't alias it
  P.sobel = kSobel;
  P.mask_in_diff = kInDiff;  // a constant: no per-element selects on it
#pragma GCC ivdep
  for (int64_t x = 0; x < W; ++x) {
    const int64_t l = x, c = x + 1, r = x + 2;
    const acc_t gxp = sobel_x(pu[l], pu[r], pm[l], pm[r], pd[l], pd[r]);
    const acc_t gyp = sobel_y(pu[l], pu[c], pu[r], pd[l], pd[c], pd[r]);
    const acc_t gxg = sobel_x(gu[l], gu[r], gm[l], gm[r], gd[l], gd[r]);
    const acc_t gyg = sobel_y(gu[l], gu[c], gu[r], gd[l], gd[c], gd[r]);
    SobelResult<acc_t> s;
    sobel_pixel(P, gxp, gyp, gxg, gyg, w[c], s);
    ex[c] = s.ex;
    ey[c] = s.ey;
    sx[x] = s.sx;
    sy[x] = s.sy;
    px[x] = s.px;
    py[x] = s.py;
  }
}

// The pointwise terms of row y and its gradient rows: the pointwise
// derivatives plus, in the Sobel term's map, the adjoint stencil over ex/ey.
template <bool kSobel, int64_t kGroups, int64_t kRho, bool kInDiff, typename acc_t>
ML_CPU_CLONES void point_row(const AlphaGradParams<acc_t>& params, const acc_t* p, const acc_t* g, const acc_t* w,
                             const acc_t* exu, const acc_t* exm, const acc_t* exd, const acc_t* eyu, const acc_t* eyd,
                             acc_t* const* grad, acc_t* unknown, acc_t* known, acc_t* wu, acc_t* wk, int64_t W) {
  AlphaGradParams<acc_t> P = params;  // a local copy: stores can't alias it
  P.rho = kRho;                         // constants: GCC vectorizes no select on a
  P.mask_in_diff = kInDiff;             // scalar condition, so these must fold away
  acc_t* g0 = grad[0];
  acc_t* g1 = grad[kGroups > 1 ? 1 : 0];
  acc_t* g2 = grad[kGroups > 2 ? 2 : 0];
  const int64_t sobel_group = P.group[2];
#pragma GCC ivdep
  for (int64_t x = 0; x < W; ++x) {
    const int64_t l = x, c = x + 1, r = x + 2;
    PointResult<acc_t> pt;
    alpha_pixel(P, p[c], g[c], w[c], pt);
    unknown[x] = pt.unknown;
    known[x] = pt.known;
    wu[x] = pt.w;
    wk[x] = pt.wk;
    acc_t adj = 0;
    if (kSobel) {
      adj = sobel_adjoint(exu[l], exu[r], exm[l], exm[r], exd[l], exd[r], eyu[l], eyu[c], eyu[r], eyd[l], eyd[c],
                          eyd[r]);
    }
    g0[x] = pt.grad[0] + (sobel_group == 0 ? adj : acc_t(0));
    if (kGroups > 1) g1[x] = pt.grad[1] + (sobel_group == 1 ? adj : acc_t(0));
    if (kGroups > 2) g2[x] = pt.grad[2] + (sobel_group == 2 ? adj : acc_t(0));
  }
}

template <int64_t kMode, int64_t kSobel, int64_t kGroups, typename acc_t>
SumArray<acc_t> run_band(const AlphaGradArgs<acc_t>& a, RowBuffers<acc_t>& b, int64_t sample, int64_t r0, int64_t r1) {
  const int64_t H = a.height, W = a.width;
  const int64_t plane = a.batch * H * W;  // one gradient map
  const AlphaGradParams<acc_t>& P = a.params;
  Lanes<acc_t> lanes;
  auto row_offset = [&](int64_t y) { return (sample * H + y) * W; };
  // Loads row y into window slot k (p, g and the weight).
  auto load = [&](int64_t y, int k) {
    const bool inside = y >= 0 && y < H;
    const int64_t off = inside ? row_offset(y) : 0;
    load_row(a.pred, off, W, inside, b.p[k]);
    load_row(a.gt, off, W, inside, b.g[k]);
    if (inside && P.alpha_scale != acc_t(1)) gt_row(P, b.g[k], W);  // x / 1 == x: skip the pass
    if (kMode == kAgNoMask) {
      std::fill(b.w[k], b.w[k] + W + 2, inside ? acc_t(1) : acc_t(0));
      b.w[k][0] = b.w[k][W + 1] = acc_t(0);
    } else {
      load_row(a.mask, off, W, inside, b.w[k]);
      if (inside && kMode != kAgWeight) weight_row<kMode>(P, b.w[k], W);  // a weight is read as is
    }
  };
  auto rotate = [](acc_t** r) {
    acc_t* t = r[0];
    r[0] = r[1];
    r[1] = r[2];
    r[2] = t;
  };
  constexpr bool kHasSobel = kSobel != kSobelNone;
  // Window for e row yy: p/g rows yy-1, yy, yy+1. Start at yy = r0 - 1.
  const int64_t first = kHasSobel ? r0 - 1 : r0;
  load(first - 1, 0);
  load(first, 1);
  load(first + 1, 2);
  if (kHasSobel) {
    std::fill(b.ex[0], b.ex[0] + W + 2, acc_t(0));
    std::fill(b.ey[0], b.ey[0] + W + 2, acc_t(0));
  }
  // Row y's gradient and pointwise terms: p/g/w in window slot k, e rows y-1..y+1 in ex/ey 0..2.
  auto finish_row = [&](int64_t y, int k) {
    acc_t* grad[kMaxGroups];
    const int64_t off = row_offset(y);
    for (int64_t gi = 0; gi < kGroups; ++gi) grad[gi] = target(a.grad, gi * plane + off, b.grad[gi]);
    for (int64_t gi = kGroups; gi < kMaxGroups; ++gi) grad[gi] = b.grad[gi];
    auto* row = P.rho == kRhoL1
                    ? (P.mask_in_diff ? &point_row<kHasSobel, kGroups, kRhoL1, true, acc_t>
                                      : &point_row<kHasSobel, kGroups, kRhoL1, false, acc_t>)
                    : (P.mask_in_diff ? &point_row<kHasSobel, kGroups, kRhoCharbonnier, true, acc_t>
                                      : &point_row<kHasSobel, kGroups, kRhoCharbonnier, false, acc_t>);
    row(P, b.p[k], b.g[k], b.w[k], b.ex[0], b.ex[1], b.ex[2], b.ey[0], b.ey[2], grad, b.term[kSumUnknown],
        b.term[kSumKnown], b.term[kSumWUnknown], b.term[kSumWKnown], W);
    for (int s = kSumUnknown; s <= kSumWKnown; ++s) lanes.add(s, b.term[s], W);
    for (int64_t gi = 0; gi < kGroups; ++gi) write_back(a.grad, gi * plane + off, W, b.grad[gi]);
  };
  if (!kHasSobel) {
    for (int64_t y = r0; y < r1; ++y) {
      finish_row(y, 1);
      rotate(b.p), rotate(b.g), rotate(b.w);
      load(y + 2, 2);
    }
    return lanes.total();
  }
  for (int64_t yy = first; yy <= r1; ++yy) {
    // e row yy into ex/ey slot 2 (rows yy-2, yy-1 in slots 0, 1).
    rotate(b.ex), rotate(b.ey);
    if (yy >= 0 && yy < H) {
      auto* row = P.mask_in_diff ? &sobel_row<kSobel, true, acc_t> : &sobel_row<kSobel, false, acc_t>;
      row(P, b.p[0], b.p[1], b.p[2], b.g[0], b.g[1], b.g[2], b.w[1], b.ex[2], b.ey[2], b.term[kSumSobelX],
          b.term[kSumSobelY], b.term[kSumPenaltyX], b.term[kSumPenaltyY], W);
      b.ex[2][0] = b.ex[2][W + 1] = b.ey[2][0] = b.ey[2][W + 1] = acc_t(0);
      if (yy >= r0 && yy < r1) {
        for (int s = kSumSobelX; s <= kSumPenaltyY; ++s) lanes.add(s, b.term[s], W);
      }
    } else {
      std::fill(b.ex[2], b.ex[2] + W + 2, acc_t(0));
      std::fill(b.ey[2], b.ey[2] + W + 2, acc_t(0));
    }
    // Row yy - 1 now has its three e rows; its p/g/w are in window slot 0.
    if (yy - 1 >= r0) finish_row(yy - 1, 0);
    rotate(b.p), rotate(b.g), rotate(b.w);
    load(yy + 2, 2);
  }
  return lanes.total();
}

template <int64_t kMode, int64_t kSobel, int64_t kGroups, typename acc_t>
void forward(const AlphaGradArgs<acc_t>& a) {
  const int64_t H = a.height, W = a.width;
  const int64_t band_rows = std::max<int64_t>(kMinBandRows, kBandPixels / W);
  const int64_t bands = (H + band_rows - 1) / band_rows;
  std::vector<SumArray<acc_t>> partial(a.batch * bands);
  at::parallel_for(0, static_cast<int64_t>(partial.size()), 1, [&](int64_t begin, int64_t end) {
    RowBuffers<acc_t> buffers(W);
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t sample = chunk / bands;
      const int64_t r0 = (chunk % bands) * band_rows;
      partial[chunk] = run_band<kMode, kSobel, kGroups>(a, buffers, sample, r0, std::min(r0 + band_rows, H));
    }
  });
  // Ordered per-sample sums over the bands.
  for (int64_t s = 0; s < a.batch; ++s) {
    SumArray<acc_t> total{};
    for (int64_t c = 0; c < bands; ++c)
      for (int j = 0; j < kAgSums; ++j) total[j] += partial[s * bands + c][j];
    for (int j = 0; j < kAgSums; ++j) a.sums[s * kAgSums + j] = total[j];
  }
}

template <int64_t kMode, int64_t kSobel, typename acc_t>
void run_groups(const AlphaGradArgs<acc_t>& a) {
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

template <typename acc_t>
void run(const AlphaGradArgs<acc_t>& a) {
  switch (a.params.mask_mode) {
    case kAgEqual: return run_sobel<kAgEqual>(a);
    case kAgRange: return run_sobel<kAgRange>(a);
    case kAgWeight: return run_sobel<kAgWeight>(a);
    default: return run_sobel<kAgNoMask>(a);
  }
}

AlphaGradResult alpha_gradient_forward_cpu(const at::Tensor& pred, const at::Tensor& gt,
                                           const std::optional<at::Tensor>& mask, int64_t mask_mode, double mask_lo,
                                           double mask_hi, double alpha_scale, int64_t rho, double eps,
                                           bool mask_in_diff, bool unknown_term, bool known_term, int64_t sobel,
                                           double grad_eps, at::ArrayRef<double> coef, at::IntArrayRef group,
                                           int64_t groups, bool grad) {
  AlphaGradOp op = prepare_alpha_gradient(pred, gt, mask, mask_mode, mask_lo, mask_hi, alpha_scale, rho, eps,
                                          mask_in_diff, unknown_term, known_term, sobel, grad_eps, coef, group,
                                          groups, grad);
  if (op.use_double) {
    run(op.f64);
  } else {
    run(op.f32);
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CPU, m) { m.impl("alpha_gradient_forward", &alpha_gradient_forward_cpu); }

}  // namespace mattingloss
