// CUDA backend of alpha_sobel_forward: one block per kAgTileH x kAgTileW
// tile of one sample (the tiling depends on the shape alone). A block stages
// pred and the ground truth with a 2-pixel halo and the weight with a 1-pixel
// halo in shared memory (zeros outside the image: F.conv2d's padding), computes
// the Sobel derivatives ex/ey on the tile plus a 1-pixel halo, then the
// pointwise terms and the adjoint stencil for its own pixels, all through the
// shared math of ../alpha_sobel.h. Per-block partial sums go through
// cub::BlockReduce to scratch; the last block (one atomic ticket, as ATen's
// Reduce.cuh) sums them per sample in a fixed order. No floating-point
// atomics: bitwise reproducible. Also the small ops around it:
// alpha_sobel_weights (the weight sums alone, the same tiles and order) and
// alpha_sobel_compose (one thread: the losses from the sums).
#include <cub/block/block_reduce.cuh>

#include "../alpha_sobel.h"
#include "../common/cuda_memory.cuh"
#include "../common/cuda_reduce.cuh"
#include "alpha_sobel_kernel.h"

namespace mattingloss {
namespace {

template <typename acc_t>
struct Partial {
  acc_t v[kAgSums];
};

template <typename acc_t>
struct PartialSum {
  __device__ __forceinline__ Partial<acc_t> operator()(const Partial<acc_t>& a, const Partial<acc_t>& b) const {
    Partial<acc_t> r;
#pragma unroll
    for (int j = 0; j < kAgSums; ++j) r.v[j] = a.v[j] + b.v[j];
    return r;
  }
};

template <typename acc_t>
__device__ __forceinline__ acc_t load_one(const Input& in, int64_t offset) {
  acc_t v;
  gpu::load<1>(in, offset, 1, false, &v);
  return v;
}

// Run by the last block only: per-sample sums of the tiles' partials, each
// thread a fixed stride of the tiles, then cub::BlockReduce: a fixed order.
template <typename acc_t>
__device__ void finish(const AlphaGradArgs<acc_t>& a, int64_t tiles_per_sample, const acc_t* scratch) {
  using BlockReduce = cub::BlockReduce<Partial<acc_t>, kAgThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  for (int64_t s = 0; s < a.batch; ++s) {
    Partial<acc_t> mine{};
    for (int64_t t = threadIdx.x; t < tiles_per_sample; t += kAgThreads) {
      const acc_t* p = scratch + (s * tiles_per_sample + t) * kAgSums;
#pragma unroll
      for (int j = 0; j < kAgSums; ++j) mine.v[j] += __ldcg(p + j);  // L2: written by other blocks
    }
    const Partial<acc_t> total = BlockReduce(temp).Reduce(mine, PartialSum<acc_t>());
    if (threadIdx.x == 0) {
#pragma unroll
      for (int j = 0; j < kAgSums; ++j) a.sums[s * kAgSums + j] = total.v[j];
    }
    __syncthreads();  // before temp is reused
  }
}

// The block's partial sums to scratch; the last block to finish (one atomic
// ticket) sums them per sample (finish).
template <typename acc_t>
__device__ void reduce_tiles(const AlphaGradArgs<acc_t>& a, const Partial<acc_t>& mine, int64_t tiles_per_sample,
                             acc_t* scratch, unsigned int* counter) {
  gpu::reduce_block_then_last<kAgThreads>(
      mine, PartialSum<acc_t>(), counter,
      [&](const Partial<acc_t>& block_sum) {
#pragma unroll
        for (int j = 0; j < kAgSums; ++j) scratch[int64_t(blockIdx.x) * kAgSums + j] = block_sum.v[j];
      },
      [&] { finish(a, tiles_per_sample, scratch); });
}

template <int64_t kSobel, typename acc_t>
__global__ void __launch_bounds__(kAgThreads)
    alpha_sobel_kernel(const AlphaGradArgs<acc_t> a, const int64_t tiles_x, const int64_t tiles_per_sample,
                          acc_t* scratch, unsigned int* counter) {
  constexpr int PH = kAgTileH + 4, PW = kAgTileW + 4;  // pred / gt window: 2-pixel halo
  constexpr int EH = kAgTileH + 2, EW = kAgTileW + 2;  // weight and derivatives: 1-pixel halo
  __shared__ acc_t sp[PH][PW], sg[PH][PW];
  __shared__ acc_t sw[EH][EW], sex[EH][EW], sey[EH][EW];
  const int64_t H = a.height, W = a.width;
  const int64_t sample = blockIdx.x / tiles_per_sample;
  AlphaGradParams<acc_t> P = a.params;
  if (a.factors) scale_coefs_for_sample(P, a.factors, sample, a.batch);
  const int64_t t = blockIdx.x % tiles_per_sample;
  const int64_t y0 = (t / tiles_x) * kAgTileH, x0 = (t % tiles_x) * kAgTileW;
  const int64_t base = sample * H * W;
  const int64_t plane = a.batch * H * W;
  auto inside = [&](int64_t y, int64_t x) { return y >= 0 && y < H && x >= 0 && x < W; };

  for (int i = threadIdx.x; i < PH * PW; i += kAgThreads) {
    const int r = i / PW, c = i % PW;
    const int64_t y = y0 + r - 2, x = x0 + c - 2;
    acc_t pv = 0, gv = 0;
    if (inside(y, x)) {
      pv = load_one<acc_t>(a.pred, base + y * W + x);
      gv = ground_truth(P, load_one<acc_t>(a.gt, base + y * W + x));
    }
    sp[r][c] = pv;
    sg[r][c] = gv;
  }
  for (int i = threadIdx.x; i < EH * EW; i += kAgThreads) {
    const int r = i / EW, c = i % EW;
    const int64_t y = y0 + r - 1, x = x0 + c - 1;
    acc_t wv = 0;
    if (inside(y, x)) {
      const acc_t stored = a.mask.data ? load_one<acc_t>(a.mask, base + y * W + x) : acc_t(1);
      wv = region_weight(stored, P.mask_mode, P.mask_lo, P.mask_hi);
    }
    sw[r][c] = wv;
  }
  __syncthreads();

  Partial<acc_t> mine{};
  if (kSobel != kSobelNone) {
    // Derivatives at the tile and its 1-pixel halo (e at image (y0+r-1, x0+c-1),
    // whose 3x3 window is sp[r..r+2][c..c+2]); the sums only at own pixels.
    for (int i = threadIdx.x; i < EH * EW; i += kAgThreads) {
      const int r = i / EW, c = i % EW;
      acc_t ex = 0, ey = 0;
      if (inside(y0 + r - 1, x0 + c - 1)) {
        const acc_t gxp = sobel_x(sp[r][c], sp[r][c + 2], sp[r + 1][c], sp[r + 1][c + 2], sp[r + 2][c], sp[r + 2][c + 2]);
        const acc_t gyp = sobel_y(sp[r][c], sp[r][c + 1], sp[r][c + 2], sp[r + 2][c], sp[r + 2][c + 1], sp[r + 2][c + 2]);
        const acc_t gxg = sobel_x(sg[r][c], sg[r][c + 2], sg[r + 1][c], sg[r + 1][c + 2], sg[r + 2][c], sg[r + 2][c + 2]);
        const acc_t gyg = sobel_y(sg[r][c], sg[r][c + 1], sg[r][c + 2], sg[r + 2][c], sg[r + 2][c + 1], sg[r + 2][c + 2]);
        AlphaGradParams<acc_t> Q = P;
        Q.sobel = kSobel;
        SobelResult<acc_t> s;
        sobel_pixel(Q, gxp, gyp, gxg, gyg, sw[r][c], s);
        ex = s.ex;
        ey = s.ey;
        if (r >= 1 && r <= kAgTileH && c >= 1 && c <= kAgTileW) {
          mine.v[kSumSobelX] += s.sx;
          mine.v[kSumSobelY] += s.sy;
          mine.v[kSumPenaltyX] += s.px;
          mine.v[kSumPenaltyY] += s.py;
        }
      }
      sex[r][c] = ex;
      sey[r][c] = ey;
    }
    __syncthreads();
  }

  for (int i = threadIdx.x; i < kAgTileH * kAgTileW; i += kAgThreads) {
    const int r = i / kAgTileW, c = i % kAgTileW;
    const int64_t y = y0 + r, x = x0 + c;
    if (!inside(y, x)) continue;
    PointResult<acc_t> pt;
    alpha_pixel(P, sp[r + 2][c + 2], sg[r + 2][c + 2], sw[r + 1][c + 1], pt);
    mine.v[kSumUnknown] += pt.unknown;
    mine.v[kSumKnown] += pt.known;
    mine.v[kSumWUnknown] += pt.w;
    mine.v[kSumWKnown] += pt.wk;
    if (a.values.data) gpu::store<1>(a.values, base + y * W + x, 1, false, &pt.value);
    if (!a.grad.data) continue;
    acc_t adj = 0;
    if (kSobel != kSobelNone) {
      adj = sobel_adjoint(sex[r][c], sex[r][c + 2], sex[r + 1][c], sex[r + 1][c + 2], sex[r + 2][c], sex[r + 2][c + 2],
                          sey[r][c], sey[r][c + 1], sey[r][c + 2], sey[r + 2][c], sey[r + 2][c + 1], sey[r + 2][c + 2]);
    }
#pragma unroll  // constant indices keep pt.grad in registers
    for (int g = 0; g < kMaxGroups; ++g) {
      if (g < a.groups) {
        const acc_t value = pt.grad[g] + (P.group[2] == g ? adj : acc_t(0));
        gpu::store<1>(a.grad, g * plane + base + y * W + x, 1, false, &value);
      }
    }
  }

  reduce_tiles(a, mine, tiles_per_sample, scratch, counter);
}

// alpha_sobel_weights: the same tiles, each thread the same pixels in the
// same order as the forward's pointwise loop, the same reduction: the weight
// sums bitwise the forward's.
template <typename acc_t>
__global__ void __launch_bounds__(kAgThreads)
    alpha_weights_kernel(const AlphaGradArgs<acc_t> a, const int64_t tiles_x, const int64_t tiles_per_sample,
                         acc_t* scratch, unsigned int* counter) {
  const AlphaGradParams<acc_t>& P = a.params;
  const int64_t H = a.height, W = a.width;
  const int64_t sample = blockIdx.x / tiles_per_sample;
  const int64_t t = blockIdx.x % tiles_per_sample;
  const int64_t y0 = (t / tiles_x) * kAgTileH, x0 = (t % tiles_x) * kAgTileW;
  Partial<acc_t> mine{};
  for (int i = threadIdx.x; i < kAgTileH * kAgTileW; i += kAgThreads) {
    const int64_t y = y0 + i / kAgTileW, x = x0 + i % kAgTileW;
    if (y >= H || x >= W) continue;
    const acc_t stored = a.mask.data ? load_one<acc_t>(a.mask, sample * H * W + y * W + x) : acc_t(1);
    const acc_t w = region_weight(stored, P.mask_mode, P.mask_lo, P.mask_hi);
    mine.v[kSumWUnknown] += w;
    mine.v[kSumWKnown] += known_weight(w);
  }
  reduce_tiles(a, mine, tiles_per_sample, scratch, counter);
}

}  // namespace

namespace {

// Both kernels' grid: one block per tile of one sample.
struct TileGrid {
  int64_t tiles_x, tiles_per_sample, blocks;
  explicit TileGrid(int64_t batch, int64_t height, int64_t width)
      : tiles_x((width + kAgTileW - 1) / kAgTileW),
        tiles_per_sample(alpha_sobel_tiles(height, width)),
        blocks(batch * tiles_per_sample) {}
  bool fits() const { return blocks <= 0x7fffffff; }  // > 2^40 pixels: cannot fit in memory anyway
};

}  // namespace

template <typename acc_t>
cudaError_t launch_alpha_sobel_forward(const AlphaGradArgs<acc_t>& a, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream) {
  const TileGrid t(a.batch, a.height, a.width);
  if (!t.fits()) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned int>(t.blocks));
  const int64_t tiles_x = t.tiles_x, tiles_per_sample = t.tiles_per_sample;
  switch (a.params.sobel) {
    case kSobelNone:
      alpha_sobel_kernel<kSobelNone><<<grid, kAgThreads, 0, stream>>>(a, tiles_x, tiles_per_sample, scratch, counter);
      break;
    case kSobelDiff:
      alpha_sobel_kernel<kSobelDiff><<<grid, kAgThreads, 0, stream>>>(a, tiles_x, tiles_per_sample, scratch, counter);
      break;
    default:
      alpha_sobel_kernel<kSobelMagnitude>
          <<<grid, kAgThreads, 0, stream>>>(a, tiles_x, tiles_per_sample, scratch, counter);
      break;
  }
  return cudaGetLastError();
}

