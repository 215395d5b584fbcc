// CUDA backend of temporal_loss_forward: one block per fixed-size chunk of one
// sample's pixels (kTemporalChunk, 4 per thread), so the partial sums never
// depend on the GPU's SM count. A thread walks its pixels' frames t = 0..T-1,
// keeping frame t-1's values in registers (../temporal.h): vector loads of the
// four inputs as stored, the shared math, vector stores of frame t-1's final
// gradients. The block partials and the last block's election are
// ../common/cuda_reduce.cuh's; that block adds the partials up in double in a
// fixed order and writes the terms and the total. No floating-point atomics.
#include <cub/block/block_reduce.cuh>
#include <type_traits>

#include "../common/cuda_memory.cuh"
#include "../common/cuda_reduce.cuh"
#include "../temporal.h"

namespace mattingloss {
namespace {

constexpr int kVec = kTemporalPixelsPerThread;

// Channel ch of frame t (ch 0: alpha, a (B,T,1,H,W) tensor; 1..3: the
// foreground's channels, (B,T,3,H,W)), at this thread's first pixel: 64-bit.
struct Offsets {
  int64_t sample, frames, pixels, first;
  __device__ __forceinline__ int64_t operator()(int64_t t, int ch) const {
    return ch == 0 ? (sample * frames + t) * pixels + first
                   : ((sample * frames + t) * 3 + (ch - 1)) * pixels + first;
  }
};

template <typename acc_t>
struct ThreadState {
  Carry<acc_t> carry[4][kVec];  // per channel and pixel: frame t-1's values
  acc_t mask_prev[kVec] = {};   // RVM's foreground mask of frame t-1
  TemporalSums<acc_t> sums{0, 0, 0, 0};
};

template <bool kFirst, typename acc_t>
__device__ __forceinline__ void frame(const TemporalArgs<acc_t>& a, const Offsets& off, int64_t t, int n, bool vec,
                                      ThreadState<acc_t>& s) {
  const TemporalParams<acc_t>& P = a.params;
  acc_t pred[4][kVec], truth[4][kVec];
  if constexpr (std::is_same_v<acc_t, float>) {
    // The frame's eight raw loads first, then the conversions: a conversion
    // waits for its load, so one between two loads would serialise them.
    // Not for float64 (the reference path): at 228 registers already, its
    // raw registers spill (sm_90), so it converts input after input.
    gpu::Raw<kVec> rp[4], rt[4];
    rp[0] = gpu::load_raw<kVec>(a.pred_pha, off(t, 0), n, vec);
    rt[0] = gpu::load_raw<kVec>(a.true_pha, off(t, 0), n, vec);
#pragma unroll
    for (int ch = 1; ch < 4; ++ch) {
      rp[ch] = gpu::load_raw<kVec>(a.pred_fgr, off(t, ch), n, vec);
      rt[ch] = gpu::load_raw<kVec>(a.true_fgr, off(t, ch), n, vec);
    }
    gpu::convert<kVec>(a.pred_pha.dtype, rp[0], pred[0]);
    gpu::convert<kVec>(a.true_pha.dtype, rt[0], truth[0]);
#pragma unroll
    for (int ch = 1; ch < 4; ++ch) {
      gpu::convert<kVec>(a.pred_fgr.dtype, rp[ch], pred[ch]);
      gpu::convert<kVec>(a.true_fgr.dtype, rt[ch], truth[ch]);
    }
  } else {
    gpu::load<kVec>(a.pred_pha, off(t, 0), n, vec, pred[0]);
    gpu::load<kVec>(a.true_pha, off(t, 0), n, vec, truth[0]);
#pragma unroll
    for (int ch = 1; ch < 4; ++ch) {
      gpu::load<kVec>(a.pred_fgr, off(t, ch), n, vec, pred[ch]);
      gpu::load<kVec>(a.true_fgr, off(t, ch), n, vec, truth[ch]);
    }
  }
  acc_t grad[4][kVec];
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    const acc_t y = scaled(truth[0][i], P.pha_scale);
    const Step<acc_t> sp = temporal_step<kFirst>(pred[0][i], y, P.k_pha_l1, P.k_pha_coh, s.carry[0][i]);
    grad[0][i] = sp.grad_prev;
    const acc_t m = fgr_mask(y);
    acc_t l1 = 0, coh = 0;
#pragma unroll
    for (int ch = 1; ch < 4; ++ch) {
      const Step<acc_t> sf = temporal_step<kFirst>(pred[ch][i] * m, scaled(truth[ch][i], P.fgr_scale) * m,
                                                   P.k_fgr_l1, P.k_fgr_coh, s.carry[ch][i]);
      l1 += sf.l1;
      coh += sf.coh;
      grad[ch][i] = sf.grad_prev * s.mask_prev[i];  // d(x)/d(raw pred) = the mask of that frame
    }
    s.mask_prev[i] = m;
    if (i < n) s.sums = s.sums + TemporalSums<acc_t>{sp.l1, sp.coh, l1, coh};
  }
  if (!kFirst) {
    if (a.grad_pha.data) gpu::store<kVec>(a.grad_pha, off(t - 1, 0), n, vec, grad[0]);
    if (a.grad_fgr.data) {
#pragma unroll
      for (int ch = 1; ch < 4; ++ch) gpu::store<kVec>(a.grad_fgr, off(t - 1, ch), n, vec, grad[ch]);
    }
  }
}

// Run by the last block only: the partials in a fixed order (thread j takes
// j, j + kTemporalThreads, ... in double), a cub::BlockReduce, the finalize.
template <typename acc_t>
__device__ void finish(const TemporalArgs<acc_t>& a, int64_t blocks, const TemporalSums<acc_t>* scratch) {
  using BlockReduce = cub::BlockReduce<TemporalSums<double>, kTemporalThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  TemporalSums<double> v{0, 0, 0, 0};
  for (int64_t j = threadIdx.x; j < blocks; j += kTemporalThreads) {
    const acc_t* p = reinterpret_cast<const acc_t*>(scratch + j);  // L2 loads: other blocks wrote them
    v = v + TemporalSums<double>{double(__ldcg(p)), double(__ldcg(p + 1)), double(__ldcg(p + 2)),
                                 double(__ldcg(p + 3))};
  }
  const TemporalSums<double> total = BlockReduce(temp).Reduce(v, gpu::Add());
  if (threadIdx.x == 0) temporal_finalize(a, total);
}

template <typename acc_t>
__global__ void __launch_bounds__(kTemporalThreads)
    temporal_forward_kernel(const TemporalArgs<acc_t> a, const int64_t chunks_per_sample, const bool vec,
                            TemporalSums<acc_t>* scratch, unsigned int* counter) {
  const int64_t chunk = blockIdx.x;
  const Offsets off{chunk / chunks_per_sample, a.frames, a.pixels,
                    (chunk % chunks_per_sample) * kTemporalChunk + int64_t(threadIdx.x) * kVec};
  const int64_t left = a.pixels - off.first;
  const int n = left <= 0 ? 0 : (left < kVec ? int(left) : kVec);

  ThreadState<acc_t> s;
  if (n > 0) {
    const bool v = vec && n == kVec;
    frame<true>(a, off, 0, n, v, s);
    for (int64_t t = 1; t < a.frames; ++t) frame<false>(a, off, t, n, v, s);
    // The last frame's gradients are its pending ones (times its mask).
    acc_t grad[4][kVec];
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      grad[0][i] = s.carry[0][i].pending;
#pragma unroll
      for (int ch = 1; ch < 4; ++ch) grad[ch][i] = s.carry[ch][i].pending * s.mask_prev[i];
    }
    const int64_t last = a.frames - 1;
    if (a.grad_pha.data) gpu::store<kVec>(a.grad_pha, off(last, 0), n, v, grad[0]);
    if (a.grad_fgr.data) {
#pragma unroll
      for (int ch = 1; ch < 4; ++ch) gpu::store<kVec>(a.grad_fgr, off(last, ch), n, v, grad[ch]);
    }
  }

