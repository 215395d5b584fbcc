// What the host and the kernels of the chunked CUDA losses agree on, with no
// torch or cub headers: the pointwise grid (DIM, composition) and the scratch
// its reduction needs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mattingloss {
namespace gpu {

// One block per chunk of kPointChunk pixels of one sample, kPointPixelsPerThread
// per thread (one vector load per input and thread).
constexpr int kPointThreads = 256;
constexpr int kPointPixelsPerThread = 4;
constexpr int64_t kPointChunk = kPointThreads * kPointPixelsPerThread;

// Sums a pointwise launch needs in scratch: one per chunk, then one per sample
// (gpu::finish_per_sample).
inline int64_t point_scratch_sums(int64_t batch, int64_t pixels) {
  return batch * ((pixels + kPointChunk - 1) / kPointChunk) + batch;
}

}  // namespace gpu
}  // namespace mattingloss
