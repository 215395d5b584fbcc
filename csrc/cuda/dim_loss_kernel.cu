// CUDA backend: one block per fixed-size chunk of one sample (kCudaChunk
// pixels, 4 per thread), so the partial sums never depend on the GPU's SM
// count. Per block: vector loads of every input as stored, the shared
// per-pixel math (../dim_loss.h), vector stores of the gradients, and a
// cub::BlockReduce. The last block to finish (elected with one atomic ticket,
// as ATen's Reduce.cuh does) sums the partials in a fixed order and writes the
// loss and the backward scales. No floating-point atomics: bitwise
// reproducible.
#include <cub/block/block_reduce.cuh>

#include "../common/cuda_memory.cuh"
#include "../dim_loss.h"
#include "dim_loss_kernel.h"

namespace mattingloss {
namespace {

using gpu::aligned;
constexpr int kVec = kCudaPixelsPerThread;

template <typename acc_t>
__device__ __forceinline__ void load(const Input& in, int64_t offset, int n, bool vec, acc_t* out) {
  gpu::load<kVec>(in, offset, n, vec, out);
}

template <typename acc_t>
__device__ __forceinline__ void store(const Output& out, int64_t offset, int n, bool vec, const acc_t* in) {
  gpu::store<kVec>(out, offset, n, vec, in);
}

template <typename acc_t>
__device__ __forceinline__ Sums<acc_t> load_sums(const Sums<acc_t>* s) {
  // L2 loads: the partials were written by other blocks.
  const acc_t* p = reinterpret_cast<const acc_t*>(s);
  return {__ldcg(p), __ldcg(p + 1), __ldcg(p + 2)};
}

template <typename acc_t>
struct SumOp {
  __device__ __forceinline__ Sums<acc_t> operator()(const Sums<acc_t>& x, const Sums<acc_t>& y) const { return x + y; }
};

// Run by the last block only: per-sample sums of the chunk partials, then the
// batch total, the loss and the per-sample backward scales. Every order is
// fixed by the shape alone. Few large samples: the whole block sums one sample
// (each thread a fixed stride of its chunks, then cub::BlockReduce), so a
// 2048x2048 image's 4096 partials are read 256 at a time. Many small samples:
// a warp per sample (fixed lane strides, then a fixed shuffle tree).
template <typename acc_t>
__device__ void finish(const ForwardArgs<acc_t>& a, int64_t chunks_per_sample, Sums<acc_t>* scratch) {
  constexpr int kWarps = kCudaThreads / 32;
  using BlockReduce = cub::BlockReduce<Sums<acc_t>, kCudaThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ acc_t warp_totals[kWarps][3];
  __shared__ acc_t batch_total[3];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  Sums<acc_t>* sample_sums = scratch + a.batch * chunks_per_sample;
  // This thread's share of the batch total (non-zero in thread 0, or in lane 0s).
  Sums<acc_t> contribution{0, 0, 0};
  if (chunks_per_sample >= kCudaThreads) {
    for (int64_t s = 0; s < a.batch; ++s) {
      Sums<acc_t> v{0, 0, 0};
      for (int64_t c = threadIdx.x; c < chunks_per_sample; c += kCudaThreads)
        v = v + load_sums(scratch + s * chunks_per_sample + c);
      v = BlockReduce(temp).Reduce(v, SumOp<acc_t>());
      if (threadIdx.x == 0) {
        sample_sums[s] = v;
        contribution = contribution + sample_contribution(v, a.params.reduction);
      }
      __syncthreads();  // before temp is reused
    }
  } else {
    for (int64_t s = warp; s < a.batch; s += kWarps) {
      Sums<acc_t> v{0, 0, 0};
      for (int64_t c = lane; c < chunks_per_sample; c += 32) v = v + load_sums(scratch + s * chunks_per_sample + c);
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) {
        v.alpha += __shfl_down_sync(0xffffffffu, v.alpha, offset);
        v.comp += __shfl_down_sync(0xffffffffu, v.comp, offset);
        v.weight += __shfl_down_sync(0xffffffffu, v.weight, offset);
      }
      if (lane == 0) {
        sample_sums[s] = v;
        contribution = contribution + sample_contribution(v, a.params.reduction);
      }
    }
  }
  if (lane == 0) {
    warp_totals[warp][0] = contribution.alpha;
    warp_totals[warp][1] = contribution.comp;
    warp_totals[warp][2] = contribution.weight;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    Sums<acc_t> total{0, 0, 0};
    for (int w = 0; w < kWarps; ++w) total = total + Sums<acc_t>{warp_totals[w][0], warp_totals[w][1], warp_totals[w][2]};
    acc_t loss;
    finalize(a.params, total, a.batch, &loss, a.components, a.components + 1);
    if (a.loss) *a.loss = loss;
    batch_total[0] = total.alpha;
    batch_total[1] = total.comp;
    batch_total[2] = total.weight;
  }
  __syncthreads();
  const Sums<acc_t> total{batch_total[0], batch_total[1], batch_total[2]};
  for (int64_t s = threadIdx.x; s < a.batch; s += kCudaThreads) {
    a.scale[s] = grad_scale(a.params, sample_sums[s], total, a.batch);
  }
}

template <bool kComp, typename acc_t>
__global__ void __launch_bounds__(kCudaThreads)
    dim_loss_forward_kernel(const ForwardArgs<acc_t> a, const int64_t chunks_per_sample, const bool vec,
                            Sums<acc_t>* scratch, unsigned int* counter) {
  const int64_t chunk = blockIdx.x;
  const int64_t sample = chunk / chunks_per_sample;
  const int64_t first = (chunk % chunks_per_sample) * kCudaChunk + int64_t(threadIdx.x) * kVec;
  const int64_t left = a.pixels - first;
  const int n = left <= 0 ? 0 : (left < kVec ? int(left) : kVec);

  Sums<acc_t> mine{0, 0, 0};
  if (n > 0) {
    const bool v = vec && n == kVec;
    const int64_t px = sample * a.pixels + first;  // offset in (B,1,H,W) tensors
    acc_t p[kVec], alpha[kVec], mask[kVec], img[3][kVec] = {}, fg[3][kVec] = {}, bg[3][kVec] = {};
    load(a.pred, px, n, v, p);
    load(a.alpha, px, n, v, alpha);
    load(a.mask, px, n, v, mask);
    if (kComp) {
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * a.pixels + first;  // offset in (B,3,H,W) tensors
        load(a.image, cx, n, v, img[c]);
        load(a.fg, cx, n, v, fg[c]);
        load(a.bg, cx, n, v, bg[c]);
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

  using BlockReduce = cub::BlockReduce<Sums<acc_t>, kCudaThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ bool is_last;
  const Sums<acc_t> block_sum = BlockReduce(temp).Reduce(mine, SumOp<acc_t>());
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
cudaError_t launch_dim_loss_forward(const ForwardArgs<acc_t>& a, Sums<acc_t>* scratch, unsigned int* counter,
                                    cudaStream_t stream) {
  const int64_t chunks_per_sample = (a.pixels + kCudaChunk - 1) / kCudaChunk;
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
    dim_loss_forward_kernel<true><<<grid, kCudaThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  } else {
    dim_loss_forward_kernel<false><<<grid, kCudaThreads, 0, stream>>>(a, chunks_per_sample, vec, scratch, counter);
  }
  return cudaGetLastError();
}

template cudaError_t launch_dim_loss_forward<float>(const ForwardArgs<float>&, Sums<float>*, unsigned int*,
                                                    cudaStream_t);
template cudaError_t launch_dim_loss_forward<double>(const ForwardArgs<double>&, Sums<double>*, unsigned int*,
                                                     cudaStream_t);

}  // namespace mattingloss
