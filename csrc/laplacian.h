// The single definition of the Laplacian-pyramid loss math, shared by the CPU
// and CUDA backends.
//
// The pyramid (RVM's, MGMatting's): K = v v^T / 256, v = [1, 4, 6, 4, 1], after
// 2 pixels of padding; down(x) = blur(x)[::2, ::2]; up(y) = blur(z), z zero
// except z[::2, ::2] = 4 y; L_i = x_i - up(down(x_i)), x_{i+1} = down(x_i).
// Everything is linear, so the kernels build one pyramid of d = pred - gt
// instead of two, and separable: each 2D operation is a 1D operation along
// the rows (which rows are combined, with what weights) followed by the same
// 1D operation along the columns. A 1D operation on a line of n (even) fine
// samples, m = n / 2 coarse ones:
//   down:     y[a] = sum_i k_i c[pad(2a + i - 2)]                  (k = v / 16)
//   up:       u[r] = sum_i k_i z[pad(r + i - 2)], z[2a] = 2 y[a], 0 at odd indices
//   down^T, up^T: their adjoints (the gradient runs through these): padding
//                 folds back onto the samples it copied, decimation becomes
//                 zero insertion and zero insertion decimation.
// `*_taps` enumerate, for one output sample, the input samples and their
// weights (sums of k_i: exact dyadic fractions). The backends evaluate those
// lists where padding is involved (all samples on CUDA, the lines' ends and
// every row combination on the CPU) and the equal interior formulas below
// elsewhere, in the same order of terms.
#pragma once

#include <cstdint>

