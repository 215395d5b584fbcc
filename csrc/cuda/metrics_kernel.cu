// CUDA backend of matting_metrics: a fixed launch sequence, no host sync.
//   k_minmax   one block per sample: min/max of both images (cub::BlockReduce),
//              their normalisations (../metrics.h make_norm);
//   k_reached  per pixel: q (thresholds both alphas reach), level plane reset;
//   per threshold i = 1..10, over every sample's pixels at once:
//     k_init (each mask pixel under the first pixel of its run within its
//     warp), k_union (union-find with atomicMin links, Playne & Hawick 2018:
//     the root of a component ends as its first row-major pixel whatever the
//     order the threads ran in), k_compress, k_count (integer atomics, merged per
//     warp first: sizes, MATLAB's column-major tie keys, mask counts), k_best
//     (atomicMax of the packed (size, ~key): an integer max, the same in any
//     order), k_levels (the first threshold whose largest component misses
//     the pixel);
//   k_qmax     p3m only, one block per sample: the most thresholds reached (its
//              empty-threshold rule, ../metrics.h p3m_level);
//   k_rows     one block per (sample, row), grid-strided: SAD/MSE terms, the filter
//              computed directly (9 column passes of 9 taps per pixel, the CPU's
//              rounding order; p3m: 13 first passes of 13 taps, float32 between
//              the passes as scipy's), the connectivity term; cub::BlockReduce per row;
//   k_final    per sample: rows added in row order.
// Every float result is deterministic: integer atomics only, fixed-shape
// block reductions, ordered final sums.
#include <cub/block/block_reduce.cuh>

#include "../metrics.h"

namespace mattingloss {
namespace metrics {
namespace {

constexpr int kThreads = 256;
constexpr int kRowThreads = 128;

struct MinOp {
  __device__ __forceinline__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct MaxOp {
  __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};
struct IntMaxOp {
  __device__ __forceinline__ int operator()(int a, int b) const { return a > b ? a : b; }
};

inline int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 64 ? (b > 0 ? b : 1) : 65535 * 64);
}

__device__ __forceinline__ Image sample_of(const Image& im, int64_t offset) {
  Image s = im;
  s.data = static_cast<const char*>(im.data) + offset * element_bytes(im.dtype);
  return s;
}

__global__ void k_minmax(MetricsArgs A, Norm* norms) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int64_t b = blockIdx.x, N = A.height * A.width;
  const Image pred = sample_of(A.pred, b * N), gt = sample_of(A.gt, b * N);
  double lp = INFINITY, hp = -INFINITY, lg = INFINITY, hg = -INFINITY;
  for (int64_t k = threadIdx.x; k < N; k += blockDim.x) {
    const double a = value(pred, k), c = value(gt, k);
    lp = fmin(lp, a);
    hp = fmax(hp, a);
    lg = fmin(lg, c);
    hg = fmax(hg, c);
  }
  double r[4];
  const double in[4] = {lp, hp, lg, hg};
  for (int j = 0; j < 4; ++j) {
    r[j] = (j & 1) ? Reduce(tmp).Reduce(in[j], MaxOp()) : Reduce(tmp).Reduce(in[j], MinOp());
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    norms[2 * b] = make_norm(A.params.convention, r[0], r[1]);
    norms[2 * b + 1] = make_norm(A.params.convention, r[2], r[3]);
  }
}

__global__ void k_reached(MetricsArgs A, uint8_t* q, uint8_t* level) {
  const int64_t total = A.batch * A.height * A.width;
  const int64_t conv = A.params.convention;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    q[k] = reached_level(A.params, conn_alpha(conv, value(A.pred, k)), conn_alpha(conv, value(A.gt, k)));
    level[k] = kNoLevel;
  }
}

#define FOR_PIXELS(A)                                                                   \
  const int64_t N = (A).height * (A).width, total = (A).batch * N;                      \
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total;           \
       k += int64_t(gridDim.x) * blockDim.x)

