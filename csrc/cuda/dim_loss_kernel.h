// Interface between the ATen-facing registration (dim_loss_cuda.cpp, built by
// the host compiler) and the kernels (dim_loss_kernel.cu, built by nvcc without
// torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../dim_loss_args.h"

namespace mattingloss {

constexpr int kCudaThreads = 256;          // threads per block
constexpr int kCudaPixelsPerThread = 4;    // one vector load per input and thread
constexpr int64_t kCudaChunk = kCudaThreads * kCudaPixelsPerThread;  // pixels per block

// Scratch the launch needs: per-chunk partial sums, then per-sample sums.
inline int64_t cuda_scratch_sums(int64_t batch, int64_t pixels) {
  return batch * ((pixels + kCudaChunk - 1) / kCudaChunk) + batch;
}

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) does the ordered final reduction.
// `scratch` holds cuda_scratch_sums() Sums. Returns the launch status.
template <typename acc_t>
cudaError_t launch_dim_loss_forward(const ForwardArgs<acc_t>& args, Sums<acc_t>* scratch,
                                    unsigned int* counter, cudaStream_t stream);

}  // namespace mattingloss
