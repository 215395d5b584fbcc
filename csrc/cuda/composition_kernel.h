// Interface between the ATen-facing registration (composition_cuda.cpp, built
// by the host compiler) and the kernel (composition_kernel.cu, built by nvcc
// without torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../composition.h"

namespace mattingloss {
namespace composition {

constexpr int kCompThreads = 256;       // threads per block
constexpr int kCompPixelsPerThread = 4;  // one vector load per input and thread
constexpr int64_t kCompChunk = kCompThreads * kCompPixelsPerThread;  // pixels per block

// Scratch the launch needs: per-chunk partial sums, then per-sample sums.
inline int64_t cuda_scratch_sums(int64_t batch, int64_t pixels) {
  return batch * ((pixels + kCompChunk - 1) / kCompChunk) + batch;
}

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) does the ordered final reduction.
// `scratch` holds cuda_scratch_sums() CompSums. Returns the launch status.
template <typename acc_t>
cudaError_t launch_composition_forward(const ForwardArgs<acc_t>& args, CompSums<acc_t>* scratch,
                                       unsigned int* counter, cudaStream_t stream);

}  // namespace composition
}  // namespace mattingloss
