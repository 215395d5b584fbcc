// CUDA backend of the Laplacian-pyramid loss: simple kernels, one thread per
// output sample, each evaluating the 2D operation of ../laplacian.h as its
// row tap list times its column tap list (the CPU's row-then-column order).
// Per level, on the current stream:
//   down        x_{l+1}(a, b) = down(x_l)                        (x_0 = d, read from the inputs)
//   terms       block partial sums of |w L_l|                    (L computed per sample)
//   up^T        t_{l+1} = -up^T(s_l), s_l = coef_l w sign(w L_l) (recomputed per sample)
// then, coarsest first, adjoint: t_l += s_l + down^T(t_{l+1}); at level 0 the
// gradient (times the mask). The sums are per-block partials (cub::BlockReduce,
// fixed block size) summed by one block in a fixed order: no floating-point
// atomics, the same bits on every run and GPU. The level coefficients (which
// may depend on the weight sums) stay on the device.
#include <cub/block/block_reduce.cuh>

#include "../common/cuda_memory.cuh"
#include "../laplacian.h"
#include "laplacian_kernel.h"

namespace mattingloss {
namespace {

using lap::Args;
using lap::Taps;

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

// Sample (r, c) of x_l for one plane.
template <typename acc_t>
__device__ __forceinline__ acc_t x_at(const Args<acc_t>& a, int64_t level, int64_t plane, int64_t r, int64_t c) {
  if (level > 0) return a.scratch[a.offset[level] + (plane * a.geo.H[level] + r) * a.geo.W[level] + c];
  const int64_t i = (plane * a.geo.H[0] + r) * a.geo.W[0] + c;
  const acc_t m = a.weight_mode == lap::kMaskBefore ? load1<acc_t>(a.weight, i) : acc_t(1);
  return lap::level0_input(load1<acc_t>(a.pred, i), load1<acc_t>(a.gt, i), m, a.gt_scale);
}

// The weight of Laplacian sample (r, c) of level l (1 unless kWeightAfter).
template <typename acc_t>
__device__ __forceinline__ acc_t weight_at(const Args<acc_t>& a, int64_t level, int64_t plane, int64_t r, int64_t c) {
  if (a.weight_mode != lap::kWeightAfter) return acc_t(1);
  return load1<acc_t>(a.weight, (plane * a.geo.H[0] + (r << level)) * a.geo.W[0] + (c << level));
}

// L_l(r, c) = x_l(r, c) - up(x_{l+1})(r, c).
template <typename acc_t>
__device__ acc_t laplacian_at(const Args<acc_t>& a, int64_t level, int64_t plane, int64_t r, int64_t c) {
  const int64_t h = a.geo.h[level], w = a.geo.w[level], Hc = a.geo.H[level + 1], Wc = a.geo.W[level + 1];
  const acc_t* y = a.scratch + a.offset[level + 1] + plane * Hc * Wc;
  Taps<acc_t> rows, cols;
  lap::up_taps(r, h, a.padding, rows);
  lap::up_taps(c, w, a.padding, cols);
  acc_t up = 0;
  for (int j = 0; j < cols.count; ++j) {
    const int64_t cc = cols.index[j];
    up += cols.weight[j] * lap::apply_taps(rows, [&](int64_t rr) { return y[rr * Wc + cc]; });
  }
  return x_at(a, level, plane, r, c) - up;
}

template <typename acc_t>
__device__ __forceinline__ acc_t seed_at(const Args<acc_t>& a, const acc_t* coef, int64_t level, int64_t plane,
                                         int64_t r, int64_t c) {
  return lap::l1_seed(laplacian_at(a, level, plane, r, c), weight_at(a, level, plane, r, c), coef[level]);
}

template <typename acc_t>
__device__ __forceinline__ void block_partial(acc_t v, acc_t* out) {
  using BlockReduce = cub::BlockReduce<acc_t, kLapThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const acc_t s = BlockReduce(temp).Sum(v);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// Sum of the weights level l uses (kWeightAfter), or of the whole mask (kMaskBefore).
template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads)
    weight_partials_kernel(const Args<acc_t> a, int64_t level, int64_t count, acc_t* out) {
  const int64_t i = int64_t(blockIdx.x) * kLapThreads + threadIdx.x;
  acc_t v = 0;
  if (i < count) {
    if (a.weight_mode == lap::kMaskBefore) {
      v = load1<acc_t>(a.weight, i);
    } else {
      const int64_t w = a.geo.w[level], h = a.geo.h[level];
      const int64_t c = i % w, r = (i / w) % h, plane = i / (w * h);
      v = weight_at(a, level, plane, r, c);
    }
  }
  block_partial(v, out);
}

// Sums count partials in a fixed order (thread t: t, t + kLapThreads, ...; then the block tree).
template <typename acc_t>
__device__ acc_t ordered_sum(const acc_t* partials, int64_t count) {
  using BlockReduce = cub::BlockReduce<acc_t, kLapThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ acc_t result;
  acc_t v = 0;
  for (int64_t i = threadIdx.x; i < count; i += kLapThreads) v += partials[i];
  const acc_t s = BlockReduce(temp).Sum(v);
  if (threadIdx.x == 0) result = s;
  __syncthreads();
  const acc_t out = result;
  __syncthreads();  // before temp and result are reused
  return out;
}

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads) coefficients_kernel(const Args<acc_t> a, const LapCudaLayout L,
                                                                   acc_t* partials) {
  acc_t weight_sum[lap::kMaxLevels] = {};
  for (int64_t l = 0; l < L.weight_levels; ++l)
    weight_sum[l] = ordered_sum(partials + L.weight_offset[l], lap_blocks(L.weight_count[l]));
  if (threadIdx.x == 0) {
    lap::level_coefficients(a.geo, a.planes, a.weight_mode, a.level_weights, a.mask_numer, weight_sum,
                            partials + L.coef);
  }
}

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads) down_kernel(const Args<acc_t> a, int64_t level) {
  const int64_t Hc = a.geo.H[level + 1], Wc = a.geo.W[level + 1];
  const int64_t i = int64_t(blockIdx.x) * kLapThreads + threadIdx.x;
  if (i >= a.planes * Hc * Wc) return;
  const int64_t b = i % Wc, r = (i / Wc) % Hc, plane = i / (Wc * Hc);
  Taps<acc_t> rows, cols;
  lap::down_taps(r, a.geo.h[level], a.padding, rows);
  lap::down_taps(b, a.geo.w[level], a.padding, cols);
  acc_t y = 0;
  for (int j = 0; j < cols.count; ++j) {
    const int64_t c = cols.index[j];
    y += cols.weight[j] * lap::apply_taps(rows, [&](int64_t rr) { return x_at(a, level, plane, rr, c); });
  }
  a.scratch[a.offset[level + 1] + i] = y;
}

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads) terms_kernel(const Args<acc_t> a, int64_t level, acc_t* out) {
  const int64_t h = a.geo.h[level], w = a.geo.w[level];
  const int64_t i = int64_t(blockIdx.x) * kLapThreads + threadIdx.x;
  acc_t v = 0;
  if (i < a.planes * h * w) {
    const int64_t c = i % w, r = (i / w) % h, plane = i / (w * h);
    v = lap::l1_term(laplacian_at(a, level, plane, r, c), weight_at(a, level, plane, r, c));
  }
  block_partial(v, out);
}

