// CPU backend of the Laplacian-pyramid loss: one pyramid of d = pred - gt,
// built and differentiated band by band.
//
// Each level runs its work units of (plane, band of kBand coarse rows) over the
// threads (../common/cpu_parallel.h); a unit computes the rows it owns from the rows around
// them (recomputing a few halo rows rather than sharing them), so no value
// depends on the thread count, and the loss partials (one per unit) are
// summed in unit order afterwards: bitwise the same with 1 or N threads.
//
//   forward, level i:  x_{i+1} = down(x_i)                          (pass "down")
//   then from the coarsest level to the finest:
//     loss and b:      L_i = x_i - up(x_{i+1}), s_i = coef_i w sign(w L_i),
//                      t_{i+1} <- t_{i+1} - up^T(s_i)                (pass "laplacian")
//     adjoint:         t_i = s_i + down^T(t_{i+1})                  (pass "adjoint")
// with t_0 the gradient w.r.t. d. Level 0 is never stored: its rows are
// computed from pred and gt (as stored) when needed; the coarser levels and
// their adjoints live in the op's scratch (2/3 of one level-0 plane set).
//
// Rows are combined through the tap lists of ../laplacian.h (padding and all,
// for any row), each row is filtered along its length by the interior
// formulas with the lists at its two ends. The loops are plain arithmetic the
// compiler vectorizes, compiled per instruction set (ML_CPU_CLONES).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "../common/cpu_convert.h"
#include "../common/cpu_lanes.h"
#include "../common/cpu_parallel.h"
#include "../common/cpu_rows.h"
#include "../laplacian.h"

