// CUDA backend of the Laplacian-pyramid loss: three launches whatever the
// level count, all on the current stream, no zero-fill, no host sync.
//
//   fine    one block per level-0 tile (kLapTileRows x kLapTileCols samples of
//           x_1): the tile of d = x_0 and its halo in shared memory, x_1 =
//           down(x_0) made from it (rows, then columns), the tile's weight
//           sums (per level, or the mask's); block 0 zeroes the counters.
//   coarse  everything of levels >= 1, one block per work item of 256
//           samples, in phases: the coefficients (from the weight sums);
//           x_{l+1} = down(x_l), l = 1..n-1; the seeds s_l = coef_l w sign(w L_l)
//           and loss terms of levels 1..n-1; with a gradient, from the
//           coarsest level, t_l = -up^T(s_{l-1}) + s_l + down^T(t_{l+1})
//           (level 1 without its up^T(s_0) part, which needs level 0).
//   grad    one block per level-0 tile again: x_1 and the halo'd x_0 give
//           L_0, its terms and seeds s_0; up^T(s_0) completes t_1; the
//           gradient s_0 + down^T(t_1) (times the mask, plus the folded
//           base) is written; the last block (the ticket) sums every
//           level's terms in a fixed order into the loss.
//
// Why this split: the levels form a chain (each coarse level needs the whole
// finer one, the adjoint runs back down), so a grid-wide barrier per level is
// unavoidable; separate launches cost ~22 for 5 levels. The coarse levels
// are small (all of them 1/3 of level 1, level 1 a quarter of level 0), so
// they run in one launch as a work queue: a block takes the next item from
// an atomic counter and, before working, waits until every item of the
// previous phase is done. Items are handed out in order, so the items a
// block waits for were taken by blocks already running, which wait only on
// items before theirs: no deadlock, whatever the number of SMs, with no
// cooperative launch. Level 0, where the bytes are, is tiled in shared memory
// with the closed forms of ../laplacian.h inside and the tap lists (evaluated
// as streams, in registers) at the borders, each 2D operation in the CPU's
// order (fine->coarse: rows then columns; coarse->fine: columns then rows).
//
// Determinism: every partial sum belongs to a tile or an item (not to a block
// or SM), is made by cub::BlockReduce in a fixed order and summed in index
// order by the last block: the same bits on every run and GPU, no
// floating-point atomics. Data another block wrote in the same launch is read
// through L2 (__ldcg) after the acquire on its phase counter.
#include <cub/block/block_reduce.cuh>

#include "../common/cuda_memory.cuh"
#include "../common/cuda_reduce.cuh"
#include "../laplacian.h"

