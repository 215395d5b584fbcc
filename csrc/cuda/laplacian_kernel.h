// Interface between the ATen-facing registration (laplacian_cuda.cpp, built
// by the host compiler) and the kernels (laplacian_kernel.cu, built by nvcc
// without torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../laplacian.h"

namespace mattingloss {

constexpr int kLapThreads = 256;  // threads per block; one partial sum per block

// Where the launch keeps its small device arrays, in acc_t elements of one
// scratch buffer: the level coefficients, then the per-block partial sums of
// the weights (per level for kWeightAfter, one "level" for kMaskBefore) and
// of the loss terms (per level).
struct LapCudaLayout {
  int64_t coef = 0;
  int64_t weight_levels = 0;
  int64_t weight_count[lap::kMaxLevels] = {}, weight_offset[lap::kMaxLevels] = {};
  int64_t loss_count[lap::kMaxLevels] = {}, loss_offset[lap::kMaxLevels] = {};
  int64_t total = 0;
};

ML_INLINE int64_t lap_blocks(int64_t n) { return (n + kLapThreads - 1) / kLapThreads; }

inline LapCudaLayout lap_cuda_layout(const lap::Geometry& g, int64_t planes, int64_t weight_mode) {
  LapCudaLayout L;
  int64_t total = lap::kMaxLevels;  // coef
  L.weight_levels = weight_mode == lap::kWeightAfter ? g.levels : (weight_mode == lap::kMaskBefore ? 1 : 0);
  for (int64_t l = 0; l < L.weight_levels; ++l) {
    L.weight_count[l] = weight_mode == lap::kWeightAfter ? planes * g.h[l] * g.w[l] : planes * g.H[0] * g.W[0];
    L.weight_offset[l] = total;
    total += lap_blocks(L.weight_count[l]);
  }
  for (int64_t l = 0; l < g.levels; ++l) {
    L.loss_count[l] = planes * g.h[l] * g.w[l];
    L.loss_offset[l] = total;
    total += lap_blocks(L.loss_count[l]);
  }
  L.total = total;
  return L;
}

// Enqueues the whole forward (loss, level losses and, when args.grad is set,
// the gradient) on `stream`; `partials` holds layout.total acc_t.
template <typename acc_t>
cudaError_t launch_laplacian_forward(const lap::Args<acc_t>& args, const LapCudaLayout& layout, acc_t* partials,
                                     cudaStream_t stream);

}  // namespace mattingloss