namespace mattingloss {
namespace {

using lap::Args;
using lap::Taps;

constexpr int64_t kBand = 32;   // coarse rows per work unit (64 rows of the finer level)
constexpr int kSlots = 16;      // rows a unit keeps of each kind (its windows span at most 9)

// ---------------------------------------------------------------- row kernels

// Calls epi(c, sum_k w[k] * rows[k][c]) for c in [0, n), k in order: a row
// combination fused with what consumes it, in one loop with no intermediate
// row (combine() is the one whose epilogue stores the row).
template <int N, typename acc_t, typename Epilogue>
ML_INLINE void fused_n(const acc_t* const* rows, const acc_t* w, int64_t n, Epilogue& epi) {
  const acc_t* r[N];
  acc_t k[N];
  for (int t = 0; t < N; ++t) {
    r[t] = rows[t];
    k[t] = w[t];
  }
#pragma GCC ivdep
  for (int64_t c = 0; c < n; ++c) {
    acc_t s = 0;
    for (int t = 0; t < N; ++t) s += k[t] * r[t][c];
    epi(c, s);
  }
}

template <typename acc_t, typename Epilogue>
ML_INLINE void fused(const acc_t* w, int count, const acc_t* const* rows, int64_t n, Epilogue epi) {
  switch (count) {
    case 1: return fused_n<1>(rows, w, n, epi);
    case 2: return fused_n<2>(rows, w, n, epi);
    case 3: return fused_n<3>(rows, w, n, epi);
    case 4: return fused_n<4>(rows, w, n, epi);
    case 5: return fused_n<5>(rows, w, n, epi);
    case 6: return fused_n<6>(rows, w, n, epi);
    case 7: return fused_n<7>(rows, w, n, epi);
    default: return fused_n<8>(rows, w, n, epi);
  }
}

template <typename acc_t, typename Epilogue>
ML_INLINE void fused(const Taps<acc_t>& taps, const acc_t* const* rows, int64_t n, Epilogue epi) {
  fused(taps.weight, taps.count, rows, n, epi);
}

// out = sum_k w[k] * rows[k], element by element, in k order.
template <typename acc_t>
ML_CPU_CLONES void combine(const acc_t* const* rows, const acc_t* w, int count, int64_t n, acc_t* __restrict out) {
  fused(w, count, rows, n, [out](int64_t c, acc_t s) { out[c] = s; });
}

// The tap lists of one 1D operation on lines of n_fine samples, by output
// index: every output (for row combinations), or only those within `edge` of
// either end (along rows, where the interior formulas do the rest). Built once
// per call and level, shared read-only by the threads.
template <typename acc_t>
struct TapTable {
  std::vector<Taps<acc_t>> taps;
  template <typename Fn>
  void build(int64_t outputs, int64_t edge, Fn fn) {
    taps.assign(outputs, Taps<acc_t>{});
    for (int64_t i = 0; i < outputs; ++i) {
      if (i < edge || i >= outputs - edge) fn(i, taps[i]);
    }
  }
  const Taps<acc_t>& operator[](int64_t i) const { return taps[i]; }
};

template <typename acc_t>
struct LevelTaps {
  TapTable<acc_t> v_down, v_up, v_up_adjoint, v_down_adjoint;  // across rows: all outputs
  TapTable<acc_t> h_down, h_up, h_up_adjoint, h_down_adjoint;  // along a row: the ends
  void build(int64_t h, int64_t w, int64_t pad) {
    const int64_t all = int64_t(1) << 62;
    auto make = [pad](TapTable<acc_t>& t, int64_t n, int64_t outputs, int64_t edge, int op) {
      t.build(outputs, edge, [n, pad, op](int64_t i, Taps<acc_t>& taps) {
        if (op == 0) lap::down_taps(i, n, pad, taps);
        if (op == 1) lap::up_taps(i, n, pad, taps);
        if (op == 2) lap::up_adjoint_taps(i, n, pad, taps);
        if (op == 3) lap::down_adjoint_taps(i, n, pad, taps);
      });
    };
    make(v_down, h, h / 2, all, 0);
    make(v_up, h, h, all, 1);
    make(v_up_adjoint, h, h / 2, all, 2);
    make(v_down_adjoint, h, h, all, 3);
    make(h_down, w, w / 2, 1, 0);
    make(h_up, w, w, 2, 1);
    make(h_up_adjoint, w, w / 2, 2, 2);
    make(h_down_adjoint, w, w, 4, 3);
  }
};

template <typename acc_t>
ML_INLINE acc_t at_edge(const TapTable<acc_t>& table, int64_t index, const acc_t* in) {
  return lap::apply_taps(table[index], [in](int64_t j) { return in[j]; });
}

// The row functions below run their interior formula over the whole row,
// from an aligned first element, and then overwrite the ends with the tap
// lists' values: the formula reads up to a few elements past either end of its
// input, a zero-padded scratch row (../common/cpu_rows.h), and its values
// there are discarded.
//
// y (n/2) = down(v (n)) along a row; v padded.
template <typename acc_t>
ML_CPU_CLONES void down_row(const acc_t* __restrict v, int64_t n, const TapTable<acc_t>& taps, acc_t* __restrict y) {
  const int64_t m = n / 2;
  for (int64_t b = 0; b < m; ++b)
    y[b] = lap::down5(v[2 * b - 2], v[2 * b - 1], v[2 * b], v[2 * b + 1], v[2 * b + 2]);
  y[0] = at_edge(taps, 0, v);
  if (m > 1) y[m - 1] = at_edge(taps, m - 1, v);
}

// The 5-tap stencil sum_i k_i z[j + i - 2] for j in [0, n): the interior of
// up() and down^T() on the zero-inserted input z (padded), a contiguous loop
// that vectorizes fully. The inserted zeros add exact zeros, so the values are
// those of the tap lists' terms in the same order.
template <typename acc_t>
ML_INLINE void stencil(const acc_t* __restrict z, int64_t n, acc_t* __restrict u) {
  for (int64_t j = 0; j < n; ++j) u[j] = lap::down5(z[j - 2], z[j - 1], z[j], z[j + 1], z[j + 2]);
}

// z (n) with z[2a] = scale * y[a] and zeros between.
template <typename acc_t>
ML_INLINE void zero_insert(const acc_t* __restrict y, int64_t m, acc_t scale, acc_t* __restrict z) {
  for (int64_t a = 0; a < m; ++a) {
    z[2 * a] = scale * y[a];
    z[2 * a + 1] = acc_t(0);
  }
}

// u (n) = up(y (n/2)) along a row; z: n padded scratch.
template <typename acc_t>
ML_CPU_CLONES void up_row(const acc_t* __restrict y, int64_t n, const TapTable<acc_t>& taps, acc_t* __restrict u,
                          acc_t* __restrict z) {
  zero_insert(y, n / 2, acc_t(2), z);  // up() inserts 2 y per direction (4 y in 2D)
  stencil(z, n, u);
  for (int64_t r = 0; r < std::min<int64_t>(2, n); ++r) u[r] = at_edge(taps, r, y);
  for (int64_t r = std::max<int64_t>(2, n - 2); r < n; ++r) u[r] = at_edge(taps, r, y);
}

// q (n/2) = up^T(s (n)) along a row; s padded.
template <typename acc_t>
ML_CPU_CLONES void up_adjoint_row(const acc_t* __restrict s, int64_t n, const TapTable<acc_t>& taps,
                                  acc_t* __restrict q) {
  const int64_t m = n / 2;
  for (int64_t a = 0; a < m; ++a)
    q[a] = lap::up_adjoint5(s[2 * a - 2], s[2 * a - 1], s[2 * a], s[2 * a + 1], s[2 * a + 2]);
  for (int64_t a = 0; a < std::min<int64_t>(2, m); ++a) q[a] = at_edge(taps, a, s);
  for (int64_t a = std::max<int64_t>(2, m - 1); a < m; ++a) q[a] = at_edge(taps, a, s);
}

// u (n) = down^T(b (n/2)) along a row; z: n padded scratch.
template <typename acc_t>
ML_CPU_CLONES void down_adjoint_row(const acc_t* __restrict b, int64_t n, const TapTable<acc_t>& taps,
                                    acc_t* __restrict u, acc_t* __restrict z) {
  zero_insert(b, n / 2, acc_t(1), z);
  stencil(z, n, u);
  for (int64_t j = 0; j < std::min<int64_t>(4, n); ++j) u[j] = at_edge(taps, j, b);
  for (int64_t j = std::max<int64_t>(4, n - 4); j < n; ++j) u[j] = at_edge(taps, j, b);
}

// One row of level 0: d = (pred - gt / gt_scale) * mask. x / 1 == x exactly,
// so gt_scale == 1 skips the division and gives the same values.
template <bool kMask, bool kScale, typename acc_t>
ML_CPU_CLONES void difference_row(const acc_t* __restrict p, const acc_t* __restrict g, const acc_t* __restrict m,
                                  acc_t gt_scale, int64_t n, acc_t* __restrict d) {
  for (int64_t c = 0; c < n; ++c)
    d[c] = lap::level0_input(p[c], kScale ? g[c] : g[c], kMask ? m[c] : acc_t(1), kScale ? gt_scale : acc_t(1));
}

// One row of L = x - up (up: the combination of up() rows): the loss terms
// |w L| and the gradient seeds.
template <bool kWeighted, typename acc_t>
ML_CPU_CLONES void laplacian_row(const Taps<acc_t>& taps, const acc_t* const* up_rows, const acc_t* x,
                                 const acc_t* w, acc_t coef, int64_t n, acc_t* seed, acc_t* term) {
  fused(taps, up_rows, n, [=](int64_t c, acc_t up) {
    const acc_t L = x[c] - up;
    const acc_t wc = kWeighted ? w[c] : acc_t(1);
    term[c] = lap::l1_term(L, wc);
    seed[c] = lap::l1_seed(L, wc, coef);
  });
}

// t = s + down^T(t_coarse) (the combination of down^T rows), by destination:
// level 0 from the seeds (times the mask), level 0 in place over the seeds the
// forward pass kept in the gradient, or added to t_l (level > 0).
template <bool kMask, typename acc_t>
ML_CPU_CLONES void adjoint_row(const Taps<acc_t>& taps, const acc_t* const* rows, const acc_t* seed,
                               const acc_t* m, int64_t n, acc_t* out) {
  fused(taps, rows, n, [=](int64_t c, acc_t down_t) {
    const acc_t t = seed[c] + down_t;
    out[c] = kMask ? t * m[c] : t;  // d(d)/d(pred) = mask
  });
}

template <bool kMask, typename acc_t>
ML_CPU_CLONES void adjoint_in_place(const Taps<acc_t>& taps, const acc_t* const* rows, const acc_t* m, int64_t n,
                                    acc_t* grad) {
  fused(taps, rows, n, [=](int64_t c, acc_t down_t) {
    const acc_t t = grad[c] + down_t;
    grad[c] = kMask ? t * m[c] : t;
  });
}

template <typename acc_t>
ML_CPU_CLONES void accumulate_row(const Taps<acc_t>& taps, const acc_t* const* rows, const acc_t* seed, int64_t n,
                                  acc_t* out) {
  fused(taps, rows, n, [=](int64_t c, acc_t down_t) { out[c] += seed[c] + down_t; });
}

template <typename acc_t>
struct Lanes {
  acc_t lane[kLanes] = {};
  void add(const acc_t* v, int64_t n) { add_to_lanes(v, n, lane); }
  acc_t total() const {
    acc_t s = 0;
    for (int64_t l = 0; l < kLanes; ++l) s += lane[l];
    return s;
  }
};

// ---------------------------------------------------------------- row sources

template <typename src_t, typename acc_t>
void convert_strided(const void* base, int64_t offset, int64_t stride, int64_t n, acc_t* dst) {
  const src_t* src = static_cast<const src_t*>(base) + offset;
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<src_t, double>) {
      dst[i] = static_cast<acc_t>(src[i * stride]);  // not through float: float64 weights stay exact
    } else {
      dst[i] = static_cast<acc_t>(static_cast<float>(src[i * stride]));
    }
  }
}