namespace mattingloss {
namespace {

using lap::Args;

constexpr int CY = kLapTileRows, CX = kLapTileCols;

template <typename acc_t>
__device__ __forceinline__ acc_t load1(const Input& in, int64_t i) {
  switch (in.dtype) {
    case Dtype::kUInt8: return gpu::to_acc<acc_t>(static_cast<const uint8_t*>(in.data)[i]);
    case Dtype::kFloat: return gpu::to_acc<acc_t>(static_cast<const float*>(in.data)[i]);
    case Dtype::kDouble: return gpu::to_acc<acc_t>(static_cast<const double*>(in.data)[i]);
    case Dtype::kHalf: return gpu::to_acc<acc_t>(static_cast<const __half*>(in.data)[i]);
    case Dtype::kBFloat16: return gpu::to_acc<acc_t>(static_cast<const __nv_bfloat16*>(in.data)[i]);
  }
  return acc_t(0);
}

template <typename acc_t>
__device__ __forceinline__ void store1(const Output& out, int64_t i, acc_t v) {
  switch (out.dtype) {
    case Dtype::kFloat: static_cast<float*>(out.data)[i] = gpu::from_acc<float>(v); return;
    case Dtype::kDouble: static_cast<double*>(out.data)[i] = gpu::from_acc<double>(v); return;
    case Dtype::kHalf: static_cast<__half*>(out.data)[i] = gpu::from_acc<__half>(v); return;
    case Dtype::kBFloat16: static_cast<__nv_bfloat16*>(out.data)[i] = gpu::from_acc<__nv_bfloat16>(v); return;
    case Dtype::kUInt8: return;  // never a gradient dtype (checked on the host)
  }
}

// d at element i of the inputs (level 0).
template <typename acc_t>
__device__ __forceinline__ acc_t level0_at(const Args<acc_t>& a, int64_t i) {
  const acc_t m = a.weight_mode == lap::kMaskBefore ? load1<acc_t>(a.weight, i) : acc_t(1);
  return lap::level0_input(load1<acc_t>(a.pred, i), load1<acc_t>(a.gt, i), m, a.gt_scale);
}

// The weight of Laplacian sample (r, c) of level l (1 unless kWeightAfter).
template <typename acc_t>
__device__ __forceinline__ acc_t weight_at(const Args<acc_t>& a, int64_t level, int64_t plane, int64_t r, int64_t c) {
  if (a.weight_mode != lap::kWeightAfter) return acc_t(1);
  return load1<acc_t>(a.weight, (plane * a.geo.H[0] + (r << level)) * a.geo.W[0] + (c << level));
}

// 32-bit divisions (a 64-bit one is a subroutine call, and the registers it
// saves spill): the host checks that tiles and coarse levels count < 2^32.
__device__ __forceinline__ void tile_origin(const LapCudaLayout& L, int64_t& plane, int64_t& a0, int64_t& b0) {
  const unsigned int t = blockIdx.x, tx = static_cast<unsigned int>(L.tiles_x), ty = static_cast<unsigned int>(L.tiles_y);
  plane = t / (tx * ty);
  a0 = int64_t(t / tx % ty) * CY;
  b0 = int64_t(t % tx) * CX;
}

// Sample i of planes of H x W (i < 2^32).
__device__ __forceinline__ void split(int64_t i, int64_t H, int64_t W, int64_t& plane, int64_t& r, int64_t& c) {
  const unsigned int u = static_cast<unsigned int>(i), w = static_cast<unsigned int>(W);
  const unsigned int row = u / w;
  c = u - row * w;
  plane = row / static_cast<unsigned int>(H);
  r = row - static_cast<unsigned int>(plane) * static_cast<unsigned int>(H);
}

template <typename acc_t>
__device__ __forceinline__ unsigned int* counters(acc_t* partials) {
  return reinterpret_cast<unsigned int*>(partials);
}

// The block's sum of v, in thread 0 (others: unspecified). Ends with a
// barrier, so the next call may reuse the storage.
template <typename acc_t>
__device__ __forceinline__ acc_t block_sum(acc_t v) {
  using BlockReduce = cub::BlockReduce<acc_t, kLapThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const acc_t s = BlockReduce(temp).Sum(v);
  __syncthreads();
  return s;
}

// Sums count partials in a fixed order (thread t: t, t + kLapThreads, ...;
// then the block tree), read through L2; every thread gets the sum.
template <typename acc_t>
__device__ acc_t ordered_sum(const acc_t* partials, int64_t count) {
  __shared__ acc_t result;
  acc_t v = 0;
  for (int64_t i = threadIdx.x; i < count; i += kLapThreads) v += __ldcg(partials + i);
  const acc_t s = block_sum(v);
  if (threadIdx.x == 0) result = s;
  __syncthreads();
  const acc_t out = result;
  __syncthreads();  // before result is reused
  return out;
}

// ------------------------------------------------------------------ launch 1: x_1 and the weight sums

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads)
    fine_down_kernel(const __grid_constant__ Args<acc_t> a, const __grid_constant__ LapCudaLayout L,
                     acc_t* partials) {
  constexpr int XR = 2 * CY + 3, XC = 2 * CX + 3;  // fine rows/cols [2 a0 - 2, 2 a1 + 1)
  __shared__ acc_t x0[XR * XC];
  __shared__ acc_t v[CY * XC];  // down along the rows (columns of x0 kept)
  if (blockIdx.x == 0 && threadIdx.x < kLapCounters) counters(partials)[threadIdx.x] = 0u;
  const lap::Geometry& g = a.geo;
  const int64_t tile = blockIdx.x;
  int64_t plane, a0, b0;
  tile_origin(L, plane, a0, b0);
  const int64_t h = g.h[0], w = g.w[0], H = g.H[0], W = g.W[0], Hc = g.H[1], Wc = g.W[1];
  const int64_t r0 = 2 * a0 - 2, c0 = 2 * b0 - 2;
  const int64_t pad = a.padding;
  for (int i = threadIdx.x; i < XR * XC; i += kLapThreads) {
    const int64_t r = r0 + i / XC, c = c0 + i % XC;
    if (r < 0 || r >= h || c < 0 || c >= w) continue;  // never read (the taps stay inside the image)
    x0[i] = level0_at(a, (plane * H + r) * W + c);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < CY * XC; i += kLapThreads) {
    const int ar = i / XC, cc = i % XC;
    const int64_t row = a0 + ar, c = c0 + cc;
    if (row >= Hc || c < 0 || c >= w) continue;
    v[i] = lap::down_1d<acc_t>(row, h, pad, [&](int64_t r) { return x0[(r - r0) * XC + cc]; });
  }
  __syncthreads();
  acc_t* x1 = a.scratch + a.offset[1] + plane * Hc * Wc;
  for (int i = threadIdx.x; i < CY * CX; i += kLapThreads) {
    const int ar = i / CX;
    const int64_t row = a0 + ar, col = b0 + i % CX;
    if (row >= Hc || col >= Wc) continue;
    x1[row * Wc + col] = lap::down_1d<acc_t>(col, w, pad, [&](int64_t c) { return v[ar * XC + (c - c0)]; });
  }
  if (L.weight_levels == 0) return;  // uniform
  // The tile's own pixels: its rows and columns of level 0, the cropped last
  // row and column included (the mask's sum covers them).
  const int64_t R0 = 2 * a0, R1 = a0 + CY >= Hc ? H : 2 * (a0 + CY);
  const int64_t C0 = 2 * b0, C1 = b0 + CX >= Wc ? W : 2 * (b0 + CX);
  for (int64_t l = 0; l < L.weight_levels; ++l) {
    acc_t s = 0;
    if (a.weight_mode == lap::kMaskBefore) {
      const int cols = static_cast<int>(C1 - C0), n = static_cast<int>(R1 - R0) * cols;
      for (int i = threadIdx.x; i < n; i += kLapThreads)
        s += load1<acc_t>(a.weight, (plane * H + R0 + i / cols) * W + C0 + i % cols);
    } else {
      // level l reads w[r << l, c << l] for r < h_l, c < w_l: the lattice points of the tile
      const int64_t step = int64_t(1) << l;
      const int64_t rf = (R0 + step - 1) >> l, rl = min((R1 + step - 1) >> l, g.h[l]);  // lattice rows [rf, rl)
      const int64_t cf = (C0 + step - 1) >> l, cl = min((C1 + step - 1) >> l, g.w[l]);
      const int cols = static_cast<int>(cl - cf), n = rl > rf && cl > cf ? static_cast<int>(rl - rf) * cols : 0;
      for (int i = threadIdx.x; i < n; i += kLapThreads)
        s += weight_at(a, l, plane, rf + i / cols, cf + i % cols);
    }
    const acc_t t = block_sum(s);
    if (threadIdx.x == 0) partials[L.weight_slots + l * L.tiles + tile] = t;
  }
}

// ------------------------------------------------------------------ launch 2: levels >= 1

template <typename acc_t>
__device__ __forceinline__ void coarse_coef(const Args<acc_t>& a, const LapCudaLayout& L, acc_t* partials) {
  __shared__ acc_t weight_sum[lap::kMaxLevels];
  for (int64_t l = 0; l < L.weight_levels; ++l) {
    const acc_t s = ordered_sum(partials + L.weight_slots + l * L.tiles, L.tiles);
    if (threadIdx.x == 0) weight_sum[l] = s;
  }
  if (threadIdx.x == 0) {
    lap::level_coefficients(a.geo, a.planes, a.weight_mode, a.level_weights, a.mask_numer, weight_sum,
                            partials + L.coef);
  }
}

// x_{l+1} = down(x_l): rows then columns (the CPU's order), 25 reads.
template <typename acc_t>
__device__ __forceinline__ void coarse_down(const Args<acc_t>& a, int64_t l, int64_t i) {
  const lap::Geometry& g = a.geo;
  const int64_t Hc = g.H[l + 1], Wc = g.W[l + 1], W = g.W[l];
  if (i >= a.planes * Hc * Wc) return;
  int64_t plane, row, col;
  split(i, Hc, Wc, plane, row, col);
  const acc_t* x = a.scratch + a.offset[l] + plane * g.H[l] * W;
  a.scratch[a.offset[l + 1] + i] = lap::down_1d<acc_t>(col, g.w[l], a.padding, [&](int64_t c) {
    return lap::down_1d<acc_t>(row, g.h[l], a.padding, [&](int64_t r) { return __ldcg(x + r * W + c); });
  });
}

// L_l = x_l - up(x_{l+1}) (columns, then rows); the term |w L| returned, the
// seed stored in t_l's buffer.
template <typename acc_t>
__device__ __forceinline__ acc_t coarse_seed(const Args<acc_t>& a, const LapCudaLayout& L, const acc_t* partials,
                                             int64_t l, int64_t i) {
  const lap::Geometry& g = a.geo;
  const int64_t h = g.h[l], w = g.w[l], W = g.W[l], Hc = g.H[l + 1], Wc = g.W[l + 1];
  if (i >= a.planes * h * w) return acc_t(0);
  int64_t plane, r, c;
  split(i, h, w, plane, r, c);
  const acc_t* y = a.scratch + a.offset[l + 1] + plane * Hc * Wc;
  const acc_t up = lap::up_1d<acc_t>(r, h, a.padding, [&](int64_t ar) {
    return lap::up_1d<acc_t>(c, w, a.padding, [&](int64_t bc) { return __ldcg(y + ar * Wc + bc); });
  });
  const int64_t at = (plane * g.H[l] + r) * W + c;
  const acc_t L_ = __ldcg(a.scratch + a.offset[l] + at) - up;
  const acc_t wt = weight_at(a, l, plane, r, c);
  if (a.grad.data) a.scratch[a.adjoint_offset[l] + at] = lap::l1_seed(L_, wt, __ldcg(partials + L.coef + l));
  return lap::l1_term(L_, wt);
}

// t_l = -up^T(s_{l-1}) (l >= 2; rows then columns) + s_l + down^T(t_{l+1})
// (l < n, inside the cropped level; columns then rows), in t_l's buffer,
// which holds s_l: the CPU's sum, (-up^T) + (s + down^T).
template <typename acc_t>
__device__ __forceinline__ void coarse_adjoint(const Args<acc_t>& a, int64_t l, int64_t i) {
  const lap::Geometry& g = a.geo;
  const int64_t H = g.H[l], W = g.W[l];
  if (i >= a.planes * H * W) return;
  int64_t plane, row, col;
  split(i, H, W, plane, row, col);
  const int64_t pad = a.padding;
  acc_t* t = a.scratch + a.adjoint_offset[l];
  acc_t q = 0;
  if (l >= 2) {
    const int64_t Wf = g.W[l - 1];
    const acc_t* s = a.scratch + a.adjoint_offset[l - 1] + plane * g.H[l - 1] * Wf;
    q = -lap::up_adjoint_1d<acc_t>(col, g.w[l - 1], pad, [&](int64_t c) {
      return lap::up_adjoint_1d<acc_t>(row, g.h[l - 1], pad, [&](int64_t r) { return __ldcg(s + r * Wf + c); });
    });
  }
  acc_t out = q;
  if (l < g.levels && row < g.h[l] && col < g.w[l]) {
    const int64_t Wc = g.W[l + 1];
    const acc_t* tc = a.scratch + a.adjoint_offset[l + 1] + plane * g.H[l + 1] * Wc;
    const acc_t down_t = lap::down_adjoint_1d<acc_t>(row, g.h[l], pad, [&](int64_t ar) {
      return lap::down_adjoint_1d<acc_t>(col, g.w[l], pad, [&](int64_t bc) { return __ldcg(tc + ar * Wc + bc); });
    });
    const acc_t own = __ldcg(t + i) + down_t;  // s_l + down^T(t_{l+1})
    out = l >= 2 ? q + own : own;
  }
  t[i] = out;
}

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads)
    coarse_kernel(const __grid_constant__ Args<acc_t> a, const __grid_constant__ LapCudaLayout L, acc_t* partials) {
  unsigned int* count = counters(partials);
  __shared__ unsigned int taken;
  if (threadIdx.x == 0) taken = atomicAdd(count, 1u);
  __syncthreads();
  const int64_t item = taken;
  int p = 0;
  while (p + 1 < L.phases && item >= L.phase_first[p + 1]) ++p;
  if (p > 0) {  // wait for the whole previous phase (uniform)
    if (threadIdx.x == 0) {
      const unsigned int need = static_cast<unsigned int>(L.phase_items[p - 1]);
      // acquire: the previous phase's writes before our reads (they count after a release)
      cuda::atomic_ref<unsigned int, cuda::thread_scope_device> done(count[1 + (p - 1)]);
      while (done.load(cuda::memory_order_acquire) < need) __nanosleep(100);
    }
    __syncthreads();
  }
  const int64_t k = item - L.phase_first[p];
  const int64_t i = k * kLapThreads + threadIdx.x;
  const int level = L.phase_level[p];
  switch (L.phase_kind[p]) {
    case kLapCoef: coarse_coef(a, L, partials); break;
    case kLapDown: coarse_down(a, level, i); break;
    case kLapSeeds: {
      int64_t l = 1;
      while (l + 1 < a.geo.levels && k >= L.seed_first[l + 1]) ++l;
      const int64_t j = k - L.seed_first[l];
      const acc_t s = block_sum(coarse_seed(a, L, partials, l, j * kLapThreads + threadIdx.x));
      if (threadIdx.x == 0) partials[L.term_slots[l] + j] = s;
      break;
    }
    case kLapAdjoint: coarse_adjoint(a, level, i); break;
  }
  __threadfence();  // every thread's writes of this item visible device-wide...
  __syncthreads();   // ...before thread 0 counts the item, with release order
  if (threadIdx.x == 0) {
    cuda::atomic_ref<unsigned int, cuda::thread_scope_device>(count[1 + p]).fetch_add(1u, cuda::memory_order_release);
  }
}