#include "codes.h"
#include "common/defs.h"
#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace mattingloss {
namespace lap {

constexpr double kAfterEps = 1e-8;  // MGMatting's guard on sum(w_i)

// The index a padded position reads; p is at most 2 outside [0, n).
// Reflect (torch's "reflect", the edge not repeated) needs n >= 3.
ML_INLINE int64_t pad_index(int64_t p, int64_t n, int64_t mode) {
  if (mode == kReflect) {
    if (p < 0) p = -p;
    if (p >= n) p = 2 * (n - 1) - p;
    return p;
  }
  return p < 0 ? 0 : (p >= n ? n - 1 : p);
}

template <typename acc_t>
ML_INLINE acc_t tap(int i) {
  // 1/16, 4/16, 6/16, 4/16, 1/16: exact in any binary floating type.
  return i == 2 ? acc_t(0.375) : ((i == 1 || i == 3) ? acc_t(0.25) : acc_t(0.0625));
}

// Up to kMaxTaps (input index, weight) pairs, in increasing index order.
constexpr int kMaxTaps = 8;
template <typename acc_t>
struct Taps {
  int64_t index[kMaxTaps] = {};
  acc_t weight[kMaxTaps] = {};
  int count = 0;
  ML_INLINE void add(int64_t j, acc_t w) {
    // Same index as the last entry: merge (sums of dyadic fractions are exact).
    if (count > 0 && index[count - 1] == j) {
      weight[count - 1] += w;
    } else {
      index[count] = j;
      weight[count] = w;
      ++count;
    }
  }
};

// down: output a of m = n/2, inputs in [0, n). Taps in i order (the reflected
// ones first at the top edge, so not always increasing; merged only when adjacent).
template <typename acc_t>
ML_INLINE void down_taps(int64_t a, int64_t n, int64_t mode, Taps<acc_t>& t) {
  t.count = 0;
  for (int i = 0; i < 5; ++i) t.add(pad_index(2 * a + i - 2, n, mode), tap<acc_t>(i));
}

// up: output r of n, inputs (coarse samples) in [0, n/2).
template <typename acc_t>
ML_INLINE void up_taps(int64_t r, int64_t n, int64_t mode, Taps<acc_t>& t) {
  t.count = 0;
  for (int i = 0; i < 5; ++i) {
    const int64_t p = pad_index(r + i - 2, n, mode);
    if (p % 2 == 0) t.add(p / 2, acc_t(2) * tap<acc_t>(i));
  }
}

// down^T: output j of n (fine), inputs a in [0, n/2): every a whose down taps read j.
template <typename acc_t>
ML_INLINE void down_adjoint_taps(int64_t j, int64_t n, int64_t mode, Taps<acc_t>& t) {
  t.count = 0;
  const int64_t m = n / 2;
  for (int64_t a = j / 2 - 2; a <= j / 2 + 2; ++a) {
    if (a < 0 || a >= m) continue;
    acc_t w = 0;
    for (int i = 0; i < 5; ++i) w += pad_index(2 * a + i - 2, n, mode) == j ? tap<acc_t>(i) : acc_t(0);
    if (w != acc_t(0)) t.add(a, w);
  }
}

// up^T: output a of n/2, inputs r in [0, n): every r whose up taps read a.
template <typename acc_t>
ML_INLINE void up_adjoint_taps(int64_t a, int64_t n, int64_t mode, Taps<acc_t>& t) {
  t.count = 0;
  for (int64_t r = 2 * a - 4; r <= 2 * a + 4; ++r) {
    if (r < 0 || r >= n) continue;
    acc_t w = 0;
    for (int i = 0; i < 5; ++i) w += pad_index(r + i - 2, n, mode) == 2 * a ? acc_t(2) * tap<acc_t>(i) : acc_t(0);
    if (w != acc_t(0)) t.add(r, w);
  }
}

template <typename acc_t, typename Read>
ML_INLINE acc_t apply_taps(const Taps<acc_t>& t, Read read) {
  acc_t s = 0;
  for (int k = 0; k < t.count; ++k) s += t.weight[k] * read(t.index[k]);
  return s;
}

// The interior formulas, equal to the tap lists away from the ends (the same
// terms in the same order). Valid ranges, with m = n/2:
//   down     a in [1, m-2]           inputs 2a-2 .. 2a+2
//   up       r in [2, n-3]           even r = 2a: a-1, a, a+1; odd r = 2a+1: a, a+1
//   up^T     a in [2, m-2]           inputs 2a-2 .. 2a+2
//   down^T   j in [4, n-4)           even j: j/2-1, j/2, j/2+1; odd j: (j-1)/2, (j+1)/2
template <typename acc_t>
ML_INLINE acc_t down5(acc_t x0, acc_t x1, acc_t x2, acc_t x3, acc_t x4) {
  return acc_t(0) + tap<acc_t>(0) * x0 + tap<acc_t>(1) * x1 + tap<acc_t>(2) * x2 + tap<acc_t>(3) * x3 +
         tap<acc_t>(4) * x4;
}
template <typename acc_t>
ML_INLINE acc_t up_even(acc_t y0, acc_t y1, acc_t y2) {  // 1/8, 6/8, 1/8
  return acc_t(0) + acc_t(0.125) * y0 + acc_t(0.75) * y1 + acc_t(0.125) * y2;
}
template <typename acc_t>
ML_INLINE acc_t up_odd(acc_t y0, acc_t y1) {  // 1/2, 1/2
  return acc_t(0) + acc_t(0.5) * y0 + acc_t(0.5) * y1;
}
template <typename acc_t>
ML_INLINE acc_t up_adjoint5(acc_t s0, acc_t s1, acc_t s2, acc_t s3, acc_t s4) {  // 2 k_i
  return acc_t(0) + acc_t(0.125) * s0 + acc_t(0.5) * s1 + acc_t(0.75) * s2 + acc_t(0.5) * s3 +
         acc_t(0.125) * s4;
}
template <typename acc_t>
ML_INLINE acc_t down_adjoint_even(acc_t b0, acc_t b1, acc_t b2) {  // k4, k2, k0
  return acc_t(0) + tap<acc_t>(4) * b0 + tap<acc_t>(2) * b1 + tap<acc_t>(0) * b2;
}
template <typename acc_t>
ML_INLINE acc_t down_adjoint_odd(acc_t b0, acc_t b1) {  // k3, k1
  return acc_t(0) + tap<acc_t>(3) * b0 + tap<acc_t>(1) * b1;
}

// The tap lists evaluated as they are enumerated, with no arrays: the same
// terms, merged weights and order as apply_taps() over the *_taps() lists, so
// the same bits. Why: a Taps indexed by a runtime count lives in local memory
// on CUDA (208-560 B per thread); these keep a pending (index, weight) pair in
// registers. The CPU's row ends use them too (its tests exercise them).
template <typename acc_t, typename Read>
struct TapStream {
  const Read& read;
  acc_t sum = 0, weight = 0;
  int64_t index = -1;
  ML_INLINE explicit TapStream(const Read& r) : read(r) {}
  ML_INLINE void add(int64_t j, acc_t w) {  // Taps::add, then apply_taps' term when a run ends
    if (index == j) {
      weight += w;
      return;
    }
    flush();
    index = j;
    weight = w;
  }
  ML_INLINE void flush() {
    if (index >= 0) sum += weight * read(index);
  }
  ML_INLINE acc_t finish() {
    flush();
    return sum;
  }
};

template <typename acc_t, typename Read>
ML_INLINE acc_t down_general(int64_t a, int64_t n, int64_t mode, const Read& read) {
  TapStream<acc_t, Read> t(read);
  ML_UNROLL for (int i = 0; i < 5; ++i) t.add(pad_index(2 * a + i - 2, n, mode), tap<acc_t>(i));
  return t.finish();
}

template <typename acc_t, typename Read>
ML_INLINE acc_t up_general(int64_t r, int64_t n, int64_t mode, const Read& read) {
  TapStream<acc_t, Read> t(read);
  ML_UNROLL for (int i = 0; i < 5; ++i) {
    const int64_t p = pad_index(r + i - 2, n, mode);
    if (p % 2 == 0) t.add(p / 2, acc_t(2) * tap<acc_t>(i));
  }
  return t.finish();
}

// The adjoints' lists have distinct, increasing indices (nothing merges).
template <typename acc_t, typename Read>
ML_INLINE acc_t down_adjoint_general(int64_t j, int64_t n, int64_t mode, const Read& read) {
  const int64_t m = n / 2;
  acc_t s = 0;
  ML_UNROLL for (int k = 0; k < 5; ++k) {
    const int64_t a = j / 2 - 2 + k;
    if (a < 0 || a >= m) continue;
    acc_t w = 0;
    ML_UNROLL for (int i = 0; i < 5; ++i) w += pad_index(2 * a + i - 2, n, mode) == j ? tap<acc_t>(i) : acc_t(0);
    if (w != acc_t(0)) s += w * read(a);
  }
  return s;
}

template <typename acc_t, typename Read>
ML_INLINE acc_t up_adjoint_general(int64_t a, int64_t n, int64_t mode, const Read& read) {
  acc_t s = 0;
  ML_UNROLL for (int k = 0; k < 9; ++k) {
    const int64_t r = 2 * a - 4 + k;
    if (r < 0 || r >= n) continue;
    acc_t w = 0;
    ML_UNROLL for (int i = 0; i < 5; ++i) w += pad_index(r + i - 2, n, mode) == 2 * a ? acc_t(2) * tap<acc_t>(i) : acc_t(0);
    if (w != acc_t(0)) s += w * read(r);
  }
  return s;
}

// One output of each 1D operation: the interior formula where it holds, the
// list otherwise (equal values). Every input read lies in the footprint
//   down(a), up^T(a): fine [2a - 2, 2a + 2];  up(r), down^T(r): coarse [r/2 - 1, r/2 + 1]
// (r/2 rounded down), also at the ends with either padding: the tiles of the
// CUDA kernel size their halos by it.
template <typename acc_t, typename Read>
ML_INLINE acc_t down_1d(int64_t a, int64_t n, int64_t mode, const Read& x) {
  if (a >= 1 && a <= n / 2 - 2) return down5(x(2 * a - 2), x(2 * a - 1), x(2 * a), x(2 * a + 1), x(2 * a + 2));
  return down_general<acc_t>(a, n, mode, x);
}
template <typename acc_t, typename Read>
ML_INLINE acc_t up_1d(int64_t r, int64_t n, int64_t mode, const Read& y) {
  if (r >= 2 && r <= n - 3) {
    const int64_t a = r / 2;
    return r % 2 == 0 ? up_even(y(a - 1), y(a), y(a + 1)) : up_odd(y(a), y(a + 1));
  }
  return up_general<acc_t>(r, n, mode, y);
}
template <typename acc_t, typename Read>
ML_INLINE acc_t up_adjoint_1d(int64_t a, int64_t n, int64_t mode, const Read& s) {
  if (a >= 2 && a <= n / 2 - 2)
    return up_adjoint5(s(2 * a - 2), s(2 * a - 1), s(2 * a), s(2 * a + 1), s(2 * a + 2));
  return up_adjoint_general<acc_t>(a, n, mode, s);
}
template <typename acc_t, typename Read>
ML_INLINE acc_t down_adjoint_1d(int64_t j, int64_t n, int64_t mode, const Read& b) {
  if (j >= 4 && j < n - 4) {
    const int64_t c = j / 2;
    return j % 2 == 0 ? down_adjoint_even(b(c - 1), b(c), b(c + 1)) : down_adjoint_odd(b(c), b(c + 1));
  }
  return down_adjoint_general<acc_t>(j, n, mode, b);
}

// Level 0 of the one pyramid: the difference (times the mask for kMaskBefore;
// 1 otherwise). The ground truth is divided by its scale as the user would.
template <typename acc_t>
ML_INLINE acc_t level0_input(acc_t pred, acc_t gt, acc_t mask, acc_t gt_scale) {
  return (pred - gt / gt_scale) * mask;
}

template <typename acc_t>
ML_INLINE acc_t sign(acc_t x) {  // sign(0) = 0 (and NaN -> 0), as torch's abs backward
  return acc_t(x > acc_t(0)) - acc_t(x < acc_t(0));
}

// One Laplacian sample L with its weight w (1 without a weight): the loss
// term |w L| and the gradient seed coef * w * sign(w L), coef the level's
// d(loss)/d(sum |w L|).
template <typename acc_t>
ML_INLINE acc_t l1_term(acc_t L, acc_t w) {
  const acc_t wl = w * L;
  return wl < acc_t(0) ? -wl : wl;
}
template <typename acc_t>
ML_INLINE acc_t l1_seed(acc_t L, acc_t w, acc_t coef) {
  return coef * w * sign(w * L);
}

// Sizes of every level. x_i is H[i] x W[i]; the part the level uses (after
// crop_to_even) is h[i] x w[i], both even; x_{i+1} is h[i]/2 x w[i]/2.
struct Geometry {
  int64_t levels = 0;
  int64_t H[kMaxLevels + 1], W[kMaxLevels + 1], h[kMaxLevels], w[kMaxLevels];
};

// False when a level is odd without cropping, or too small for the padding
// (reflect: >= 4 after cropping; replicate: >= 2). The host checks this first.
inline bool make_geometry(int64_t H, int64_t W, int64_t levels, bool crop, int64_t padding, Geometry& g) {
  if (levels < 1 || levels > kMaxLevels) return false;
  const int64_t least = padding == kReflect ? 4 : 2;
  g.levels = levels;
  g.H[0] = H;
  g.W[0] = W;
  for (int64_t i = 0; i < levels; ++i) {
    g.h[i] = g.H[i] - g.H[i] % 2;
    g.w[i] = g.W[i] - g.W[i] % 2;
    if (!crop && (g.h[i] != g.H[i] || g.w[i] != g.W[i])) return false;
    if (g.h[i] < least || g.w[i] < least) return false;
    g.H[i + 1] = g.h[i] / 2;
    g.W[i + 1] = g.w[i] / 2;
  }
  return true;
}

// The per-level coefficients, from the level sums of the weight
// (kWeightAfter: sum of w_i over the batch; kMaskBefore: weight_sum[0] is
// sum(w) over the batch). term_i = coef[i] * sum|w_i L_i| is level i's share
// of the loss, and coef[i] is also its gradient seed's factor.
template <typename acc_t>
ML_INLINE void level_coefficients(const Geometry& g, int64_t planes, int64_t weight_mode, const double* level_weights,
                                  acc_t mask_numer, const acc_t* weight_sum, acc_t* coef) {
  acc_t global = 1;
  if (weight_mode == kMaskBefore) {
    global = weight_sum[0] == acc_t(0) ? acc_t(0) : mask_numer / weight_sum[0];
  }
  for (int64_t i = 0; i < g.levels; ++i) {
    const acc_t norm = weight_mode == kWeightAfter ? weight_sum[i] + acc_t(kAfterEps)
                                                   : acc_t(planes) * acc_t(g.h[i]) * acc_t(g.w[i]);
    coef[i] = acc_t(level_weights[i]) / norm * global;
  }
}

}  // namespace lap
}  // namespace mattingloss