template <typename acc_t>
void read_strided(const Input& in, int64_t offset, int64_t stride, int64_t n, acc_t* dst) {
  switch (in.dtype) {
    case Dtype::kUInt8: return convert_strided<uint8_t>(in.data, offset, stride, n, dst);
    case Dtype::kFloat: return convert_strided<float>(in.data, offset, stride, n, dst);
    case Dtype::kDouble: return convert_strided<double>(in.data, offset, stride, n, dst);
    case Dtype::kHalf: return convert_strided<c10::Half>(in.data, offset, stride, n, dst);
    case Dtype::kBFloat16: return convert_strided<c10::BFloat16>(in.data, offset, stride, n, dst);
  }
}

// The last kSlots rows of one kind a unit computed, by row index.
template <typename acc_t>
struct Ring {
  PaddedRows<acc_t> rows;
  int64_t tag[kSlots];
  explicit Ring(int64_t row_len) : rows(kSlots, row_len) { clear(); }
  void clear() { std::fill(tag, tag + kSlots, -1); }
  // The slot for row r; *fresh: it must be (re)computed.
  acc_t* slot(int64_t r, bool* fresh) {
    const int64_t k = r % kSlots;
    *fresh = tag[k] != r;
    tag[k] = r;
    return rows[k];
  }
};

