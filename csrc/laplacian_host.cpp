// Host side of the Laplacian loss, the op's only torch-including file: checks
// the raw op's arguments (the Python API checks first, with friendlier
// messages; these keep a direct torch.ops call from reading out of bounds),
// allocates the outputs and scratch, fills lap::Args and runs the backend's
// kernel (../laplacian.h declares both); the CPU and CUDA registrations.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "common/host_tensors.h"
#include "laplacian.h"
#ifdef MATTINGLOSS_CUDA
#include "common/cuda_host.h"
#endif

namespace mattingloss {
namespace {

using LaplacianResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // loss, level_losses, grad_pred

struct LaplacianOp {
  LaplacianResult outputs;
  at::Tensor scratch;
  lap::Args<float> f32;
  lap::Args<double> f64;
  bool use_double = false;
};

void check_like(const at::Tensor& t, const char* name, const at::Tensor& pred) {
  TORCH_CHECK(t.sizes() == pred.sizes(), "mattingloss: ", name, " has shape ", t.sizes(), ", expected ",
              pred.sizes());
  TORCH_CHECK(t.is_contiguous(), "mattingloss: ", name, " must be contiguous");
  TORCH_CHECK(t.device() == pred.device(), "mattingloss: ", name, " is on ", t.device(), ", pred on ",
              pred.device());
}

template <typename acc_t>
void fill(lap::Args<acc_t>& a, const lap::Geometry& geo, const at::Tensor& pred, const at::Tensor& gt,
          const std::optional<at::Tensor>& weight, c10::ArrayRef<double> level_weights, int64_t padding,
          int64_t weight_mode, double gt_scale, double mask_numer, LaplacianOp& op) {
  a.geo = geo;
  a.planes = pred.numel() / (geo.H[0] * geo.W[0]);
  a.padding = padding;
  a.weight_mode = weight_mode;
  for (size_t i = 0; i < level_weights.size(); ++i) a.level_weights[i] = level_weights[i];
  a.gt_scale = acc_t(gt_scale);
  a.mask_numer = acc_t(mask_numer);
  a.pred = input(pred, "pred");
  a.gt = input(gt, "gt");
  if (weight.has_value()) a.weight = input(*weight, "weight");
  const auto& [loss, level_losses, grad] = op.outputs;
  a.grad = output(grad);
  a.loss = loss.mutable_data_ptr<acc_t>();
  a.level_losses = level_losses.mutable_data_ptr<acc_t>();
  a.scratch = op.scratch.mutable_data_ptr<acc_t>();
}

LaplacianOp prepare_laplacian(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight,
                              int64_t levels, c10::ArrayRef<double> level_weights, int64_t padding,
                              bool crop_to_even, int64_t weight_mode, double gt_scale, double mask_numer,
                              bool grad_pred, const std::optional<at::Tensor>& grad_base, double grad_coef) {
  // (..., H, W): every leading index its own image (the presets pass RVM's (B, T, 1, H, W) as it is).
  TORCH_CHECK(pred.dim() >= 3, "mattingloss: pred has shape ", pred.sizes(), ", expected (B, C, H, W)");
  TORCH_CHECK(pred.numel() > 0, "mattingloss: pred is empty");
  TORCH_CHECK(at::isFloatingType(pred.scalar_type()), "mattingloss: pred must be floating, got ",
              pred.scalar_type());
  TORCH_CHECK(pred.is_contiguous(), "mattingloss: pred must be contiguous");
  check_like(gt, "gt", pred);
  TORCH_CHECK(weight_mode >= lap::kNoWeight && weight_mode <= lap::kMaskBefore, "mattingloss: bad weight_mode ",
              weight_mode);
  TORCH_CHECK(weight.has_value() == (weight_mode != lap::kNoWeight),
              "mattingloss: a weight goes with weight_mode 1 or 2, got weight_mode ", weight_mode);
  if (weight.has_value()) check_like(*weight, "weight", pred);
  TORCH_CHECK(padding == lap::kReflect || padding == lap::kReplicate, "mattingloss: bad padding ", padding);
  TORCH_CHECK(levels >= 1 && levels <= lap::kMaxLevels, "mattingloss: levels must be in [1, ", lap::kMaxLevels,
              "], got ", levels);
  TORCH_CHECK(static_cast<int64_t>(level_weights.size()) == levels, "mattingloss: ", levels,
              " levels but ", level_weights.size(), " level weights");
  TORCH_CHECK(gt_scale > 0, "mattingloss: gt_scale must be > 0, got ", gt_scale);
  lap::Geometry geo;
  TORCH_CHECK(lap::make_geometry(pred.size(-2), pred.size(-1), levels, crop_to_even, padding, geo),
              "mattingloss: a ", pred.size(-2), " x ", pred.size(-1), " image has no ", levels,
              "-level pyramid with this padding", crop_to_even ? "" : " without cropping");

  const bool use_double = pred.scalar_type() == at::kDouble;
  const auto acc = use_double ? at::kDouble : at::kFloat;
  const auto opts = pred.options().dtype(acc);
  if (grad_base.has_value()) {
    const at::Tensor& base = *grad_base;
    TORCH_CHECK(grad_pred, "mattingloss: grad_base needs grad_pred");
    // Any shape of pred's element count: read in pred's element order.
    TORCH_CHECK(base.numel() == pred.numel() && base.is_contiguous() && base.device() == pred.device() &&
                    at::isFloatingType(base.scalar_type()),
                "mattingloss: grad_base must be a contiguous floating tensor of ", pred.numel(),
                " elements on pred's device, got ", base.scalar_type(), " ", base.sizes(), " on ", base.device());
  }
  LaplacianOp op;
  op.use_double = use_double;
  op.outputs = LaplacianResult(at::empty({}, opts), at::empty({levels}, opts),
                               grad_pred ? at::empty(pred.sizes(), pred.options()) : at::empty({0}, pred.options()));
  int64_t offset[lap::kMaxLevels + 1], adjoint_offset[lap::kMaxLevels + 1];
  const int64_t planes = pred.numel() / (geo.H[0] * geo.W[0]);
  op.scratch = at::empty({lap::scratch_layout(geo, planes, grad_pred, offset, adjoint_offset)}, opts);
  auto finish = [&](auto& a) {
    fill(a, geo, pred, gt, weight, level_weights, padding, weight_mode, gt_scale, mask_numer, op);
    if (grad_base.has_value()) {
      using acc_t = std::remove_reference_t<decltype(*a.loss)>;
      a.base = input(*grad_base, "grad_base");
      a.has_base = true;
      a.own_coef = acc_t(grad_coef);
    }
    for (int64_t l = 0; l <= levels; ++l) {
      a.offset[l] = offset[l];
      a.adjoint_offset[l] = adjoint_offset[l];
    }
  };
  for_acc_type(op, finish);
  return op;
}

}  // namespace

template <typename acc_t>
void run(CpuBackend, const lap::Args<acc_t>& a, const at::Tensor&) {
  laplacian_cpu(a);
}

#ifdef MATTINGLOSS_CUDA
// No host synchronisation.
template <typename acc_t>
void run(CudaBackend, const lap::Args<acc_t>& args, const at::Tensor& pred) {
  const LapCudaLayout layout = lap_cuda_layout(args.geo, args.planes, args.weight_mode, args.grad.data != nullptr);
  const auto acc = sizeof(acc_t) == sizeof(double) ? at::kDouble : at::kFloat;
  at::Tensor partials = at::empty({layout.total}, pred.options().dtype(acc));
  C10_CUDA_CHECK(launch_laplacian_forward(args, layout, partials.mutable_data_ptr<acc_t>(),
                                          c10::cuda::getCurrentCUDAStream()));
}
#endif

template <typename Backend>
LaplacianResult laplacian_loss_forward(const at::Tensor& pred, const at::Tensor& gt,
                                       const std::optional<at::Tensor>& weight, int64_t levels,
                                       c10::ArrayRef<double> level_weights, int64_t padding, bool crop_to_even,
                                       int64_t weight_mode, double gt_scale, double mask_numer, bool grad_pred,
                                       const std::optional<at::Tensor>& grad_base, double grad_coef) {
  return run_op<Backend>(pred, [&] {
    return prepare_laplacian(pred, gt, weight, levels, level_weights, padding, crop_to_even, weight_mode, gt_scale,
                             mask_numer, grad_pred, grad_base, grad_coef);
  });
}

MATTINGLOSS_IMPL("laplacian_loss_forward", laplacian_loss_forward)

}  // namespace mattingloss