template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads) loss_kernel(const Args<acc_t> a, const LapCudaLayout L,
                                                           acc_t* partials) {
  const acc_t* coef = partials + L.coef;
  acc_t loss = 0;
  for (int64_t l = 0; l < a.geo.levels; ++l) {
    const acc_t s = ordered_sum(partials + L.loss_offset[l], lap_blocks(L.loss_count[l]));
    if (threadIdx.x == 0) {
      a.level_losses[l] = coef[l] * s;
      loss += coef[l] * s;
    }
  }
  if (threadIdx.x == 0) *a.loss = loss;
}

// t_{l+1}(a, b) = -up^T(s_l)(a, b)
template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads) up_adjoint_kernel(const Args<acc_t> a, const acc_t* coef,
                                                                 int64_t level) {
  const int64_t Hc = a.geo.H[level + 1], Wc = a.geo.W[level + 1];
  const int64_t i = int64_t(blockIdx.x) * kLapThreads + threadIdx.x;
  if (i >= a.planes * Hc * Wc) return;
  const int64_t b = i % Wc, r = (i / Wc) % Hc, plane = i / (Wc * Hc);
  Taps<acc_t> rows, cols;
  lap::up_adjoint_taps(r, a.geo.h[level], a.padding, rows);
  lap::up_adjoint_taps(b, a.geo.w[level], a.padding, cols);
  acc_t q = 0;
  for (int j = 0; j < cols.count; ++j) {
    const int64_t c = cols.index[j];
    q += cols.weight[j] * lap::apply_taps(rows, [&](int64_t rr) { return seed_at(a, coef, level, plane, rr, c); });
  }
  a.scratch[a.adjoint_offset[level + 1] + i] = -q;
}