// What the units of one level on one thread share: the level's sizes, row
// caches and staging, and the row computations built on them. start() sets
// the plane of the next unit.
template <typename acc_t>
struct Level {
  const Args<acc_t>& a;
  const LevelTaps<acc_t>& T;
  const int64_t level, h, w, H, W, Hc, Wc;  // level sizes; Hc x Wc: x_{level+1}
  const acc_t coef;
  int64_t plane = 0;
  // Coarse rows for up(): x_{level+1} itself, or the unit's own band of it
  // (rows [band_first, ...)) while the forward pass builds it.
  const acc_t* coarse_base = nullptr;
  int64_t band_first = 0, coarse_pitch = 0;
  Ring<acc_t> x_rows, up_rows, seed_rows, term_rows, down_t_rows;
  // Scratch rows of W (../common/cpu_rows.h), zeroed: with an odd W, the row
  // functions read column w = W - 1 of tmp as padding.
  PaddedRows<acc_t> rows;
  acc_t *p, *g, *m, *tmp, *tmp2, *wrow, *out, *zrow;

  Level(const Args<acc_t>& args, const LevelTaps<acc_t>& taps, int64_t lvl, acc_t level_coef)
      : a(args), T(taps), level(lvl), h(args.geo.h[lvl]), w(args.geo.w[lvl]), H(args.geo.H[lvl]), W(args.geo.W[lvl]),
        Hc(args.geo.H[lvl + 1]), Wc(args.geo.W[lvl + 1]), coef(level_coef), x_rows(lvl == 0 ? W : 0),
        up_rows(w), seed_rows(w), term_rows(w), down_t_rows(w), rows(8, W, true), p(rows[0]), g(rows[1]), m(rows[2]),
        tmp(rows[3]), tmp2(rows[4]), wrow(rows[5]), out(rows[6]), zrow(rows[7]) {}

