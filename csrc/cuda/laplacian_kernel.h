// Interface between the ATen-facing registration (laplacian_cuda.cpp, built
// by the host compiler) and the kernels (laplacian_kernel.cu, built by nvcc
// without torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../laplacian.h"

namespace mattingloss {

constexpr int kLapThreads = 256;  // threads per block
// Level-0 tiles: kLapTileRows x kLapTileCols samples of x_1 (twice that of
// level 0) per block. 16 x 32 keeps the gradient kernel's shared memory under
// the 48 KB static limit in float64 (41 KB) with 35% of halo recomputed.
constexpr int kLapTileRows = 16, kLapTileCols = 32;
// Coarse-level work items: one block of kLapThreads samples each.
// The first kLapCounters acc_t of the small buffer hold the unsigned counters
// (the work queue, one per phase, the last one the gradient kernel's ticket).
constexpr int kLapCounters = 64;
constexpr int kLapMaxPhases = 2 * lap::kMaxLevels + 1;

enum LapPhase : int { kLapCoef = 0, kLapDown = 1, kLapSeeds = 2, kLapAdjoint = 3 };

// Where the launch keeps its small device arrays, in acc_t elements of one
// buffer: the counters, the level coefficients, the per-tile weight sums
// (level-major), the per-tile level-0 terms, the per-item terms of levels
// 1..levels-1; and the coarse kernel's phases, in the order they run.
struct LapCudaLayout {
  int64_t tiles_x = 0, tiles_y = 0, tiles = 0;  // level-0 tiles: per plane across, down, in all
  int64_t coef = 0;
  int64_t weight_levels = 0, weight_slots = 0;  // sums of level l at weight_slots + l * tiles
  int64_t term0_slots = 0;
  int64_t term_slots[lap::kMaxLevels] = {}, term_items[lap::kMaxLevels] = {};  // levels >= 1
  int phases = 0;
  int phase_kind[kLapMaxPhases] = {}, phase_level[kLapMaxPhases] = {};
  int64_t phase_first[kLapMaxPhases] = {}, phase_items[kLapMaxPhases] = {};
  int64_t seed_first[lap::kMaxLevels] = {};  // the seeds phase's items of level l start here (within the phase)
  int64_t items = 0;
  int64_t total = 0;
};

ML_INLINE int64_t lap_blocks(int64_t n) { return (n + kLapThreads - 1) / kLapThreads; }

inline LapCudaLayout lap_cuda_layout(const lap::Geometry& g, int64_t planes, int64_t weight_mode, bool grad) {
  LapCudaLayout L;
  const int64_t n = g.levels;
  L.tiles_y = (g.H[1] + kLapTileRows - 1) / kLapTileRows;
  L.tiles_x = (g.W[1] + kLapTileCols - 1) / kLapTileCols;
  L.tiles = planes * L.tiles_y * L.tiles_x;
  int64_t total = kLapCounters;
  L.coef = total;
  total += lap::kMaxLevels;
  L.weight_levels = weight_mode == lap::kWeightAfter ? n : (weight_mode == lap::kMaskBefore ? 1 : 0);
  L.weight_slots = total;
  total += L.weight_levels * L.tiles;
  L.term0_slots = total;
  total += L.tiles;
  for (int64_t l = 1; l < n; ++l) {
    L.term_items[l] = lap_blocks(planes * g.h[l] * g.w[l]);
    L.term_slots[l] = total;
    total += L.term_items[l];
  }
  L.total = total;
  // The coarse kernel's phases: each waits for the one before it.
  auto phase = [&](int kind, int level, int64_t items) {
    L.phase_kind[L.phases] = kind;
    L.phase_level[L.phases] = level;
    L.phase_first[L.phases] = L.items;
    L.phase_items[L.phases] = items;
    L.items += items;
    ++L.phases;
  };
  phase(kLapCoef, 0, 1);
  for (int64_t l = 1; l < n; ++l) phase(kLapDown, int(l), lap_blocks(planes * g.H[l + 1] * g.W[l + 1]));
  if (n > 1) {
    int64_t seeds = 0;
    for (int64_t l = 1; l < n; ++l) {
      L.seed_first[l] = seeds;
      seeds += L.term_items[l];
    }
    phase(kLapSeeds, 0, seeds);
    if (grad) {
      for (int64_t l = n; l >= 1; --l) phase(kLapAdjoint, int(l), lap_blocks(planes * g.H[l] * g.W[l]));
    }
  }
  return L;
}

// Enqueues the whole forward (loss, level losses and, when args.grad is set,
// the gradient) on `stream`: three kernel launches whatever the level count;
// `partials` holds layout.total acc_t, uninitialised.
template <typename acc_t>
cudaError_t launch_laplacian_forward(const lap::Args<acc_t>& args, const LapCudaLayout& layout, acc_t* partials,
                                     cudaStream_t stream);

}  // namespace mattingloss
