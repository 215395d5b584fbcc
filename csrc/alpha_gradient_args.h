// What a backend's alpha/gradient-loss kernel gets: raw pointers, the dtype of
// each input (read as stored), sizes and the parameters. Plain data with no
// ATen types, so the .cu file needs no torch headers. Filled by
// prepare_alpha_gradient() in alpha_gradient_host.cpp.
#pragma once

#include <cstdint>

#include "alpha_gradient.h"
#include "common/defs.h"

namespace mattingloss {

template <typename acc_t>
struct AlphaGradArgs {
  AlphaGradParams<acc_t> params;
  int64_t batch = 0, height = 0, width = 0;
  int64_t groups = 0;       // gradient maps (1..kMaxGroups)
  Input pred, gt, mask;     // (B,1,H,W); mask.data is null for kAgNoMask
  Output grad;              // (groups, B, 1, H, W) in pred's dtype; null: not requested
  Output values;            // (B, 1, H, W) per-pixel value (acc_t); null: not requested
  acc_t* sums = nullptr;    // (B, kAgSums)
};


// alpha_gradient_combine_: maps[0] <- grad_output * sum_g factors[g][b] * maps[g], in place.
template <typename acc_t>
struct AlphaCombineArgs {
  int64_t groups = 0, batch = 0, pixels = 0;  // pixels: H * W of one map of one sample
  Input maps;                                 // (groups, B, 1, H, W), read
  Output out;                                 // the same storage: map 0 written
  const acc_t* factors = nullptr;             // (groups, B)
  const acc_t* grad_output = nullptr;         // one value
};

}  // namespace mattingloss