  void start(int64_t pl) {
    plane = pl;
    coarse_base = a.scratch + a.offset[level + 1] + plane * Hc * Wc;
    band_first = 0;
    coarse_pitch = Wc;
    x_rows.clear();
    up_rows.clear();
    seed_rows.clear();
    term_rows.clear();
    down_t_rows.clear();
  }

  int64_t level0_offset(int64_t r) const { return (plane * a.geo.H[0] + r) * a.geo.W[0]; }

  const acc_t* mask_row(int64_t r, int64_t n) { return read(a.weight, level0_offset(r), n, m); }

  // Row r of x_level (its first w columns).
  const acc_t* x(int64_t r) {
    if (level > 0) return a.scratch + a.offset[level] + (plane * H + r) * W;
    bool fresh;
    acc_t* d = x_rows.slot(r, &fresh);
    if (fresh) {
      const int64_t off = level0_offset(r);
      const acc_t* pr = read(a.pred, off, w, p);
      const acc_t* gr = read(a.gt, off, w, g);
      const bool scale = a.gt_scale != acc_t(1);
      if (a.weight_mode == lap::kMaskBefore) {
        const acc_t* mr = mask_row(r, w);
        scale ? difference_row<true, true>(pr, gr, mr, a.gt_scale, w, d)
              : difference_row<true, false>(pr, gr, mr, a.gt_scale, w, d);
      } else {
        scale ? difference_row<false, true>(pr, gr, pr, a.gt_scale, w, d)
              : difference_row<false, false>(pr, gr, pr, a.gt_scale, w, d);
      }
    }
    return d;
  }

  // Row r of x_{level+1} = down(x_level), into y.
  void down(int64_t r, acc_t* y) {
    const Taps<acc_t>& taps = T.v_down[r];
    const acc_t* rows[lap::kMaxTaps];
    for (int k = 0; k < taps.count; ++k) rows[k] = x(taps.index[k]);
    combine(rows, taps.weight, taps.count, w, tmp);
    down_row(tmp, w, T.h_down, y);
  }

  acc_t* adjoint(int64_t lvl, int64_t r) const {
    return a.scratch + a.adjoint_offset[lvl] + (plane * a.geo.H[lvl] + r) * a.geo.W[lvl];
  }

  // up() of coarse row r along its length.
  const acc_t* up_row_of(int64_t r) {
    bool fresh;
    acc_t* u = up_rows.slot(r, &fresh);
    if (fresh) up_row(coarse_base + (r - band_first) * coarse_pitch, w, T.h_up, u, zrow);
    return u;
  }

  // Fine row r of L_level: its gradient seeds and loss terms (cached by row).
  void laplacian(int64_t r, const acc_t** seed, const acc_t** term) {
    bool fresh;
    acc_t* s = seed_rows.slot(r, &fresh);
    acc_t* t = term_rows.slot(r, &fresh);
    *seed = s;
    *term = t;
    if (!fresh) return;
    const Taps<acc_t>& taps = T.v_up[r];
    const acc_t* rows[lap::kMaxTaps];
    for (int k = 0; k < taps.count; ++k) rows[k] = up_row_of(taps.index[k]);
    const acc_t* xr = x(r);
    if (a.weight_mode == lap::kWeightAfter) {
      const int64_t off = (plane * a.geo.H[0] + (r << level)) * a.geo.W[0];
      const acc_t* wr = wrow;
      if (level == 0) {
        wr = read(a.weight, off, w, wrow);
      } else {
        read_strided(a.weight, off, int64_t(1) << level, w, wrow);
      }
      laplacian_row<true>(taps, rows, xr, wr, coef, w, s, t);
    } else {
      laplacian_row<false>(taps, rows, xr, xr, coef, w, s, t);
    }
  }

