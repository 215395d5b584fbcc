// What a backend's DIM forward kernel gets: raw pointers, the dtype of each
// input (read as stored, converted per element to the accumulation type), sizes
// and the loss parameters. Plain data with no ATen types, so the .cu file needs
// no torch headers. Filled by prepare_forward() in dim_loss_host.cpp.
#pragma once

#include <cstdint>

#include "common/defs.h"
#include "dim_loss.h"

namespace mattingloss {

template <typename acc_t>
struct ForwardArgs {
  LossParams<acc_t> params;
  int64_t batch = 0;
  int64_t pixels = 0;  // H * W per sample
  bool has_comp = false;
  Input pred, alpha, mask, image, fg, bg;
  Output grad_pred, grad_fg, grad_bg;  // per-pixel gradients, before the reduction's scale
  acc_t* loss_map = nullptr;    // (B,1,H,W) per-pixel loss, only for reduction="none"
  acc_t* loss = nullptr;        // the scalar loss, except for reduction="none"
  acc_t* components = nullptr;  // [alpha loss, comp loss]
  acc_t* scale = nullptr;       // (B,) backward scale per sample
};

}  // namespace mattingloss
