// Host side of the pointwise losses (pointwise.h), written once for DIM and
// composition: the inputs and outputs every one of them fills alike, and each
// backend's run of the loss its kernel arguments name (Args::Policy), for
// run_op (host_tensors.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

#include "../codes.h"
#include "host_tensors.h"
#include "pointwise.h"
#ifdef MATTINGLOSS_CUDA
#include "cuda_host.h"
#endif

namespace mattingloss {

inline const at::Tensor* optional_ptr(const std::optional<at::Tensor>& t) { return t.has_value() ? &*t : nullptr; }

// The tensors of a pointwise kernel's PointwiseIO. mask (nullptr for
// kAllPixels) and image/fg/bg (nullptr without them) as given; loss is the
// per-pixel map for reduction "none", else the scalar.
template <typename acc_t>
void fill_io(PointwiseIO<acc_t>& a, const at::Tensor& pred, const at::Tensor* mask, const at::Tensor* image,
             const at::Tensor* fg, const at::Tensor* bg, int64_t reduction, const at::Tensor& loss,
             const at::Tensor& scale, const at::Tensor& grad_pred, const at::Tensor& grad_fg,
             const at::Tensor& grad_bg) {
  a.batch = pred.size(0);
  a.pixels = pred.size(2) * pred.size(3);
  a.pred = input(pred, "pred_alpha");
  if (mask) a.mask = input(*mask, "mask");
  if (image) {
    a.image = input(*image, "image");
    a.fg = input(*fg, "fg");
    a.bg = input(*bg, "bg");
  }
  a.grad_pred = output(grad_pred);
  a.grad_fg = output(grad_fg);
  a.grad_bg = output(grad_bg);
  if (reduction == kNone) {
    a.loss_map = loss.mutable_data_ptr<acc_t>();
  } else {
    a.loss = loss.mutable_data_ptr<acc_t>();
  }
  a.scale = scale.mutable_data_ptr<acc_t>();
}

template <typename Args, typename Policy = typename Args::Policy>
void run(CpuBackend, const Args& a, const at::Tensor&) {
  pointwise_cpu<Policy>(a);
}

#ifdef MATTINGLOSS_CUDA
// No host synchronisation: everything, the final reduction included, is
// enqueued on the current stream.
template <typename Args, typename Policy = typename Args::Policy>
void run(CudaBackend, const Args& a, const at::Tensor& pred) {
  launch_with_ticket<typename Policy::Acc>(pred, gpu::point_scratch_sums(a.batch, a.pixels), &launch_pointwise<Policy>,
                                           a);
}
#endif

}  // namespace mattingloss
