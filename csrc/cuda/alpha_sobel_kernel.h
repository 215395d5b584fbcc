// Interface between the ATen-facing registration (alpha_sobel_cuda.cpp,
// built by the host compiler) and the kernel (alpha_sobel_kernel.cu, built
// by nvcc without torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../alpha_sobel.h"

namespace mattingloss {

// A block computes one tile of kAgTileH x kAgTileW pixels of one sample (the
// tiling depends on the shape alone, so the partial sums do too): each of its
// kAgWarps warps kAgWarpRows consecutive rows of it, walked downward, each lane
// kAgCols consecutive pixels of a row; lanes 1..30 own the tile's columns,
// lanes 0 and 31 read the columns either side (the stencil's halo).
constexpr int kAgCols = 4;
constexpr int kAgWarpRows = 16;
constexpr int kAgWarps = 4;
constexpr int kAgThreads = 32 * kAgWarps;
constexpr int kAgTileW = 30 * kAgCols;
constexpr int kAgTileH = kAgWarps * kAgWarpRows;

inline int64_t alpha_sobel_tiles(int64_t height, int64_t width) {
  return ((height + kAgTileH - 1) / kAgTileH) * ((width + kAgTileW - 1) / kAgTileW);
}

// Scratch the launch needs, in acc_t values: kAgSums per tile.
inline int64_t alpha_sobel_scratch(int64_t batch, int64_t height, int64_t width) {
  return batch * alpha_sobel_tiles(height, width) * kAgSums;
}

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) sums the tiles' partials per sample in a
// fixed order into args.sums. Returns the launch status.
template <typename acc_t>
cudaError_t launch_alpha_sobel_forward(const AlphaGradArgs<acc_t>& args, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream);

// Enqueues alpha_sobel_weights: the forward's weight sums alone (same tiles,
// same order, same use of scratch and counter) into args.sums, 0 in the other columns.
template <typename acc_t>
cudaError_t launch_alpha_sobel_weights(const AlphaGradArgs<acc_t>& args, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream);

// Enqueues compose_alpha_losses (../alpha_sobel.h) as one single-thread
// kernel: B scalar steps, no reason for more threads.
template <typename acc_t>
cudaError_t launch_alpha_sobel_compose(const AlphaComposeParams<acc_t>& params, const acc_t* sums, acc_t* total,
                                          acc_t* components, acc_t* factors, cudaStream_t stream);

}  // namespace mattingloss