// t_l(r, c) (+)= s_l + down^T(t_{l+1}); level 0: the gradient.
template <typename acc_t>
__global__ void __launch_bounds__(kLapThreads) adjoint_kernel(const Args<acc_t> a, const acc_t* coef, int64_t level) {
  const int64_t H = a.geo.H[level], W = a.geo.W[level], h = a.geo.h[level], w = a.geo.w[level];
  const int64_t i = int64_t(blockIdx.x) * kLapThreads + threadIdx.x;
  if (i >= a.planes * H * W) return;
  const int64_t c = i % W, r = (i / W) % H, plane = i / (W * H);
  acc_t t = 0;
  if (r < h && c < w) {
    const int64_t Hc = a.geo.H[level + 1], Wc = a.geo.W[level + 1];
    const acc_t* tc = a.scratch + a.adjoint_offset[level + 1] + plane * Hc * Wc;
    Taps<acc_t> rows, cols;
    lap::down_adjoint_taps(r, h, a.padding, rows);
    lap::down_adjoint_taps(c, w, a.padding, cols);
    acc_t down_t = 0;
    for (int j = 0; j < cols.count; ++j) {
      const int64_t cc = cols.index[j];
      down_t += cols.weight[j] * lap::apply_taps(rows, [&](int64_t rr) { return tc[rr * Wc + cc]; });
    }
    t = seed_at(a, coef, level, plane, r, c) + down_t;
  }
  if (level > 0) {
    a.scratch[a.adjoint_offset[level] + i] += t;
  } else {
    if (a.weight_mode == lap::kMaskBefore) t *= load1<acc_t>(a.weight, i);
    if (a.has_base) t = lap::with_base(t, a.own_coef, load1<acc_t>(a.base, i));
    store1(a.grad, i, t);
  }
}

}  // namespace

template <typename acc_t>
cudaError_t launch_laplacian_forward(const Args<acc_t>& a, const LapCudaLayout& L, acc_t* partials,
                                     cudaStream_t stream) {
  auto grid = [](int64_t n) { return dim3(static_cast<unsigned int>(lap_blocks(n))); };
  if (lap_blocks(a.planes * a.geo.H[0] * a.geo.W[0]) > 0x7fffffff) return cudaErrorInvalidConfiguration;
  for (int64_t l = 0; l < L.weight_levels; ++l) {
    weight_partials_kernel<<<grid(L.weight_count[l]), kLapThreads, 0, stream>>>(a, l, L.weight_count[l],
                                                                                partials + L.weight_offset[l]);
  }
  coefficients_kernel<<<1, kLapThreads, 0, stream>>>(a, L, partials);
  const acc_t* coef = partials + L.coef;
  const int64_t n = a.geo.levels;
  for (int64_t l = 0; l < n; ++l) {
    down_kernel<<<grid(a.planes * a.geo.H[l + 1] * a.geo.W[l + 1]), kLapThreads, 0, stream>>>(a, l);
  }
  for (int64_t l = 0; l < n; ++l) {
    terms_kernel<<<grid(L.loss_count[l]), kLapThreads, 0, stream>>>(a, l, partials + L.loss_offset[l]);
  }
  loss_kernel<<<1, kLapThreads, 0, stream>>>(a, L, partials);
  if (a.grad.data) {
    for (int64_t l = 0; l < n; ++l) {
      up_adjoint_kernel<<<grid(a.planes * a.geo.H[l + 1] * a.geo.W[l + 1]), kLapThreads, 0, stream>>>(a, coef, l);
    }
    for (int64_t l = n - 1; l >= 0; --l) {
      adjoint_kernel<<<grid(a.planes * a.geo.H[l] * a.geo.W[l]), kLapThreads, 0, stream>>>(a, coef, l);
    }
  }
  return cudaGetLastError();
}

template cudaError_t launch_laplacian_forward<float>(const Args<float>&, const LapCudaLayout&, float*, cudaStream_t);
template cudaError_t launch_laplacian_forward<double>(const Args<double>&, const LapCudaLayout&, double*,
                                                      cudaStream_t);

}  // namespace mattingloss
