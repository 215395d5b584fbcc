// Interface between the ATen-facing registration (metrics_cuda.cpp) and the
// kernels (metrics_kernel.cu, built by nvcc without torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../metrics.h"

namespace mattingloss {
namespace metrics {

// Device scratch of one call (sizes in elements; B samples of N = H * W pixels).
struct MetricsScratch {
  Norm* norms;               // 2B: pred's and gt's normalisation per sample
  uint8_t* q;                // B*N: thresholds reached
  uint8_t* level;            // B*N: the level plane (the levels output when requested)
  int32_t* parent;           // B*N
  uint32_t* size;            // B*N
  uint32_t* key;             // B*N
  unsigned long long* best;  // B
  unsigned long long* masked;  // B
  double* rows;              // B*H*kSums
};

// Bytes of each scratch buffer, in MetricsScratch order (levels: 0 when the output is used).
void metrics_scratch_sizes(int64_t B, int64_t H, int64_t W, bool own_levels, int64_t bytes[9]);

// Enqueues the whole computation on `stream` (no host synchronisation).
cudaError_t launch_matting_metrics(const MetricsArgs& args, const MetricsScratch& s, cudaStream_t stream);

}  // namespace metrics
}  // namespace mattingloss