// Each pixel of the mask starts under the first pixel of its run within its warp
// (32 consecutive pixels; a run also ends at a row's start): a valid forest (every
// parent an earlier pixel of the same component), whose runs k_union then need not
// link pixel by pixel. Linked one by one, a run of a whole row became a chain as
// long as the row, which every find through it walked (no path compression).
__global__ void k_init(MetricsArgs A, int i, const uint8_t* q, int32_t* parent, uint32_t* size, uint32_t* key,
                       unsigned long long* best, unsigned long long* masked) {
  const int64_t W = A.width, N = A.height * W, total = A.batch * N;
  const int lane = int(threadIdx.x & 31u);
  // k0 is the block's: every lane of a warp runs the same iterations, so the ballots
  // see whole warps
  for (int64_t k0 = blockIdx.x * int64_t(blockDim.x); k0 < total; k0 += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = k0 + threadIdx.x;
    const bool valid = k < total;
    const int64_t local = valid ? k % N : 0;
    const bool in = valid && q[k] >= i;
    const unsigned in_bits = __ballot_sync(0xFFFFFFFFu, in);
    const bool starts = in && (lane == 0 || local % W == 0 || ((in_bits >> (lane - 1)) & 1u) == 0);
    const unsigned start_bits = __ballot_sync(0xFFFFFFFFu, starts);
    if (!valid) continue;
    int32_t p = -1;
    if (in) {  // the last run start at or before this lane (lane 0 of a run is one)
      const int first = 31 - __clz(start_bits & (0xFFFFFFFFu >> (31 - lane)));
      p = int32_t(local - (lane - first));
    }
    parent[k] = p;
    size[k] = 0;
    key[k] = 0xFFFFFFFFu;
    if (local == 0) {
      best[k / N] = 0;
      masked[k / N] = 0;
    }
  }
}

__device__ __forceinline__ int32_t find_volatile(const int32_t* P, int32_t x) {
  const volatile int32_t* V = P;
  while (true) {
    const int32_t p = V[x];
    if (p == x) return x;
    x = p;
  }
}

