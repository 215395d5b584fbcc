// Host side of temporal_loss_forward, shared by the CPU and CUDA
// registrations: checks the raw op's arguments (the Python API checks first,
// with friendlier messages; these keep a direct torch.ops call from reading
// out of bounds), allocates the outputs and fills TemporalArgs;
// temporal_loss_forward<Backend> is the op for a backend that gives its device
// guard and run<acc_t>.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "common/host_tensors.h"
#include "temporal.h"

namespace mattingloss {

// (total, terms, grad_fgr, grad_pha)
using TemporalResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct TemporalOp {
  TemporalResult outputs;
  TemporalArgs<float> f32;
  TemporalArgs<double> f64;
  bool use_double = false;
};

TemporalOp prepare_temporal(const at::Tensor& pred_fgr, const at::Tensor& pred_pha, const at::Tensor& true_fgr,
                            const at::Tensor& true_pha, double true_fgr_scale, double true_pha_scale,
                            double w_pha_l1, double w_pha_coherence, double w_fgr_l1, double w_fgr_coherence,
                            bool grad_fgr, bool grad_pha);

template <typename Backend>
TemporalResult temporal_loss_forward(const at::Tensor& pred_fgr, const at::Tensor& pred_pha,
                                     const at::Tensor& true_fgr, const at::Tensor& true_pha, double true_fgr_scale,
                                     double true_pha_scale, double w_pha_l1, double w_pha_coherence, double w_fgr_l1,
                                     double w_fgr_coherence, bool grad_fgr, bool grad_pha) {
  const typename Backend::Guard guard(pred_pha.device());
  TemporalOp op = prepare_temporal(pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale,
                                   w_pha_l1, w_pha_coherence, w_fgr_l1, w_fgr_coherence, grad_fgr, grad_pha);
  return run_in_acc_type<Backend>(op, pred_pha);
}

}  // namespace mattingloss
