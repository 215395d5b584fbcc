// Sums on the CPU in kLanes independent accumulators: element i of a block
// goes to lane i % kLanes, in order, so that the adds vectorize and every sum
// depends on the shape alone (bitwise the same with 1 or N threads).
#pragma once

#include <cstdint>

#include "cpu_convert.h"

namespace mattingloss {
namespace {

constexpr int64_t kLanes = 16;

// lane[i % kLanes] += v[i] for i in [0, n), in order (compiled per instruction set).
template <typename acc_t>
ML_CPU_CLONES void add_to_lanes(const acc_t* __restrict v, int64_t n, acc_t* __restrict lane) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lane[l] += v[i + l];
  }
  for (int64_t l = 0; i < n; ++i, ++l) lane[l] += v[i];
}

}  // namespace
}  // namespace mattingloss