// Links the components of a and b under the smaller root (retrying where
// another thread linked a root first).
__device__ void unite(int32_t* P, int32_t a, int32_t b) {
  while (true) {
    a = find_volatile(P, a);
    b = find_volatile(P, b);
    if (a == b) return;
    if (a > b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    const int32_t old = atomicMin(&P[b], a);
    if (old == b) return;
    b = old;
  }
}

__global__ void k_union(MetricsArgs A, int i, const uint8_t* q, int32_t* parent) {
  const int64_t W = A.width;
  FOR_PIXELS(A) {
    if (q[k] < i) continue;
    const int64_t local = k % N, x = local % W;
    int32_t* P = parent + (k - local);
    if (x > 0 && q[k - 1] >= i) unite(P, int32_t(local), int32_t(local - 1));
    if (local >= W && q[k - W] >= i) unite(P, int32_t(local), int32_t(local - W));
  }
}

__global__ void k_compress(MetricsArgs A, int i, const uint8_t* q, int32_t* parent) {
  FOR_PIXELS(A) {
    if (q[k] < i) continue;
    const int64_t local = k % N;
    int32_t* P = parent + (k - local);
    P[local] = find_volatile(P, int32_t(local));
  }
}

// The lanes of a warp that add to the same root (and to the same sample's mask
// count) are merged first, so that a large component costs one atomic per warp
// instead of one per pixel (atomics on one address serialise). Integer sums and
// minimums: the same result in any order.
__global__ void k_count(MetricsArgs A, int i, const uint8_t* q, const int32_t* parent, uint32_t* size,
                        uint32_t* key, unsigned long long* masked) {
  const int64_t W = A.width, H = A.height, N = H * W, total = A.batch * N;
  const bool matlab = A.params.convention == kDimMatlab;
  const int lane = int(threadIdx.x & 31u);
  // k0 is the block's: every lane of a warp runs the same iterations (kThreads is a
  // multiple of 32), so the ballot sees whole warps
  for (int64_t k0 = blockIdx.x * int64_t(blockDim.x); k0 < total; k0 += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = k0 + threadIdx.x;
    const bool in = k < total && q[k] >= i;
    const unsigned active = __ballot_sync(0xFFFFFFFFu, in);
    if (!in) continue;
    const int64_t local = k % N, base = k - local, cell = base + parent[k];
    const unsigned same_root = __match_any_sync(active, static_cast<unsigned long long>(cell));
    const unsigned same_sample = __match_any_sync(active, static_cast<unsigned long long>(base));
    const bool root_leader = lane == __ffs(same_root) - 1;
    if (matlab) {
      // the smallest column-major key among this root's lanes (each group shuffles
      // within itself: its own mask, the same trip count on each of its lanes)
      uint32_t t = tie_key(kDimMatlab, local / W, local % W, H, W);
      for (unsigned m = same_root; m != 0; m &= m - 1) t = min(t, __shfl_sync(same_root, t, __ffs(m) - 1));
      if (root_leader) atomicMin(&key[cell], t);
    }
    if (root_leader) atomicAdd(&size[cell], uint32_t(__popc(same_root)));
    if (lane == __ffs(same_sample) - 1) atomicAdd(&masked[k / N], static_cast<unsigned long long>(__popc(same_sample)));
  }
}

__global__ void k_best(MetricsArgs A, int i, const uint8_t* q, const int32_t* parent, const uint32_t* size,
                       const uint32_t* key, unsigned long long* best) {
  FOR_PIXELS(A) {
    if (q[k] < i) continue;
    const int64_t local = k % N;
    if (parent[k] != int32_t(local)) continue;
    const uint32_t kk = A.params.convention == kDimMatlab ? key[k] : uint32_t(local);
    atomicMax(&best[k / N], (unsigned long long)pack_best(size[k], kk));
  }
}

__global__ void k_levels(MetricsArgs A, int i, const uint8_t* q, const int32_t* parent,
                         const unsigned long long* best, const unsigned long long* masked, uint8_t* level) {
  const int64_t W = A.width, H = A.height;
  FOR_PIXELS(A) {
    const int64_t b = k / N, local = k % N, base = k - local;
    const uint64_t v = best[b];
    bool in;
    if (background_wins(A.params.convention, N - int64_t(masked[b]), v)) {
      in = q[k] < i;
    } else if (packed_size(v) == 0) {
      in = false;
    } else {
      const uint32_t key = packed_key(v);
      // MATLAB's key is a column-major pixel of the best component: its root is that pixel's parent.
      const int64_t pixel = A.params.convention == kDimMatlab ? int64_t(key % H) * W + key / H : int64_t(key);
      in = q[k] >= i && parent[k] == parent[base + pixel];
    }
    if (!in && level[k] == kNoLevel) level[k] = uint8_t(i - 1);
  }
}

__global__ void k_qmax(MetricsArgs A, const uint8_t* q, unsigned long long* qmax) {
  using Reduce = cub::BlockReduce<int, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int64_t b = blockIdx.x, N = A.height * A.width;
  int m = 0;
  for (int64_t k = threadIdx.x; k < N; k += blockDim.x) m = max(m, int(q[b * N + k]));
  const int r = Reduce(tmp).Reduce(m, IntMaxOp());
  if (threadIdx.x == 0) qmax[b] = (unsigned long long)r;
}

__global__ void k_rows(MetricsArgs A, const Norm* norms, uint8_t* level, const unsigned long long* qmax,
                       double* rows) {
  using Reduce = cub::BlockReduce<double, kRowThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const Params& P = A.params;
  const int64_t H = A.height, W = A.width, N = H * W;
  const bool p3m = P.convention == kP3m;
  // one block per (sample, row) r = b * H + y, grid-strided: a 1-D grid takes any batch
  // (gridDim.y would stop at 65535 samples); every thread of a block runs the same rows
  for (int64_t r = blockIdx.x; r < A.batch * H; r += gridDim.x) {
    const int64_t b = r / H, y = r % H;
    const Image pred = sample_of(A.pred, b * N), gt = sample_of(A.gt, b * N);
    const uint8_t* region = A.region + b * N;
    Norm np{}, ng{};
    if (A.gradient && !p3m) {
      np = norms[2 * b];
      ng = norms[2 * b + 1];
    }
    double acc[kSums] = {0, 0, 0, 0, 0, 0, 0};
    for (int64_t x = threadIdx.x; x < W; x += blockDim.x) {
      const int64_t k = y * W + x;
      const double a_p = value(pred, k), a_g = value(gt, k);
      const bool in = region[k] != 0;
      add_point_sums(P.convention, a_p, a_g, in, acc);
      if (A.gradient && in && p3m) {
        acc[kGrad] += double(p3m_gradient_at(P, pred, gt, y, x, H, W));
      } else if (A.gradient && in) {
        double sgp[kTaps], sdp[kTaps], sgg[kTaps], sdg[kTaps];
        for (int j = 0; j < kTaps; ++j) {
          int64_t xx = x + j - kHalf;
          xx = xx < 0 ? 0 : (xx > W - 1 ? W - 1 : xx);
          column_pass(P, np, pred, y, xx, H, W, sgp[j], sdp[j]);
          column_pass(P, ng, gt, y, xx, H, W, sgg[j], sdg[j]);
        }
        const double amp_p = magnitude(dot_anti(P.taps_d, sgp), dot_sym(P.taps_g, sdp));
        const double amp_g = magnitude(dot_anti(P.taps_d, sgg), dot_sym(P.taps_g, sdg));
        acc[kGrad] += gradient_term(P.convention, amp_p, amp_g);
      }
      if (A.connectivity) {
        const uint8_t raw = level[b * N + k];
        const uint8_t lv = p3m ? p3m_level(raw, uint8_t(qmax[b])) : (raw == kNoLevel ? uint8_t(kLevels - 1) : raw);
        if (lv != raw) level[b * N + k] = lv;
        if (in) acc[kConn] += conn_term(P, conn_alpha(P.convention, a_p), conn_alpha(P.convention, a_g), lv);
      }
    }
    for (int j = 0; j < kSums; ++j) {
      const double sum = Reduce(tmp).Sum(acc[j]);
      if (threadIdx.x == 0) rows[r * kSums + j] = sum;
      __syncthreads();
    }
  }
}

__global__ void k_final(MetricsArgs A, const double* rows) {
  const int64_t b = blockIdx.x, j = threadIdx.x;
  if (j >= kSums) return;
  double s = 0.0;
  for (int64_t y = 0; y < A.height; ++y) s += rows[(b * A.height + y) * kSums + j];
  A.sums[b * kSums + j] = s;
}

}  // namespace

