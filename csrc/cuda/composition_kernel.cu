// CUDA backend of the composition loss, laid out as dim_loss_kernel.cu: one
// block per fixed-size chunk of one sample (kPointChunk pixels, 4 per thread),
// so the partial sums never depend on the GPU's SM count. Per block: vector
// loads of every input as stored, the shared per-pixel math
// (../composition.h), vector stores of the gradients; the block's partial and
// the last block's ordered final reduction are ../common/cuda_reduce.cuh's.
// No floating-point atomics: bitwise reproducible.
#include <type_traits>

#include "../common/cuda_memory.cuh"
#include "../common/cuda_reduce.cuh"
#include "../composition.h"

namespace mattingloss {
namespace composition {
namespace {

using gpu::aligned;
constexpr int kVec = gpu::kPointPixelsPerThread;
constexpr int kThreads = gpu::kPointThreads;

template <int64_t kRho, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    composition_forward_kernel(const ForwardArgs<acc_t> a, const int64_t chunks_per_sample, const bool vec,
                               CompSums<acc_t>* scratch, unsigned int* counter) {
  const int64_t chunk = blockIdx.x;
  const int64_t sample = chunk / chunks_per_sample;
  const int64_t first = (chunk % chunks_per_sample) * gpu::kPointChunk + int64_t(threadIdx.x) * kVec;
  const int64_t left = a.pixels - first;
  const int n = left <= 0 ? 0 : (left < kVec ? int(left) : kVec);
  Params<acc_t> P = a.params;
  P.rho = kRho;  // a constant: the other rhos' code folds away

  CompSums<acc_t> mine{0, 0};
  if (n > 0) {
    const bool v = vec && n == kVec;
    const int64_t px = sample * a.pixels + first;  // offset in (B,1,H,W) tensors
    acc_t p[kVec], mask[kVec] = {}, img[3][kVec], fg[3][kVec], bg[3][kVec];
    if constexpr (std::is_same_v<acc_t, float>) {
      // Every raw load of this thread first, then the conversions: a
      // conversion waits for its load, so one between two loads would
      // serialise them. Not for float64 (the reference path): its raw
      // registers spill there (sm_90), so it converts input after input.
      using Raw = gpu::Raw<kVec>;
      const Raw rp = gpu::load_raw<kVec>(a.pred, px, n, v);
      Raw rm{}, ri[3], rf[3], rb[3];
      if (a.mask.data) rm = gpu::load_raw<kVec>(a.mask, px, n, v);
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
        ri[c] = gpu::load_raw<kVec>(a.image, cx, n, v);
        rf[c] = gpu::load_raw<kVec>(a.fg, cx, n, v);
        rb[c] = gpu::load_raw<kVec>(a.bg, cx, n, v);
      }
      gpu::convert<kVec>(a.pred.dtype, rp, p);
      if (a.mask.data) gpu::convert<kVec>(a.mask.dtype, rm, mask);
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        gpu::convert<kVec>(a.image.dtype, ri[c], img[c]);
        gpu::convert<kVec>(a.fg.dtype, rf[c], fg[c]);
        gpu::convert<kVec>(a.bg.dtype, rb[c], bg[c]);
      }
    } else {
      gpu::load<kVec>(a.pred, px, n, v, p);
      if (a.mask.data) gpu::load<kVec>(a.mask, px, n, v, mask);
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
        gpu::load<kVec>(a.image, cx, n, v, img[c]);
        gpu::load<kVec>(a.fg, cx, n, v, fg[c]);
        gpu::load<kVec>(a.bg, cx, n, v, bg[c]);
      }
    }
    acc_t grad_pred[kVec], term[kVec], grad_fg[3][kVec], grad_bg[3][kVec];
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const acc_t pi[3] = {img[0][i], img[1][i], img[2][i]};
      const acc_t pf[3] = {fg[0][i], fg[1][i], fg[2][i]};
      const acc_t pb[3] = {bg[0][i], bg[1][i], bg[2][i]};
      acc_t weight, gf[3], gb[3];
      composition_pixel<true>(P, p[i], mask[i], pi, pf, pb, term[i], weight, grad_pred[i], gf, gb);
      if (i < n) mine = mine + CompSums<acc_t>{term[i], weight};
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        grad_fg[c][i] = gf[c];
        grad_bg[c][i] = gb[c];
      }
    }
    if (a.grad_pred.data) gpu::store<kVec>(a.grad_pred, px, n, v, grad_pred);
    if (a.loss_map) gpu::store_as<kVec, acc_t>(a.loss_map, px, n, v, term);
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const int64_t cx = (sample * 3 + c) * a.pixels + first;
      if (a.grad_fg.data) gpu::store<kVec>(a.grad_fg, cx, n, v, grad_fg[c]);
      if (a.grad_bg.data) gpu::store<kVec>(a.grad_bg, cx, n, v, grad_bg[c]);
    }
  }

  gpu::reduce_block_then_last<kThreads>(
      mine, gpu::Add(), counter, [&](const CompSums<acc_t>& block_sum) { scratch[chunk] = block_sum; },
      [&] { gpu::finish_per_sample<kThreads, acc_t>(EndOfPass<acc_t>{a, a.scale}, a.batch, chunks_per_sample, scratch); });
}

}  // namespace

template <typename acc_t>
cudaError_t launch_composition_forward(const ForwardArgs<acc_t>& a, CompSums<acc_t>* scratch, unsigned int* counter,
                                       cudaStream_t stream) {
  const int64_t chunks_per_sample = (a.pixels + gpu::kPointChunk - 1) / gpu::kPointChunk;
  // Vector loads and stores need every run of 4 pixels to start on a
  // 4-element boundary: H*W % 4 == 0 and aligned base pointers.
  bool vec = a.pixels % kVec == 0;
  for (const Input* in : {&a.pred, &a.mask, &a.image, &a.fg, &a.bg})
    vec = vec && (!in->data || aligned(in->data, kVec * element_bytes(in->dtype)));
  for (const Output* out : {&a.grad_pred, &a.grad_fg, &a.grad_bg})
    vec = vec && (!out->data || aligned(out->data, kVec * element_bytes(out->dtype)));
  vec = vec && (!a.loss_map || aligned(a.loss_map, kVec * sizeof(acc_t)));

  const int64_t blocks = a.batch * chunks_per_sample;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;  // > 2^41 pixels: cannot fit in memory anyway
  const dim3 grid(static_cast<unsigned int>(blocks));
  switch (a.params.rho) {
    case kL1:
      composition_forward_kernel<kL1><<<grid, kThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
      break;
    case kCharbonnier:
      composition_forward_kernel<kCharbonnier>
          <<<grid, kThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
      break;
    default:
      composition_forward_kernel<kL2><<<grid, kThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  }
  return cudaGetLastError();
}

template cudaError_t launch_composition_forward<float>(const ForwardArgs<float>&, CompSums<float>*, unsigned int*,
                                                       cudaStream_t);
template cudaError_t launch_composition_forward<double>(const ForwardArgs<double>&, CompSums<double>*,
                                                        unsigned int*, cudaStream_t);

}  // namespace composition
}  // namespace mattingloss