// ------------------------------------------------------------------ launch 3: level 0, the gradient, the loss

// Shared-memory regions of one tile (rows x cols, with the first global index):
//   X1  x_1        coarse [a0-3, a1+3) x [b0-3, b1+3)   what up() reads for S0
//   UH  up along the rows of X1: coarse rows x fine cols [2b0-4, 2b1+3)
//   S0  s_0        fine [2a0-4, 2a1+3) x [2b0-4, 2b1+3) what up^T reads for T1
//   QV  up^T along the columns of S0: coarse rows [a0-1, a1+1) x fine cols
//   T1  t_1        coarse [a0-1, a1+1) x [b0-1, b1+1)  what down^T reads for the tile
//   DH  down^T along the rows of T1: coarse rows x the tile's fine cols [2b0, 2b1)
// (a1 = a0 + CY, b1 = b0 + CX; footprints in ../laplacian.h). T1 reuses X1's
// space, QV and DH UH's.
constexpr int X1R = CY + 6, X1C = CX + 6;
constexpr int FR = 2 * CY + 7, FC = 2 * CX + 7;  // S0, and the fine cols of UH and QV
constexpr int T1R = CY + 2, T1C = CX + 2;
constexpr int DHC = 2 * CX;
constexpr int kBufA = X1R * X1C > T1R * T1C ? X1R * X1C : T1R * T1C;
constexpr int kBufB = X1R * FC;  // >= T1R * FC >= T1R * DHC

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads)
    fine_grad_kernel(const __grid_constant__ Args<acc_t> a, const __grid_constant__ LapCudaLayout L,
                     acc_t* partials) {
  __shared__ acc_t bufA[kBufA];
  __shared__ acc_t bufB[kBufB];
  __shared__ acc_t s0[FR * FC];
  const lap::Geometry& g = a.geo;
  const int64_t tile = blockIdx.x;
  int64_t plane, a0, b0;
  tile_origin(L, plane, a0, b0);
  const int64_t h = g.h[0], w = g.w[0], H = g.H[0], W = g.W[0], Hc = g.H[1], Wc = g.W[1];
  const int64_t pad = a.padding;
  const int64_t xa = a0 - 3, xb = b0 - 3;          // X1's first coarse row, col
  const int64_t fr0 = 2 * a0 - 4, fc0 = 2 * b0 - 4;  // S0's first fine row, col (UH, QV: fc0)
  const int64_t ta = a0 - 1, tb = b0 - 1;          // T1's first coarse row, col (QV, DH: ta)
  const acc_t coef0 = partials[L.coef];
  const acc_t* x1 = a.scratch + a.offset[1] + plane * Hc * Wc;
  // X1
  for (int i = threadIdx.x; i < X1R * X1C; i += kLapThreads) {
    const int64_t r = xa + i / X1C, c = xb + i % X1C;
    if (r < 0 || r >= Hc || c < 0 || c >= Wc) continue;
    bufA[i] = x1[r * Wc + c];
  }
  __syncthreads();
  // UH = up along the rows of X1
  for (int i = threadIdx.x; i < X1R * FC; i += kLapThreads) {
    const int ar = i / FC;
    const int64_t r = xa + ar, c = fc0 + i % FC;
    if (r < 0 || r >= Hc || c < 0 || c >= w) continue;
    bufB[i] = lap::up_1d<acc_t>(c, w, pad, [&](int64_t b) { return bufA[ar * X1C + (b - xb)]; });
  }
  __syncthreads();
  // S0, and the tile's own terms
  acc_t term = 0;
  for (int i = threadIdx.x; i < FR * FC; i += kLapThreads) {
    const int fc = i % FC;
    const int64_t r = fr0 + i / FC, c = fc0 + fc;
    if (r < 0 || r >= h || c < 0 || c >= w) continue;
    const acc_t up = lap::up_1d<acc_t>(r, h, pad, [&](int64_t ar) { return bufB[(ar - xa) * FC + fc]; });
    const int64_t at = (plane * H + r) * W + c;
    const acc_t L_ = level0_at(a, at) - up;
    const acc_t wt = a.weight_mode == lap::kWeightAfter ? load1<acc_t>(a.weight, at) : acc_t(1);
    s0[i] = lap::l1_seed(L_, wt, coef0);
    if (r >= 2 * a0 && r < 2 * (a0 + CY) && c >= 2 * b0 && c < 2 * (b0 + CX)) term += lap::l1_term(L_, wt);
  }
  if (a.grad.data) {  // uniform
    __syncthreads();
    // QV = up^T along the columns of S0
    for (int i = threadIdx.x; i < T1R * FC; i += kLapThreads) {
      const int fc = i % FC;
      const int64_t r = ta + i / FC, c = fc0 + fc;
      if (r < 0 || r >= Hc || c < 0 || c >= w) continue;
      bufB[i] = lap::up_adjoint_1d<acc_t>(r, h, pad, [&](int64_t fr) { return s0[(fr - fr0) * FC + fc]; });
    }
    __syncthreads();
    // T1 = -up^T(s_0) + (s_1 + down^T(t_2)) from the coarse kernel (levels > 1)
    const acc_t* t1 = a.scratch + a.adjoint_offset[1] + plane * Hc * Wc;
    for (int i = threadIdx.x; i < T1R * T1C; i += kLapThreads) {
      const int ar = i / T1C;
      const int64_t r = ta + ar, c = tb + i % T1C;
      if (r < 0 || r >= Hc || c < 0 || c >= Wc) continue;
      const acc_t q = -lap::up_adjoint_1d<acc_t>(c, w, pad, [&](int64_t fc) { return bufB[ar * FC + (fc - fc0)]; });
      bufA[i] = g.levels > 1 ? q + t1[r * Wc + c] : q;
    }
    __syncthreads();
    // DH = down^T along the rows of T1, at the tile's own columns
    for (int i = threadIdx.x; i < T1R * DHC; i += kLapThreads) {
      const int ar = i / DHC;
      const int64_t r = ta + ar, c = 2 * b0 + i % DHC;
      if (r < 0 || r >= Hc || c >= w) continue;
      bufB[i] = lap::down_adjoint_1d<acc_t>(c, w, pad, [&](int64_t b) { return bufA[ar * T1C + (b - tb)]; });
    }
    __syncthreads();
    // The gradient at the tile's own pixels, the cropped last row/column included.
    const int64_t R0 = 2 * a0, R1 = a0 + CY >= Hc ? H : 2 * (a0 + CY);
    const int64_t C0 = 2 * b0, C1 = b0 + CX >= Wc ? W : 2 * (b0 + CX);
    const int cols = static_cast<int>(C1 - C0), n = static_cast<int>(R1 - R0) * cols;
    for (int i = threadIdx.x; i < n; i += kLapThreads) {
      const int64_t r = R0 + i / cols, c = C0 + i % cols;
      const int64_t at = (plane * H + r) * W + c;
      acc_t t = 0;
      if (r < h && c < w) {
        const int64_t fc = c - C0;
        const acc_t down_t =
            lap::down_adjoint_1d<acc_t>(r, h, pad, [&](int64_t ar) { return bufB[(ar - ta) * DHC + fc]; });
        t = s0[(r - fr0) * FC + (c - fc0)] + down_t;
        if (a.weight_mode == lap::kMaskBefore) t *= load1<acc_t>(a.weight, at);
      }
      if (a.has_base) t = lap::with_base(t, a.own_coef, load1<acc_t>(a.base, at));
      store1(a.grad, at, t);
    }
  }
  // The terms: one partial per tile; the last tile's block sums every level.
  gpu::reduce_block_then_last<kLapThreads>(
      term, gpu::Add(), counters(partials) + kLapCounters - 1,
      [&](acc_t s) { partials[L.term0_slots + tile] = s; },
      [&] {
        acc_t loss = 0;
        for (int64_t l = 0; l < g.levels; ++l) {
          const acc_t s = l == 0 ? ordered_sum(partials + L.term0_slots, L.tiles)
                                 : ordered_sum(partials + L.term_slots[l], L.term_items[l]);
          if (threadIdx.x == 0) {
            const acc_t level_loss = __ldcg(partials + L.coef + l) * s;
            a.level_losses[l] = level_loss;
            loss += level_loss;
          }
        }
        if (threadIdx.x == 0) *a.loss = loss;
      });
}

}  // namespace