void metrics_scratch_sizes(int64_t B, int64_t H, int64_t W, bool own_levels, bool connectivity,
                           int64_t bytes[kScratchBuffers]) {
  // without Connectivity the kernels touch neither the q/level planes nor the
  // union-find arrays (13 bytes a pixel)
  const int64_t n = connectivity ? B * H * W : 0, b = connectivity ? B : 0;
  bytes[0] = 2 * B * int64_t(sizeof(Norm));
  bytes[1] = n;
  bytes[2] = own_levels ? n : 0;
  bytes[3] = 4 * n;
  bytes[4] = 4 * n;
  bytes[5] = 4 * n;
  bytes[6] = 8 * b;
  bytes[7] = 8 * b;
  bytes[8] = 8 * B * H * kSums;
}

cudaError_t launch_matting_metrics(const MetricsArgs& A, const MetricsScratch& s, cudaStream_t stream) {
  const int64_t n = A.batch * A.height * A.width;
  const int blocks = blocks_for(n);
  if (A.gradient && A.params.convention != kP3m) k_minmax<<<int(A.batch), kThreads, 0, stream>>>(A, s.norms);
  if (A.connectivity) {
    k_reached<<<blocks, kThreads, 0, stream>>>(A, s.q, s.level);
    for (int i = 1; i < kLevels; ++i) {
      k_init<<<blocks, kThreads, 0, stream>>>(A, i, s.q, s.parent, s.size, s.key, s.best, s.masked);
      k_union<<<blocks, kThreads, 0, stream>>>(A, i, s.q, s.parent);
      k_compress<<<blocks, kThreads, 0, stream>>>(A, i, s.q, s.parent);
      k_count<<<blocks, kThreads, 0, stream>>>(A, i, s.q, s.parent, s.size, s.key, s.masked);
      k_best<<<blocks, kThreads, 0, stream>>>(A, i, s.q, s.parent, s.size, s.key, s.best);
      k_levels<<<blocks, kThreads, 0, stream>>>(A, i, s.q, s.parent, s.best, s.masked, s.level);
    }
    // masked is free again: p3m's qmax per sample
    if (A.params.convention == kP3m) k_qmax<<<int(A.batch), kThreads, 0, stream>>>(A, s.q, s.masked);
  }
  const int64_t rows = A.batch * A.height;
  k_rows<<<unsigned(rows < INT32_MAX ? rows : INT32_MAX), kRowThreads, 0, stream>>>(A, s.norms, s.level, s.masked,
                                                                                   s.rows);
  k_final<<<int(A.batch), 32, 0, stream>>>(A, s.rows);
  return cudaGetLastError();
}

}  // namespace metrics
}  // namespace mattingloss
