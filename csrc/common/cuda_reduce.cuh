// The CUDA side of every chunked loss's reduction, written once: a block's
// partial through cub::BlockReduce to scratch, the last block to finish
// (elected with one atomic ticket, as ATen's Reduce.cuh does) running the
// ordered final reduction, and that reduction per sample. No floating-point
// atomics and every order fixed by the shape alone: bitwise reproducible.
// No torch headers.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cuda/atomic>

#include <cstdint>

#include "cuda_launch.h"
#include "defs.h"

namespace mattingloss {
namespace gpu {

struct Add {
  template <typename T>
  __device__ __forceinline__ T operator()(const T& x, const T& y) const {
    return x + y;
  }
};

// A Sums (a plain struct of acc_t fields with operator+) as its fields.
template <typename acc_t, typename Sums>
constexpr int kFields = sizeof(Sums) / sizeof(acc_t);

// L2 loads of partials other blocks wrote.
template <typename acc_t, typename Sums>
__device__ __forceinline__ Sums load_cg(const Sums* s) {
  Sums r;
  const acc_t* p = reinterpret_cast<const acc_t*>(s);
  acc_t* q = reinterpret_cast<acc_t*>(&r);
#pragma unroll
  for (int k = 0; k < kFields<acc_t, Sums>; ++k) q[k] = __ldcg(p + k);
  return r;
}

template <typename acc_t, typename Sums>
__device__ __forceinline__ Sums shfl_down(Sums v, int offset) {
  acc_t* q = reinterpret_cast<acc_t*>(&v);
#pragma unroll
  for (int k = 0; k < kFields<acc_t, Sums>; ++k) q[k] = __shfl_down_sync(0xffffffffu, q[k], offset);
  return v;
}

// The block's partial `mine` (summed over its threads by `op`) goes to
// store(block_sum) in thread 0; the last block to finish then runs finish().
// The ticket counter resets itself: the last block stores 0 once it holds the
// last ticket (no other block touches it after that in this launch), so the
// next launch on the stream finds it at 0 with no zero-fill per call
// (cuda_host.h keeps one counter per stream). Every block of the grid must
// reach this call.
template <int kThreads, typename Sums, typename Op, typename Store, typename Finish>
__device__ void reduce_block_then_last(const Sums& mine, const Op& op, unsigned int* counter, const Store& store,
                                       const Finish& finish) {
  using BlockReduce = cub::BlockReduce<Sums, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ bool is_last;
  const Sums block_sum = BlockReduce(temp).Reduce(mine, op);
  if (threadIdx.x == 0) {
    store(block_sum);
    // Release: this block's partial is visible to whoever takes a later ticket;
    // acquire: the last block sees every partial. A device-scope acq_rel RMW in
    // place of a __threadfence() (a full GPU-wide fence) in every block.
    cuda::atomic_ref<unsigned int, cuda::thread_scope_device> ticket(*counter);
    is_last = ticket.fetch_add(1u, cuda::memory_order_acq_rel) == gridDim.x - 1;
    if (is_last) ticket.store(0u, cuda::memory_order_relaxed);
  }
  __syncthreads();
  if (is_last) {
    __threadfence();  // the block's other threads read the partials too (one block, once)
    finish();
  }
}

// Run by the last block only: per-sample sums of the chunk partials (scratch
// holds batch * chunks_per_sample of them, then room for batch sample sums),
// then the batch total, and loss.finish(total) and the per-sample backward
// scales loss.scale(sample, total). Few large samples: the whole block sums
// one sample (each thread a fixed stride of its chunks, then
// cub::BlockReduce), so a 2048x2048 image's 4096 partials are read 256 at a
// time. Many small samples: a warp per sample (fixed lane strides, then a
// fixed shuffle tree). Loss gives: fix(sample) (adjusts a sample's sums),
// contribution(sample) (what it adds to the batch total), finish(total),
// scale(sample, total) and acc_t* scale_out.
template <int kThreads, typename acc_t, typename Sums, typename Loss>
__device__ void finish_per_sample(const Loss& loss, int64_t batch, int64_t chunks_per_sample, Sums* scratch) {
  constexpr int kWarps = kThreads / 32;
  using BlockReduce = cub::BlockReduce<Sums, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  __shared__ Sums warp_totals[kWarps];
  __shared__ Sums batch_total;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  Sums* sample_sums = scratch + batch * chunks_per_sample;
  // This thread's share of the batch total (non-zero in thread 0, or in lane 0s).
  Sums contribution{};
  if (chunks_per_sample >= kThreads) {
    for (int64_t s = 0; s < batch; ++s) {
      Sums v{};
      for (int64_t c = threadIdx.x; c < chunks_per_sample; c += kThreads)
        v = v + load_cg<acc_t>(scratch + s * chunks_per_sample + c);
      v = BlockReduce(temp).Reduce(v, Add());
      if (threadIdx.x == 0) {
        loss.fix(v);
        sample_sums[s] = v;
        contribution = contribution + loss.contribution(v);
      }
      __syncthreads();  // before temp is reused
    }
  } else {
    for (int64_t s = warp; s < batch; s += kWarps) {
      Sums v{};
      for (int64_t c = lane; c < chunks_per_sample; c += 32) v = v + load_cg<acc_t>(scratch + s * chunks_per_sample + c);
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) v = v + shfl_down<acc_t>(v, offset);
      if (lane == 0) {
        loss.fix(v);
        sample_sums[s] = v;
        contribution = contribution + loss.contribution(v);
      }
    }
  }
  if (lane == 0) warp_totals[warp] = contribution;
  __syncthreads();
  if (threadIdx.x == 0) {
    Sums total{};
    for (int w = 0; w < kWarps; ++w) total = total + warp_totals[w];
    loss.finish(total);
    batch_total = total;
  }
  __syncthreads();
  const Sums total = batch_total;
  for (int64_t s = threadIdx.x; s < batch; s += kThreads) loss.scale_out[s] = loss.scale(sample_sums[s], total);
}

}  // namespace gpu
}  // namespace mattingloss
