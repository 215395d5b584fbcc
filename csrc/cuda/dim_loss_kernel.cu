// CUDA backend: one block per fixed-size chunk of one sample (kPointChunk
// pixels, 4 per thread), so the partial sums never depend on the GPU's SM
// count. Per block: vector loads of every input as stored, the shared
// per-pixel math (../dim_loss.h), vector stores of the gradients; the block's
// partial and the last block's ordered final reduction, which writes the loss
// and the backward scales, are ../common/cuda_reduce.cuh's. No floating-point
// atomics: bitwise reproducible.
#include "../common/cuda_memory.cuh"
#include "../common/cuda_reduce.cuh"
#include "../dim_loss.h"

namespace mattingloss {
namespace {

using gpu::aligned;
constexpr int kVec = gpu::kPointPixelsPerThread;
constexpr int kThreads = gpu::kPointThreads;

using Raw = gpu::Raw<kVec>;

__device__ __forceinline__ Raw load_raw(const Input& in, int64_t offset, int n, bool vec) {
  return gpu::load_raw<kVec>(in, offset, n, vec);
}

template <typename acc_t>
__device__ __forceinline__ void convert(const Input& in, const Raw& r, acc_t* out) {
  gpu::convert<kVec>(in.dtype, r, out);
}

template <typename acc_t>
__device__ __forceinline__ void store(const Output& out, int64_t offset, int n, bool vec, const acc_t* in) {
  gpu::store<kVec>(out, offset, n, vec, in);
}

template <bool kComp, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    dim_loss_forward_kernel(const ForwardArgs<acc_t> a, const int64_t chunks_per_sample, const bool vec,
                            Sums<acc_t>* scratch, unsigned int* counter) {
  const int64_t chunk = blockIdx.x;
  const int64_t sample = chunk / chunks_per_sample;
  const int64_t first = (chunk % chunks_per_sample) * gpu::kPointChunk + int64_t(threadIdx.x) * kVec;
  const int64_t left = a.pixels - first;
  const int n = left <= 0 ? 0 : (left < kVec ? int(left) : kVec);

  Sums<acc_t> mine{0, 0, 0};
  if (n > 0) {
    const bool v = vec && n == kVec;
    const int64_t px = sample * a.pixels + first;  // offset in (B,1,H,W) tensors
    // Every raw load of this thread first, then the conversions: a conversion
    // waits for its load, so one between two loads would serialise them.
    const Raw rp = load_raw(a.pred, px, n, v), ra = load_raw(a.alpha, px, n, v), rm = load_raw(a.mask, px, n, v);
    Raw ri[3], rf[3], rb[3];
    if (kComp) {
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
        ri[c] = load_raw(a.image, cx, n, v);
        rf[c] = load_raw(a.fg, cx, n, v);
        rb[c] = load_raw(a.bg, cx, n, v);
      }
    }
    acc_t p[kVec], alpha[kVec], mask[kVec], img[3][kVec] = {}, fg[3][kVec] = {}, bg[3][kVec] = {};
    convert(a.pred, rp, p);
    convert(a.alpha, ra, alpha);
    convert(a.mask, rm, mask);
    if (kComp) {
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        convert(a.image, ri[c], img[c]);
        convert(a.fg, rf[c], fg[c]);
        convert(a.bg, rb[c], bg[c]);
      }
    }
    acc_t grad_pred[kVec], loss[kVec], grad_fg[3][kVec], grad_bg[3][kVec];
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const acc_t pi[3] = {img[0][i], img[1][i], img[2][i]};
      const acc_t pf[3] = {fg[0][i], fg[1][i], fg[2][i]};
      const acc_t pb[3] = {bg[0][i], bg[1][i], bg[2][i]};
      PixelResult<acc_t> r;
      dim_pixel<kComp>(a.params, p[i], alpha[i], mask[i], pi, pf, pb, r);
      if (i < n) mine = mine + Sums<acc_t>{r.alpha_term, r.comp_term, r.weight};
      grad_pred[i] = r.grad_pred;
      loss[i] = pixel_loss(a.params, r.alpha_term, r.comp_term);
      if (kComp) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
          grad_fg[c][i] = r.grad_fg[c];
          grad_bg[c][i] = r.grad_bg[c];
        }
      }
    }
    if (a.grad_pred.data) store(a.grad_pred, px, n, v, grad_pred);
    if (a.loss_map) gpu::store_as<kVec, acc_t>(a.loss_map, px, n, v, loss);
    if (kComp) {
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * a.pixels + first;
        if (a.grad_fg.data) store(a.grad_fg, cx, n, v, grad_fg[c]);
        if (a.grad_bg.data) store(a.grad_bg, cx, n, v, grad_bg[c]);
      }
    }
  }

  gpu::reduce_block_then_last<kThreads>(
      mine, gpu::Add(), counter, [&](const Sums<acc_t>& block_sum) { scratch[chunk] = block_sum; },
      [&] { gpu::finish_per_sample<kThreads, acc_t>(EndOfPass<acc_t>{a, a.scale}, a.batch, chunks_per_sample, scratch); });
}

}  // namespace

template <typename acc_t>
cudaError_t launch_dim_loss_forward(const ForwardArgs<acc_t>& a, Sums<acc_t>* scratch, unsigned int* counter,
                                    cudaStream_t stream) {
  const int64_t chunks_per_sample = (a.pixels + gpu::kPointChunk - 1) / gpu::kPointChunk;
  // Vector loads and stores need every row of 4 pixels to start on a
  // 4-element boundary: true for H*W % 4 == 0 and aligned base pointers.
  bool vec = a.pixels % kVec == 0;
  for (const Input* in : {&a.pred, &a.alpha, &a.mask, &a.image, &a.fg, &a.bg})
    vec = vec && (!in->data || aligned(in->data, kVec * element_bytes(in->dtype)));
  for (const Output* out : {&a.grad_pred, &a.grad_fg, &a.grad_bg})
    vec = vec && (!out->data || aligned(out->data, kVec * element_bytes(out->dtype)));
  vec = vec && (!a.loss_map || aligned(a.loss_map, kVec * sizeof(acc_t)));

  const int64_t blocks = a.batch * chunks_per_sample;
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;  // > 2^41 pixels: cannot fit in memory anyway
  const dim3 grid(static_cast<unsigned int>(blocks));
  if (a.has_comp) {
    dim_loss_forward_kernel<true><<<grid, kThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  } else {
    dim_loss_forward_kernel<false><<<grid, kThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  }
  return cudaGetLastError();
}

template cudaError_t launch_dim_loss_forward<float>(const ForwardArgs<float>&, Sums<float>*, unsigned int*,
                                                    cudaStream_t);
template cudaError_t launch_dim_loss_forward<double>(const ForwardArgs<double>&, Sums<double>*, unsigned int*,
                                                     cudaStream_t);

}  // namespace mattingloss