  gpu::reduce_block_then_last<kTemporalThreads>(
      s.sums, gpu::Add(), counter, [&](const TemporalSums<acc_t>& block_sum) { scratch[chunk] = block_sum; },
      [&] { finish(a, gridDim.x, scratch); });
}

}  // namespace

template <typename acc_t>
cudaError_t launch_temporal_forward(const TemporalArgs<acc_t>& a, TemporalSums<acc_t>* scratch,
                                    unsigned int* counter, cudaStream_t stream) {
  const int64_t chunks_per_sample = (a.pixels + kTemporalChunk - 1) / kTemporalChunk;
  // Vector accesses need every 4-pixel group to start on a 4-element boundary:
  // H*W % 4 == 0 (every frame and channel then starts on one) and aligned bases.
  bool vec = a.pixels % kVec == 0;
  for (const Input* in : {&a.pred_fgr, &a.pred_pha, &a.true_fgr, &a.true_pha})
    vec = vec && gpu::aligned(in->data, kVec * element_bytes(in->dtype));
  for (const Output* out : {&a.grad_fgr, &a.grad_pha})
    vec = vec && (!out->data || gpu::aligned(out->data, kVec * element_bytes(out->dtype)));
  const int64_t blocks = a.batch * chunks_per_sample;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;  // > 2^40 pixels: cannot fit in memory anyway
  temporal_forward_kernel<acc_t><<<dim3(static_cast<unsigned int>(blocks)), kTemporalThreads, 0, stream>>>(
      a, chunks_per_sample, vec, scratch, counter);
  return cudaGetLastError();
}

template cudaError_t launch_temporal_forward<float>(const TemporalArgs<float>&, TemporalSums<float>*,
                                                    unsigned int*, cudaStream_t);
template cudaError_t launch_temporal_forward<double>(const TemporalArgs<double>&, TemporalSums<double>*,
                                                     unsigned int*, cudaStream_t);

}  // namespace mattingloss
