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
  AlphaGradParams<acc_t> params{};  // zeros where an op fills only some (alpha_gradient_weights)
  int64_t batch = 0, height = 0, width = 0;
  int64_t groups = 0;       // gradient maps written (1..kMaxGroups); 1 with factors
  Input pred, gt, mask;     // (B,1,H,W); mask.data is null for kAgNoMask
  Output grad;              // (groups, B, 1, H, W) in pred's dtype; null: not requested
  // (params.group's maps, B): when given, every term's gradient times its map's
  // factor goes to the one map written (scale_coefs_for_sample).
  const acc_t* factors = nullptr;
  Output values;            // (B, 1, H, W) per-pixel value (acc_t); null: not requested
  acc_t* sums = nullptr;    // (B, kAgSums)
};

}  // namespace mattingloss