template <typename acc_t>
cudaError_t launch_laplacian_forward(const Args<acc_t>& a, const LapCudaLayout& L, acc_t* partials,
                                     cudaStream_t stream) {
  // Grid sizes, and the 32-bit index arithmetic (split(), tile_origin()).
  if (L.tiles > 0x7fffffff || L.items > 0x7fffffff) return cudaErrorInvalidConfiguration;
  if (a.geo.levels > 1 && a.planes * a.geo.H[1] * a.geo.W[1] > 0xffffffffLL) return cudaErrorInvalidConfiguration;
  const dim3 tiles(static_cast<unsigned int>(L.tiles)), items(static_cast<unsigned int>(L.items));
  fine_down_kernel<<<tiles, kLapThreads, 0, stream>>>(a, L, partials);
  // Launch 1 zeroes the queue's counters: without it the coarse kernel would wait forever.
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  coarse_kernel<<<items, kLapThreads, 0, stream>>>(a, L, partials);
  fine_grad_kernel<<<tiles, kLapThreads, 0, stream>>>(a, L, partials);
  return cudaGetLastError();
}

template cudaError_t launch_laplacian_forward<float>(const Args<float>&, const LapCudaLayout&, float*, cudaStream_t);
template cudaError_t launch_laplacian_forward<double>(const Args<double>&, const LapCudaLayout&, double*,
                                                      cudaStream_t);

}  // namespace mattingloss
