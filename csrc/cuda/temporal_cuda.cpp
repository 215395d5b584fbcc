// CUDA registration of temporal_loss_forward: device guard, scratch, launch
// on the current stream. No host synchronisation (CUDA-graph safe).
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../temporal_host.h"
#include "temporal_kernel.h"

namespace mattingloss {
namespace {

template <typename acc_t>
void launch(const TemporalArgs<acc_t>& args, const at::Tensor& like) {
  const int64_t blocks = temporal_cuda_blocks(args.batch, args.pixels);
  const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
  at::Tensor scratch = at::empty({blocks * 4}, like.options().dtype(acc));
  at::Tensor counter = at::zeros({1}, like.options().dtype(at::kInt));
  C10_CUDA_CHECK(launch_temporal_forward(
      args, reinterpret_cast<TemporalSums<acc_t>*>(scratch.mutable_data_ptr<acc_t>()),
      reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()), c10::cuda::getCurrentCUDAStream()));
}

TemporalResult temporal_loss_forward_cuda(const at::Tensor& pred_fgr, const at::Tensor& pred_pha,
                                          const at::Tensor& true_fgr, const at::Tensor& true_pha,
                                          double true_fgr_scale, double true_pha_scale, double w_pha_l1,
                                          double w_pha_coherence, double w_fgr_l1, double w_fgr_coherence,
                                          bool grad_fgr, bool grad_pha) {
  const c10::cuda::CUDAGuard guard(pred_pha.device());
  TemporalOp op = prepare_temporal(pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale,
                                   w_pha_l1, w_pha_coherence, w_fgr_l1, w_fgr_coherence, grad_fgr, grad_pha);
  if (op.use_double) {
    launch(op.f64, pred_pha);
  } else {
    launch(op.f32, pred_pha);
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("temporal_loss_forward", &temporal_loss_forward_cuda); }

}  // namespace mattingloss