namespace mattingloss {
namespace lap {

// The gradient written at one element when another loss's gradient is folded
// in (the presets' one gradient buffer): this loss's own times its weight in
// the total, plus the other's, already scaled. The same on the CPU and the GPU.
template <typename acc_t>
ML_INLINE acc_t with_base(acc_t own, acc_t own_coef, acc_t base) {
  return own_coef * own + base;
}

// What a backend's forward gets: raw pointers, dtype codes, sizes and the
// options. Plain data with no ATen types, so the .cu file needs no torch
// headers. Filled by prepare_laplacian() in laplacian_host.cpp.
template <typename acc_t>
struct Args {
  Geometry geo;
  int64_t planes = 0;  // B * C images of H x W
  int64_t padding = kReflect;
  int64_t weight_mode = kNoWeight;
  double level_weights[kMaxLevels] = {};
  acc_t gt_scale = 1;
  acc_t mask_numer = 0;  // kMaskBefore: the loss is scaled by mask_numer / sum(w)
  Input pred, gt, weight;
  Output grad;  // nullptr when not requested
  // Another loss's gradient folded into grad (see with_base): a map of grad's
  // size when has_base, and this loss's own coefficient.
  Input base;
  bool has_base = false;
  acc_t own_coef = 1;
  acc_t* loss = nullptr;          // scalar
  acc_t* level_losses = nullptr;  // (levels,) each level's term of the loss
  // Scratch, per level l in 1..levels at offset[l]: x_l for every plane, and
  // (with a gradient) t_l, the adjoint of x_l, at adjoint_offset[l].
  acc_t* scratch = nullptr;
  int64_t offset[kMaxLevels + 1] = {};
  int64_t adjoint_offset[kMaxLevels + 1] = {};
};

// Elements of scratch the forward needs (the pyramid 1/3 of level 0, twice with a gradient).
inline int64_t scratch_layout(const Geometry& g, int64_t planes, bool grad, int64_t* offset, int64_t* adjoint_offset) {
  int64_t total = 0;
  offset[0] = adjoint_offset[0] = 0;  // level 0 lives in the user's tensors
  for (int64_t l = 1; l <= g.levels; ++l) {
    offset[l] = total;
    total += planes * g.H[l] * g.W[l];
  }
  for (int64_t l = 1; l <= g.levels; ++l) {
    adjoint_offset[l] = total;
    if (grad) total += planes * g.H[l] * g.W[l];
  }
  return total;
}

}  // namespace lap
// The backends' entry points, called by laplacian_host.cpp: the CPU kernel
// (cpu/laplacian_cpu.cpp) and, below, the CUDA launch (cuda/laplacian_kernel.cu).
template <typename acc_t>
void laplacian_cpu(const lap::Args<acc_t>& args);

#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
constexpr int kLapThreads = 256;  // threads per block
// Level-0 tiles: kLapTileRows x kLapTileCols samples of x_1 (twice that of
// level 0) per block. 16 x 32 keeps the gradient kernel's shared memory under
// the 48 KB static limit in float64 (41 KB) with 35% of halo recomputed.
constexpr int kLapTileRows = 16, kLapTileCols = 32;
// Coarse-level work items: one block of kLapThreads samples each.
// The first kLapCounters acc_t of the small buffer hold the unsigned counters
// (the work queue, one per phase, the last one the gradient kernel's ticket).
constexpr int kLapCounters = 64;
constexpr int kLapMaxPhases = 2 * lap::kMaxLevels + 1;

enum LapPhase : int { kLapCoef = 0, kLapDown = 1, kLapSeeds = 2, kLapAdjoint = 3 };

// Where the launch keeps its small device arrays, in acc_t elements of one
// buffer: the counters, the level coefficients, the per-tile weight sums
// (level-major), the per-tile level-0 terms, the per-item terms of levels
// 1..levels-1; and the coarse kernel's phases, in the order they run.
struct LapCudaLayout {
  int64_t tiles_x = 0, tiles_y = 0, tiles = 0;  // level-0 tiles: per plane across, down, in all
  int64_t coef = 0;
  int64_t weight_levels = 0, weight_slots = 0;  // sums of level l at weight_slots + l * tiles
  int64_t term0_slots = 0;
  int64_t term_slots[lap::kMaxLevels] = {}, term_items[lap::kMaxLevels] = {};  // levels >= 1
  int phases = 0;
  int phase_kind[kLapMaxPhases] = {}, phase_level[kLapMaxPhases] = {};
  int64_t phase_first[kLapMaxPhases] = {}, phase_items[kLapMaxPhases] = {};
  int64_t seed_first[lap::kMaxLevels] = {};  // the seeds phase's items of level l start here (within the phase)
  int64_t items = 0;
  int64_t total = 0;
};

ML_INLINE int64_t lap_blocks(int64_t n) { return (n + kLapThreads - 1) / kLapThreads; }

inline LapCudaLayout lap_cuda_layout(const lap::Geometry& g, int64_t planes, int64_t weight_mode, bool grad) {
  LapCudaLayout L;
  const int64_t n = g.levels;
  L.tiles_y = (g.H[1] + kLapTileRows - 1) / kLapTileRows;
  L.tiles_x = (g.W[1] + kLapTileCols - 1) / kLapTileCols;
  L.tiles = planes * L.tiles_y * L.tiles_x;
  int64_t total = kLapCounters;
  L.coef = total;
  total += lap::kMaxLevels;
  L.weight_levels = weight_mode == lap::kWeightAfter ? n : (weight_mode == lap::kMaskBefore ? 1 : 0);
  L.weight_slots = total;
  total += L.weight_levels * L.tiles;
  L.term0_slots = total;
  total += L.tiles;
  for (int64_t l = 1; l < n; ++l) {
    L.term_items[l] = lap_blocks(planes * g.h[l] * g.w[l]);
    L.term_slots[l] = total;
    total += L.term_items[l];
  }
  L.total = total;
  // The coarse kernel's phases: each waits for the one before it.
  auto phase = [&](int kind, int level, int64_t items) {
    L.phase_kind[L.phases] = kind;
    L.phase_level[L.phases] = level;
    L.phase_first[L.phases] = L.items;
    L.phase_items[L.phases] = items;
    L.items += items;
    ++L.phases;
  };
  phase(kLapCoef, 0, 1);
  for (int64_t l = 1; l < n; ++l) phase(kLapDown, int(l), lap_blocks(planes * g.H[l + 1] * g.W[l + 1]));
  if (n > 1) {
    int64_t seeds = 0;
    for (int64_t l = 1; l < n; ++l) {
      L.seed_first[l] = seeds;
      seeds += L.term_items[l];
    }
    phase(kLapSeeds, 0, seeds);
    if (grad) {
      for (int64_t l = n; l >= 1; --l) phase(kLapAdjoint, int(l), lap_blocks(planes * g.H[l] * g.W[l]));
    }
  }
  return L;
}

// Enqueues the whole forward (loss, level losses and, when args.grad is set,
// the gradient) on `stream`: three kernel launches whatever the level count;
// `partials` holds layout.total acc_t, uninitialised.
template <typename acc_t>
cudaError_t launch_laplacian_forward(const lap::Args<acc_t>& args, const LapCudaLayout& layout, acc_t* partials,
                                     cudaStream_t stream);
#endif

}  // namespace mattingloss
