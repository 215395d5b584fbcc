// The CUDA driver of the pointwise losses (common/pointwise.h): one block per
// fixed-size chunk of one sample (kPointChunk pixels, 4 per thread), so the
// partial sums never depend on the GPU's SM count. Per block: vector loads of
// every input as stored, the policy's per-pixel math, vector stores of the
// gradients; the block's partial and the last block's ordered final
// reduction, which writes the loss and the backward scales, are
// cuda_reduce.cuh's. No floating-point atomics: bitwise reproducible.
#pragma once

#include <type_traits>

#include "cuda_launch.h"
#include "cuda_memory.cuh"
#include "cuda_reduce.cuh"
#include "pointwise.h"

namespace mattingloss {
namespace gpu {
namespace {

constexpr int kVec = kPointPixelsPerThread;

template <typename Policy, bool kComp, int64_t kRho, typename acc_t>
__global__ void __launch_bounds__(kPointThreads)
    pointwise_kernel(const typename Policy::Args a, const int64_t chunks_per_sample, const bool vec,
                     typename Policy::Sums* scratch, unsigned int* counter) {
  using Sums = typename Policy::Sums;
  constexpr int K = Policy::kTerms;
  const int64_t chunk = blockIdx.x;
  const int64_t sample = chunk / chunks_per_sample;
  const int64_t first = (chunk % chunks_per_sample) * kPointChunk + int64_t(threadIdx.x) * kVec;
  const int64_t left = a.pixels - first;
  const int n = left <= 0 ? 0 : (left < kVec ? int(left) : kVec);
  const typename Policy::Params P = Policy::template with_rho<kRho>(a.params);
  const bool has_mask = !Policy::kHasAllPixels || a.mask.data;  // a constant where every mode reads it

  Sums mine{};
  if (n > 0) {
    const bool v = vec && n == kVec;
    const int64_t px = sample * a.pixels + first;  // offset in (B,1,H,W) tensors
    acc_t p[kVec], alpha[kVec] = {}, mask[kVec] = {}, img[3][kVec] = {}, fg[3][kVec] = {}, bg[3][kVec] = {};
    if constexpr (Policy::kRawLoadsFirst) {
      // Every raw load of this thread first, then the conversions: a
      // conversion waits for its load, so one between two loads would
      // serialise them. Not where the raw registers spill (composition's
      // float64, sm_90): that converts input after input.
      const Raw<kVec> rp = load_raw<kVec>(a.pred, px, n, v);
      Raw<kVec> ra{}, rm{}, ri[3], rf[3], rb[3];
      if (Policy::kReadsAlpha) ra = load_raw<kVec>(a.alpha, px, n, v);
      if (has_mask) rm = load_raw<kVec>(a.mask, px, n, v);
      if (kComp) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
          const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
          ri[c] = load_raw<kVec>(a.image, cx, n, v);
          rf[c] = load_raw<kVec>(a.fg, cx, n, v);
          rb[c] = load_raw<kVec>(a.bg, cx, n, v);
        }
      }
      convert<kVec>(a.pred.dtype, rp, p);
      if (Policy::kReadsAlpha) convert<kVec>(a.alpha.dtype, ra, alpha);
      if (has_mask) convert<kVec>(a.mask.dtype, rm, mask);
      if (kComp) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
          convert<kVec>(a.image.dtype, ri[c], img[c]);
          convert<kVec>(a.fg.dtype, rf[c], fg[c]);
          convert<kVec>(a.bg.dtype, rb[c], bg[c]);
        }
      }
    } else {
      load<kVec>(a.pred, px, n, v, p);
      if (Policy::kReadsAlpha) load<kVec>(a.alpha, px, n, v, alpha);
      if (has_mask) load<kVec>(a.mask, px, n, v, mask);
      if (kComp) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
          const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
          load<kVec>(a.image, cx, n, v, img[c]);
          load<kVec>(a.fg, cx, n, v, fg[c]);
          load<kVec>(a.bg, cx, n, v, bg[c]);
        }
      }
    }
    acc_t grad_pred[kVec], loss[kVec], grad_fg[3][kVec], grad_bg[3][kVec];
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const acc_t pi[3] = {img[0][i], img[1][i], img[2][i]};
      const acc_t pf[3] = {fg[0][i], fg[1][i], fg[2][i]};
      const acc_t pb[3] = {bg[0][i], bg[1][i], bg[2][i]};
      PointResult<acc_t, K> r;
      Policy::template pixel<kComp, true>(P, p[i], alpha[i], mask[i], pi, pf, pb, r);
      if (i < n) mine = mine + Policy::sums(r);
      grad_pred[i] = r.grad_pred;
      loss[i] = Policy::loss(P, r.term);
      if (kComp) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
          grad_fg[c][i] = r.grad_fg[c];
          grad_bg[c][i] = r.grad_bg[c];
        }
      }
    }
    if (a.grad_pred.data) store<kVec>(a.grad_pred, px, n, v, grad_pred);
    if (a.loss_map) store_as<kVec, acc_t>(a.loss_map, px, n, v, loss);
    if (kComp) {
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * a.pixels + first;
        if (a.grad_fg.data) store<kVec>(a.grad_fg, cx, n, v, grad_fg[c]);
        if (a.grad_bg.data) store<kVec>(a.grad_bg, cx, n, v, grad_bg[c]);
      }
    }
  }

  reduce_block_then_last<kPointThreads>(
      mine, Add(), counter, [&](const Sums& block_sum) { scratch[chunk] = block_sum; },
      [&] { finish_per_sample<kPointThreads, acc_t>(Policy{a, a.scale}, a.batch, chunks_per_sample, scratch); });
}

}  // namespace

}  // namespace gpu

template <typename Policy>
cudaError_t launch_pointwise(const typename Policy::Args& a, typename Policy::Sums* scratch, unsigned int* counter,
                             cudaStream_t stream) {
  using namespace gpu;
  using acc_t = typename Policy::Acc;
  const int64_t chunks_per_sample = (a.pixels + kPointChunk - 1) / kPointChunk;
  // Vector loads and stores need every run of 4 pixels to start on a
  // 4-element boundary: H*W % 4 == 0 and aligned base pointers.
  bool vec = a.pixels % kVec == 0;
  for (const Input* in : {&a.pred, &a.alpha, &a.mask, &a.image, &a.fg, &a.bg})
    vec = vec && (!in->data || aligned(in->data, kVec * element_bytes(in->dtype)));
  for (const Output* out : {&a.grad_pred, &a.grad_fg, &a.grad_bg})
    vec = vec && (!out->data || aligned(out->data, kVec * element_bytes(out->dtype)));
  vec = vec && (!a.loss_map || aligned(a.loss_map, kVec * sizeof(acc_t)));

  const int64_t blocks = a.batch * chunks_per_sample;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;  // > 2^41 pixels: cannot fit in memory anyway
  const dim3 grid(static_cast<unsigned int>(blocks));
  Policy::with_variant(a, [&](auto comp, auto rho) {
    pointwise_kernel<Policy, decltype(comp)::value, decltype(rho)::value, acc_t>
        <<<grid, kPointThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  });
  return cudaGetLastError();
}

}  // namespace mattingloss