  // down^T of row r of t_{level+1} along its length.
  const acc_t* down_adjoint_of(int64_t r) {
    bool fresh;
    acc_t* u = down_t_rows.slot(r, &fresh);
    if (fresh) down_adjoint_row(adjoint(level + 1, r), w, T.h_down_adjoint, u, zrow);
    return u;
  }
};

// ---------------------------------------------------------------- passes

int64_t bands(int64_t coarse_rows) { return (coarse_rows + kBand - 1) / kBand; }

// Units per thread at least: the coarse levels are too small to be worth a
// parallel region (each ends in a barrier); those run on the calling thread.
// Partitioning never changes a value, only who computes it.
constexpr int64_t kMinPixelsPerThread = 32768;
template <typename acc_t>
int64_t grain(const Args<acc_t>& a, int64_t level) {
  const int64_t unit_pixels = 2 * kBand * a.geo.W[level];
  return std::max<int64_t>(1, kMinPixelsPerThread / unit_pixels);
}

// Whether the forward pass keeps s_0 in the gradient buffer for the adjoint
// pass (when the gradient is in the accumulation type): that pass then reads
// 4 bytes per pixel instead of pred and gt, and skips recomputing L_0.
template <typename acc_t>
bool seeds_in_gradient(const Args<acc_t>& a) {
  return in_place<acc_t>(a.grad);
}

// Forward, level l, in one read of x_l: x_{l+1} = down(x_l), the level's
// loss partials (one per unit) and, with a gradient, t_{l+1} = -up^T(s_l)
// (the adjoint pass of level l+1 adds the rest). A unit owns the coarse rows
// [a0, a1) and fine rows [2 a0, 2 a1); it also computes the 2 coarse rows on
// either side that its fine rows' up() and its up^T read.
template <typename acc_t>
void forward_pass(const Args<acc_t>& a, const LevelTaps<acc_t>& taps, int64_t level, acc_t coef, bool grad,
                  std::vector<acc_t>& partial) {
  const int64_t nb = bands(a.geo.h[level] / 2);
  partial.assign(a.planes * nb, acc_t(0));
  parallel_chunks(a.planes * nb, grain(a, level), [&](ChunkQueue& queue) {
    Level<acc_t> u(a, taps, level, coef);
    PaddedRows<acc_t> band(kBand + 4, u.Wc);
    for (int64_t unit; queue.next(unit);) {
      u.start(unit / nb);
      const int64_t a0 = (unit % nb) * kBand, a1 = std::min(a0 + kBand, u.Hc);
      const int64_t lo = std::max<int64_t>(a0 - 2, 0);  // the band: coarse rows lo .. a1 + 1, as up() needs them
      u.coarse_base = band[0];
      u.coarse_pitch = band.pitch();
      u.band_first = lo;
      // The band's coarse rows are computed as the fine rows' up() first needs
      // them, while the x rows they are made of are still in the unit's ring
      // (computing them all first made most level-0 rows of d twice).
      int64_t next_down = lo;
      auto laplacian = [&](int64_t fine, const acc_t** seed, const acc_t** term) {
        const Taps<acc_t>& up = u.T.v_up[fine];
        for (int k = 0; k < up.count; ++k) {
          for (; next_down <= up.index[k]; ++next_down) u.down(next_down, band[next_down - lo]);
        }
        u.laplacian(fine, seed, term);
      };
      Lanes<acc_t> lanes;
      const bool keep_seeds = grad && level == 0 && seeds_in_gradient(a);
      for (int64_t r = a0; r < a1; ++r) {
        const acc_t *seed, *term;
        for (int64_t fine = 2 * r; fine < 2 * r + 2; ++fine) {  // the unit's own rows, in order
          laplacian(fine, &seed, &term);
          lanes.add(term, u.w);
          if (keep_seeds) std::copy(seed, seed + u.w, static_cast<acc_t*>(a.grad.data) + u.level0_offset(fine));
        }
        if (!grad) continue;
        const Taps<acc_t>& taps = u.T.v_up_adjoint[r];
        const acc_t* rows[lap::kMaxTaps];
        for (int k = 0; k < taps.count; ++k) {
          laplacian(taps.index[k], &seed, &term);
          rows[k] = seed;
        }
        combine(rows, taps.weight, taps.count, u.w, u.tmp);
        up_adjoint_row(u.tmp, u.w, u.T.h_up_adjoint, u.tmp2);
        acc_t* t = u.adjoint(level + 1, r);
        for (int64_t c = 0; c < u.Wc; ++c) t[c] = -u.tmp2[c];
      }
      for (; next_down < a1; ++next_down) u.down(next_down, band[next_down - lo]);
      for (int64_t r = a0; r < a1; ++r)
        std::copy(band[r - lo], band[r - lo] + u.Wc, a.scratch + a.offset[level + 1] + (u.plane * u.Hc + r) * u.Wc);
      partial[unit] = lanes.total();
    }
  });
}

