// Host side of temporal_loss_forward, the op's only torch-including file:
// checks the raw op's arguments (the Python API checks first, with friendlier
// messages; these keep a direct torch.ops call from reading out of bounds),
// allocates the outputs, fills TemporalArgs and runs the backend's kernel
// (../temporal.h declares both); the CPU and CUDA registrations.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <tuple>

#include "common/host_tensors.h"
#include "temporal.h"
#ifdef MATTINGLOSS_CUDA
#include "common/cuda_host.h"
#endif

namespace mattingloss {
namespace {

// (total, terms, grad_fgr, grad_pha)
using TemporalResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct TemporalOp {
  TemporalResult outputs;
  TemporalArgs<float> f32;
  TemporalArgs<double> f64;
  bool use_double = false;
};

void check_video(const at::Tensor& t, const char* name, const at::Tensor& pha, int64_t channels) {
  TORCH_CHECK(t.dim() == 5 && t.size(0) == pha.size(0) && t.size(1) == pha.size(1) && t.size(2) == channels &&
                  t.size(3) == pha.size(3) && t.size(4) == pha.size(4),
              "mattingloss: ", name, " has shape ", t.sizes(), ", expected (", pha.size(0), ", ", pha.size(1),
              ", ", channels, ", ", pha.size(3), ", ", pha.size(4), ")");
  TORCH_CHECK(t.is_contiguous(), "mattingloss: ", name, " must be contiguous");
  TORCH_CHECK(t.device() == pha.device(), "mattingloss: ", name, " is on ", t.device(), ", pred_pha on ",
              pha.device());
}

template <typename acc_t>
void fill(TemporalArgs<acc_t>& a, const at::Tensor& pred_fgr, const at::Tensor& pred_pha,
          const at::Tensor& true_fgr, const at::Tensor& true_pha, double fgr_scale, double pha_scale,
          const double (&weights)[4], const TemporalResult& out) {
  const int64_t B = pred_pha.size(0), T = pred_pha.size(1), HW = pred_pha.size(3) * pred_pha.size(4);
  a.batch = B;
  a.frames = T;
  a.pixels = HW;
  // Element counts as double: exact up to 2^53, past any tensor that fits in memory.
  const double pha = double(B) * double(T) * double(HW);
  const double pha_coh = double(B) * double(T - 1) * double(HW);
  const double counts[4] = {pha, pha_coh, 3 * pha, 3 * pha_coh};
  double k[4];
  for (int i = 0; i < 4; ++i) {
    a.counts[i] = counts[i];
    a.weights[i] = weights[i];
    k[i] = counts[i] > 0 ? weights[i] / counts[i] : 0.0;
  }
  a.params = {acc_t(pha_scale), acc_t(fgr_scale), acc_t(k[0]), acc_t(5 * k[1]), acc_t(k[2]), acc_t(5 * k[3])};
  a.pred_fgr = input(pred_fgr, "pred_fgr");
  a.pred_pha = input(pred_pha, "pred_pha");
  a.true_fgr = input(true_fgr, "true_fgr");
  a.true_pha = input(true_pha, "true_pha");
  const auto& [total, terms, grad_fgr, grad_pha] = out;
  a.grad_fgr = output(grad_fgr);
  a.grad_pha = output(grad_pha);
  a.total = total.mutable_data_ptr<acc_t>();
  a.terms = terms.mutable_data_ptr<acc_t>();
}

TemporalOp prepare_temporal(const at::Tensor& pred_fgr, const at::Tensor& pred_pha, const at::Tensor& true_fgr,
                            const at::Tensor& true_pha, double true_fgr_scale, double true_pha_scale,
                            double w_pha_l1, double w_pha_coherence, double w_fgr_l1, double w_fgr_coherence,
                            bool grad_fgr, bool grad_pha) {
  TORCH_CHECK(pred_pha.dim() == 5 && pred_pha.size(2) == 1, "mattingloss: pred_pha has shape ", pred_pha.sizes(),
              ", expected (B, T, 1, H, W)");
  TORCH_CHECK(pred_pha.numel() > 0, "mattingloss: pred_pha is empty");
  TORCH_CHECK(pred_pha.is_contiguous(), "mattingloss: pred_pha must be contiguous");
  check_video(true_pha, "true_pha", pred_pha, 1);
  check_video(pred_fgr, "pred_fgr", pred_pha, 3);
  check_video(true_fgr, "true_fgr", pred_pha, 3);
  for (const at::Tensor* p : {&pred_pha, &pred_fgr}) {
    const auto s = p->scalar_type();
    TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16,
                "mattingloss: predictions must be float16, bfloat16, float32 or float64, got ", s);
  }
  TORCH_CHECK(true_fgr_scale > 0 && true_pha_scale > 0 && std::isfinite(true_fgr_scale) &&
                  std::isfinite(true_pha_scale),
              "mattingloss: target scales must be finite and > 0");
  const double weights[4] = {w_pha_l1, w_pha_coherence, w_fgr_l1, w_fgr_coherence};
  for (double w : weights) TORCH_CHECK(std::isfinite(w), "mattingloss: weights must be finite");

  // float64 accumulation when either prediction is float64 (a float64 run is
  // a check against the float64 reference).
  const bool use_double = pred_pha.scalar_type() == at::kDouble || pred_fgr.scalar_type() == at::kDouble;
  const auto opts = pred_pha.options().dtype(use_double ? at::kDouble : at::kFloat);
  TemporalOp op;
  op.use_double = use_double;
  op.outputs = TemporalResult(at::empty({}, opts), at::empty({4}, opts),
                              grad_fgr ? at::empty(pred_fgr.sizes(), pred_fgr.options()) : at::empty({0}, opts),
                              grad_pha ? at::empty(pred_pha.sizes(), pred_pha.options()) : at::empty({0}, opts));
  for_acc_type(op, [&](auto& args) {
    fill(args, pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale, weights, op.outputs);
  });
  return op;
}

}  // namespace

template <typename acc_t>
void run(CpuBackend, const TemporalArgs<acc_t>& a, const at::Tensor&) {
  temporal_cpu(a);
}

#ifdef MATTINGLOSS_CUDA
// No host synchronisation (CUDA-graph safe).
template <typename acc_t>
void run(CudaBackend, const TemporalArgs<acc_t>& a, const at::Tensor& like) {
  launch_with_ticket<acc_t>(like, temporal_cuda_blocks(a.batch, a.pixels), &launch_temporal_forward<acc_t>, a);
}
#endif

template <typename Backend>
TemporalResult temporal_loss_forward(const at::Tensor& pred_fgr, const at::Tensor& pred_pha,
                                     const at::Tensor& true_fgr, const at::Tensor& true_pha, double true_fgr_scale,
                                     double true_pha_scale, double w_pha_l1, double w_pha_coherence, double w_fgr_l1,
                                     double w_fgr_coherence, bool grad_fgr, bool grad_pha) {
  return run_op<Backend>(pred_pha, [&] {
    return prepare_temporal(pred_fgr, pred_pha, true_fgr, true_pha, true_fgr_scale, true_pha_scale, w_pha_l1,
                            w_pha_coherence, w_fgr_l1, w_fgr_coherence, grad_fgr, grad_pha);
  });
}

MATTINGLOSS_IMPL("temporal_loss_forward", temporal_loss_forward)

}  // namespace mattingloss
