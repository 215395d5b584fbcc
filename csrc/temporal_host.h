// Host-side glue shared by the CPU and CUDA registrations of
// temporal_loss_forward: checks the raw op's arguments (the Python API checks
// first, with friendlier messages; these keep a direct torch.ops call from
// reading out of bounds), allocates the outputs and fills TemporalArgs.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

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

}  // namespace mattingloss