// The other loss's gradient folded into one row of the gradient (lap::with_base).
template <typename acc_t>
ML_CPU_CLONES void fold_base(const Args<acc_t>& a, int64_t offset, int64_t W, acc_t* out,
                             const PaddedRows<acc_t>& staging) {
  const acc_t* base = read(a.base, offset, W, staging[0]);
  const acc_t own_coef = a.own_coef;
#pragma GCC ivdep
  for (int64_t x = 0; x < W; ++x) out[x] = lap::with_base(out[x], own_coef, base[x]);
}

// t_l = s_l + down^T(t_{l+1}), zero on the rows/columns cropped away: added
// to -up^T(s_{l-1}) already in t_l's buffer for l > 0; at level 0 (times the
// mask) written into the gradient, in its dtype.
template <typename acc_t>
void adjoint_pass(const Args<acc_t>& a, const LevelTaps<acc_t>& taps, int64_t level, acc_t coef) {
  const int64_t nb = bands(a.geo.h[level] / 2);
  parallel_chunks(a.planes * nb, grain(a, level), [&](ChunkQueue& queue) {
    Level<acc_t> u(a, taps, level, coef);
    PaddedRows<acc_t> staging(level == 0 ? int(a.has_base) : 0, u.W);
    for (int64_t unit; queue.next(unit);) {
      u.start(unit / nb);
      const int64_t band = unit % nb;
      const int64_t r0 = 2 * band * kBand, r1 = band == nb - 1 ? u.H : std::min(r0 + 2 * kBand, u.H);
      const bool masked = level == 0 && a.weight_mode == lap::kMaskBefore;
      const bool stored = seeds_in_gradient(a);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t off = u.level0_offset(r);
        if (level > 0 && r >= u.h) continue;  // t_l += 0
        acc_t* out = level > 0 ? u.adjoint(level, r) : target(a.grad, off, u.out);
        if (r < u.h && level == 0 && stored) {
          const Taps<acc_t>& taps = u.T.v_down_adjoint[r];
          const acc_t* rows[lap::kMaxTaps];
          for (int k = 0; k < taps.count; ++k) rows[k] = u.down_adjoint_of(taps.index[k]);
          if (masked) {
            adjoint_in_place<true>(taps, rows, u.mask_row(r, u.w), u.w, out);
          } else {
            adjoint_in_place<false>(taps, rows, out, u.w, out);
          }
          std::fill(out + u.w, out + u.W, acc_t(0));
        } else if (r < u.h) {
          const acc_t *seed, *term;
          u.laplacian(r, &seed, &term);
          const Taps<acc_t>& taps = u.T.v_down_adjoint[r];
          const acc_t* rows[lap::kMaxTaps];
          for (int k = 0; k < taps.count; ++k) rows[k] = u.down_adjoint_of(taps.index[k]);
          if (level > 0) {
            accumulate_row(taps, rows, seed, u.w, out);
          } else if (masked) {
            adjoint_row<true>(taps, rows, seed, u.mask_row(r, u.w), u.w, out);
            std::fill(out + u.w, out + u.W, acc_t(0));
          } else {
            adjoint_row<false>(taps, rows, seed, seed, u.w, out);
            std::fill(out + u.w, out + u.W, acc_t(0));
          }
        } else {
          std::fill(out, out + u.W, acc_t(0));
        }
        if (level == 0 && a.has_base) fold_base(a, off, u.W, out, staging);
        if (level == 0) write_back(a.grad, off, u.W, out);
      }
    }
  });
}