template <typename acc_t>
cudaError_t launch_alpha_sobel_weights(const AlphaGradArgs<acc_t>& a, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream) {
  const TileGrid t(a.batch, a.height, a.width);
  if (!t.fits()) return cudaErrorInvalidConfiguration;
  alpha_weights_kernel<<<static_cast<unsigned int>(t.blocks), kAgThreads, 0, stream>>>(a, t.tiles_x,
                                                                                     t.tiles_per_sample, scratch,
                                                                                     counter);
  return cudaGetLastError();
}

namespace {

template <typename acc_t>
__global__ void compose_kernel(const AlphaComposeParams<acc_t> params, const acc_t* sums, acc_t* total,
                               acc_t* components, acc_t* factors) {
  compose_alpha_losses(params, sums, total, components, factors);
}

}  // namespace

template <typename acc_t>
cudaError_t launch_alpha_sobel_compose(const AlphaComposeParams<acc_t>& params, const acc_t* sums, acc_t* total,
                                          acc_t* components, acc_t* factors, cudaStream_t stream) {
  compose_kernel<<<1, 1, 0, stream>>>(params, sums, total, components, factors);
  return cudaGetLastError();
}

template cudaError_t launch_alpha_sobel_compose<float>(const AlphaComposeParams<float>&, const float*, float*,
                                                          float*, float*, cudaStream_t);
template cudaError_t launch_alpha_sobel_compose<double>(const AlphaComposeParams<double>&, const double*, double*,
                                                           double*, double*, cudaStream_t);
template cudaError_t launch_alpha_sobel_forward<float>(const AlphaGradArgs<float>&, float*, unsigned int*,
                                                          cudaStream_t);
template cudaError_t launch_alpha_sobel_forward<double>(const AlphaGradArgs<double>&, double*, unsigned int*,
                                                           cudaStream_t);
template cudaError_t launch_alpha_sobel_weights<float>(const AlphaGradArgs<float>&, float*, unsigned int*,
                                                          cudaStream_t);
template cudaError_t launch_alpha_sobel_weights<double>(const AlphaGradArgs<double>&, double*, unsigned int*,
                                                           cudaStream_t);

}  // namespace mattingloss
