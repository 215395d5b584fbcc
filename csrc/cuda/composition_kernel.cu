// CUDA backend of the composition loss, laid out as dim_loss_kernel.cu: one
// block per fixed-size chunk of one sample (kCompChunk pixels, 4 per thread),
// so the partial sums never depend on the GPU's SM count. Per block: vector
// loads of every input as stored, the shared per-pixel math
// (../composition.h), vector stores of the gradients and a cub::BlockReduce.
// The last block to finish (one atomic ticket, as ATen's Reduce.cuh) sums the
// partials in a fixed order and writes the loss and the backward scales. No
// floating-point atomics: bitwise reproducible.
#include <cub/block/block_reduce.cuh>

#include "../common/cuda_memory.cuh"
#include "../composition.h"
#include "composition_kernel.h"

namespace mattingloss {
namespace composition {
namespace {

using gpu::aligned;
constexpr int kVec = kCompPixelsPerThread;

template <typename acc_t>
__device__ __forceinline__ CompSums<acc_t> load_sums(const CompSums<acc_t>* s) {
  // L2 loads: the partials were written by other blocks.
  const acc_t* p = reinterpret_cast<const acc_t*>(s);
  return {__ldcg(p), __ldcg(p + 1)};
}

template <typename acc_t>
struct SumOp {
  __device__ __forceinline__ CompSums<acc_t> operator()(const CompSums<acc_t>& x, const CompSums<acc_t>& y) const {
    return x + y;
  }
};

// Run by the last block only: per-sample sums of the chunk partials, then the
// batch total, the loss and the per-sample backward scales, every order fixed
// by the shape alone. Few large samples: the whole block sums one sample;
// many small ones: a warp per sample.
template <typename acc_t>
__device__ void finish(const ForwardArgs<acc_t>& a, int64_t chunks_per_sample, CompSums<acc_t>* scratch) {
  constexpr int kWarps = kCompThreads / 32;
  using BlockReduce = cub::BlockReduce<CompSums<acc_t>, kCompThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ acc_t warp_totals[kWarps][2];
  __shared__ acc_t batch_total[2];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const bool all_pixels = a.params.mask_mode == kAllPixels;
  CompSums<acc_t>* sample_sums = scratch + a.batch * chunks_per_sample;
  CompSums<acc_t> contribution{0, 0};  // this thread's share of the batch total
  if (chunks_per_sample >= kCompThreads) {
    for (int64_t s = 0; s < a.batch; ++s) {
      CompSums<acc_t> v{0, 0};
      for (int64_t c = threadIdx.x; c < chunks_per_sample; c += kCompThreads)
        v = v + load_sums(scratch + s * chunks_per_sample + c);
      v = BlockReduce(temp).Reduce(v, SumOp<acc_t>());
      if (threadIdx.x == 0) {
        if (all_pixels) v.weight = acc_t(a.pixels);  // exact, whatever acc_t's integer range
        sample_sums[s] = v;
        contribution = contribution + sample_contribution(a.params, v);
      }
      __syncthreads();  // before temp is reused
    }
  } else {
    for (int64_t s = warp; s < a.batch; s += kWarps) {
      CompSums<acc_t> v{0, 0};
      for (int64_t c = lane; c < chunks_per_sample; c += 32) v = v + load_sums(scratch + s * chunks_per_sample + c);
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) {
        v.term += __shfl_down_sync(0xffffffffu, v.term, offset);
        v.weight += __shfl_down_sync(0xffffffffu, v.weight, offset);
      }
      if (lane == 0) {
        if (all_pixels) v.weight = acc_t(a.pixels);
        sample_sums[s] = v;
        contribution = contribution + sample_contribution(a.params, v);
      }
    }
  }
  if (lane == 0) {
    warp_totals[warp][0] = contribution.term;
    warp_totals[warp][1] = contribution.weight;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    CompSums<acc_t> total{0, 0};
    for (int w = 0; w < kWarps; ++w) total = total + CompSums<acc_t>{warp_totals[w][0], warp_totals[w][1]};
    if (all_pixels && a.params.reduction != kSample) total.weight = acc_t(double(a.pixels) * double(a.batch));
    if (a.loss) *a.loss = finalize(a.params, total, a.batch);
    batch_total[0] = total.term;
    batch_total[1] = total.weight;
  }
  __syncthreads();
  const CompSums<acc_t> total{batch_total[0], batch_total[1]};
  for (int64_t s = threadIdx.x; s < a.batch; s += kCompThreads) {
    a.scale[s] = grad_scale(a.params, sample_sums[s], total, a.batch);
  }
}

template <int64_t kRho, typename acc_t>
__global__ void __launch_bounds__(kCompThreads)
    composition_forward_kernel(const ForwardArgs<acc_t> a, const int64_t chunks_per_sample, const bool vec,
                               CompSums<acc_t>* scratch, unsigned int* counter) {
  const int64_t chunk = blockIdx.x;
  const int64_t sample = chunk / chunks_per_sample;
  const int64_t first = (chunk % chunks_per_sample) * kCompChunk + int64_t(threadIdx.x) * kVec;
  const int64_t left = a.pixels - first;
  const int n = left <= 0 ? 0 : (left < kVec ? int(left) : kVec);
  Params<acc_t> P = a.params;
  P.rho = kRho;  // a constant: the other rhos' code folds away

  CompSums<acc_t> mine{0, 0};
  if (n > 0) {
    const bool v = vec && n == kVec;
    const int64_t px = sample * a.pixels + first;  // offset in (B,1,H,W) tensors
    acc_t p[kVec], mask[kVec] = {}, img[3][kVec], fg[3][kVec], bg[3][kVec];
    gpu::load<kVec>(a.pred, px, n, v, p);
    if (a.mask.data) gpu::load<kVec>(a.mask, px, n, v, mask);
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
      gpu::load<kVec>(a.image, cx, n, v, img[c]);
      gpu::load<kVec>(a.fg, cx, n, v, fg[c]);
      gpu::load<kVec>(a.bg, cx, n, v, bg[c]);
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

  using BlockReduce = cub::BlockReduce<CompSums<acc_t>, kCompThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ bool is_last;
  const CompSums<acc_t> block_sum = BlockReduce(temp).Reduce(mine, SumOp<acc_t>());
  if (threadIdx.x == 0) {
    scratch[chunk] = block_sum;
    __threadfence();  // publish the partial before taking a ticket
    is_last = atomicAdd(counter, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (is_last) {
    __threadfence();
    finish(a, chunks_per_sample, scratch);
  }
}

}  // namespace

template <typename acc_t>
cudaError_t launch_composition_forward(const ForwardArgs<acc_t>& a, CompSums<acc_t>* scratch, unsigned int* counter,
                                       cudaStream_t stream) {
  const int64_t chunks_per_sample = (a.pixels + kCompChunk - 1) / kCompChunk;
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
      composition_forward_kernel<kL1><<<grid, kCompThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
      break;
    case kCharbonnier:
      composition_forward_kernel<kCharbonnier>
          <<<grid, kCompThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
      break;
    default:
      composition_forward_kernel<kL2><<<grid, kCompThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  }
  return cudaGetLastError();
}

template cudaError_t launch_composition_forward<float>(const ForwardArgs<float>&, CompSums<float>*, unsigned int*,
                                                       cudaStream_t);
template cudaError_t launch_composition_forward<double>(const ForwardArgs<double>&, CompSums<double>*,
                                                        unsigned int*, cudaStream_t);

}  // namespace composition
}  // namespace mattingloss