// Per level, the sum over the batch of the weights the level uses
// (kWeightAfter), or of the whole mask in weight_sum[0] (kMaskBefore).
template <typename acc_t>
void weight_sums(const Args<acc_t>& a, acc_t* weight_sum) {
  const lap::Geometry& G = a.geo;
  const int64_t rows_per_unit = 2 * kBand, nb = (G.H[0] + rows_per_unit - 1) / rows_per_unit;
  const int64_t levels = a.weight_mode == lap::kWeightAfter ? G.levels : 1;
  std::vector<acc_t> partial(a.planes * nb * levels, acc_t(0));
  parallel_chunks(a.planes * nb, 1, [&](ChunkQueue& queue) {
    std::vector<acc_t> row(G.W[0]);
    for (int64_t unit; queue.next(unit);) {
      const int64_t plane = unit / nb, r0 = (unit % nb) * rows_per_unit;
      const int64_t r1 = std::min(r0 + rows_per_unit, G.H[0]);
      for (int64_t l = 0; l < levels; ++l) {
        Lanes<acc_t> lanes;
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t off = (plane * G.H[0] + r) * G.W[0];
          if (a.weight_mode == lap::kMaskBefore) {
            lanes.add(read(a.weight, off, G.W[0], row.data()), G.W[0]);
          } else if (r % (int64_t(1) << l) == 0 && (r >> l) < G.h[l]) {
            read_strided(a.weight, off, int64_t(1) << l, G.w[l], row.data());
            lanes.add(row.data(), G.w[l]);
          }
        }
        partial[unit * levels + l] = lanes.total();
      }
    }
  });
  for (int64_t l = 0; l < levels; ++l) {
    acc_t s = 0;
    for (int64_t unit = 0; unit < a.planes * nb; ++unit) s += partial[unit * levels + l];
    weight_sum[l] = s;
  }
}

template <typename acc_t>
void run_levels(const Args<acc_t>& a) {
  const int64_t n = a.geo.levels;
  acc_t weight_sum[lap::kMaxLevels] = {}, coef[lap::kMaxLevels];
  if (a.weight_mode != lap::kNoWeight) weight_sums(a, weight_sum);
  lap::level_coefficients(a.geo, a.planes, a.weight_mode, a.level_weights, a.mask_numer, weight_sum, coef);
  const bool grad = a.grad.data != nullptr;
  std::vector<LevelTaps<acc_t>> taps(n);
  for (int64_t l = 0; l < n; ++l) taps[l].build(a.geo.h[l], a.geo.w[l], a.padding);
  std::vector<acc_t> partial;
  acc_t loss = 0;
  for (int64_t l = 0; l < n; ++l) {
    forward_pass(a, taps[l], l, coef[l], grad, partial);
    acc_t s = 0;
    for (const acc_t v : partial) s += v;
    a.level_losses[l] = coef[l] * s;
    loss += a.level_losses[l];
  }
  *a.loss = loss;
  if (grad) {
    for (int64_t l = n - 1; l >= 0; --l) adjoint_pass(a, taps[l], l, coef[l]);
  }
}

}  // namespace

template <typename acc_t>
void laplacian_cpu(const lap::Args<acc_t>& a) {
  run_levels(a);
}

template void laplacian_cpu<float>(const lap::Args<float>&);
template void laplacian_cpu<double>(const lap::Args<double>&);

}  // namespace mattingloss
