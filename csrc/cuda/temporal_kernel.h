// Interface between the ATen-facing registration (temporal_cuda.cpp, built by
// the host compiler) and the kernel (temporal_kernel.cu, built by nvcc without
// torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../temporal.h"

namespace mattingloss {

constexpr int kTemporalThreads = 128;        // threads per block (small blocks: many per SM for 288x512 clips)
constexpr int kTemporalPixelsPerThread = 4;  // one vector load per input, frame and thread
constexpr int64_t kTemporalChunk = kTemporalThreads * kTemporalPixelsPerThread;  // pixels per block

// Scratch the launch needs: one partial TemporalSums<acc_t> per block.
inline int64_t temporal_cuda_blocks(int64_t batch, int64_t pixels) {
  return batch * ((pixels + kTemporalChunk - 1) / kTemporalChunk);
}

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) adds the partials up in a fixed order
// and writes the terms and the total. Returns the launch status.
template <typename acc_t>
cudaError_t launch_temporal_forward(const TemporalArgs<acc_t>& args, TemporalSums<acc_t>* scratch,
                                    unsigned int* counter, cudaStream_t stream);

}  // namespace mattingloss
