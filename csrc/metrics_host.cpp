// Host side of the evaluation metrics, the op's only torch-including file:
// checks the raw op's arguments (mattingloss/metrics.py checks first, with
// friendlier messages; these keep a direct torch.ops call from reading out of
// bounds), allocates the outputs and the CUDA scratch, fills MetricsArgs and
// runs the backend's kernel (../metrics.h declares both); the CPU and CUDA
// registrations. The schema is in ops.cpp with every other op's.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <limits>
#include <tuple>

#include "common/defs.h"
#include "common/host_tensors.h"
#include "metrics.h"
#ifdef MATTINGLOSS_CUDA
#include "common/cuda_host.h"
#endif

namespace mattingloss {
namespace metrics {
namespace {

// (sums (B, kSums) float64, levels (B, 1, H, W) uint8 or (0,))
using MetricsResult = std::tuple<at::Tensor, at::Tensor>;

Dtype metrics_dtype(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kByte: return Dtype::kUInt8;
    case at::kFloat: return Dtype::kFloat;
    case at::kDouble: return Dtype::kDouble;
    default: TORCH_CHECK(false, "mattingloss: matting_metrics reads ", name, " as uint8, float32 or float64, got ",
                         t.scalar_type());
  }
}

MetricsArgs prepare_metrics(const at::Tensor& pred, const at::Tensor& gt, const at::Tensor& region,
                                   int64_t convention, double pred_factor, double gt_factor,
                                   c10::ArrayRef<double> thresholds, c10::ArrayRef<double> taps, bool gradient,
                                   bool connectivity, bool levels, MetricsResult& out) {
  TORCH_CHECK(pred.dim() == 4 && pred.size(1) == 1 && pred.numel() > 0, "mattingloss: pred has shape ",
              pred.sizes(), ", expected a non-empty (B, 1, H, W)");
  for (const auto* t : {&gt, &region}) {
    TORCH_CHECK(t->sizes() == pred.sizes(), "mattingloss: matting_metrics inputs differ in shape: ", t->sizes(),
                " vs ", pred.sizes());
    TORCH_CHECK(t->device() == pred.device(), "mattingloss: matting_metrics inputs on different devices");
  }
  TORCH_CHECK(pred.is_contiguous() && gt.is_contiguous() && region.is_contiguous(),
              "mattingloss: matting_metrics inputs must be contiguous");
  TORCH_CHECK(region.scalar_type() == at::kByte, "mattingloss: region must be a uint8 0/1 mask");
  TORCH_CHECK(convention >= 0 && convention < kConventions, "mattingloss: unknown convention ", convention);
  TORCH_CHECK(thresholds.size() == kLevels, "mattingloss: expected ", kLevels, " thresholds");
  // p3m's filter is scipy's 13-tap Gaussian and its derivative; the others' the 9 + 9 factors
  const size_t n_taps = convention == kP3m ? 2 * kP3mTaps : 2 * kTaps;
  TORCH_CHECK(taps.size() == n_taps, "mattingloss: expected ", n_taps, " filter taps for convention ", convention);
  const int64_t B = pred.size(0), H = pred.size(2), W = pred.size(3);
  TORCH_CHECK(H * W < std::numeric_limits<int32_t>::max(), "mattingloss: matting_metrics handles images of fewer "
              "than 2^31 pixels");
  MetricsArgs a{};
  a.params.convention = convention;
  a.params.pred_factor = pred_factor;
  a.params.gt_factor = gt_factor;
  for (int i = 0; i < kLevels; ++i) a.params.thresholds[i] = thresholds[i];
  if (convention == kP3m) {
    for (int k = 0; k < kP3mTaps; ++k) {
      a.params.p3m_g[k] = taps[k];
      a.params.p3m_d[k] = taps[kP3mTaps + k];
    }
    // scipy pairs the taps of a symmetric or antisymmetric kernel (metrics.h p3m_sym,
    // p3m_anti): the kernels reproduce those sums only
    for (int k = 0; k < kP3mTaps; ++k)
      TORCH_CHECK(a.params.p3m_g[k] == a.params.p3m_g[kP3mTaps - 1 - k] &&
                      a.params.p3m_d[k] == -a.params.p3m_d[kP3mTaps - 1 - k],
                  "mattingloss: matting_metrics expects a symmetric Gaussian and an antisymmetric derivative");
  } else {
    for (int k = 0; k < kTaps; ++k) {
      a.params.taps_g[k] = taps[k];
      a.params.taps_d[k] = taps[kTaps + k];
    }
  }
  // the kernels pair the taps (metrics.h dot_sym, dot_anti)
  for (int k = 0; k < kTaps && convention != kP3m; ++k)
    TORCH_CHECK(a.params.taps_g[k] == a.params.taps_g[kTaps - 1 - k] &&
                    a.params.taps_d[k] == -a.params.taps_d[kTaps - 1 - k],
                "mattingloss: matting_metrics expects a symmetric Gaussian factor and an antisymmetric "
                "derivative factor");
  // p3m reads 0..1 alphas: x / scale, with scale = 255 / factor (exact for the
  // scales 1 and 255)
  a.pred = {pred.const_data_ptr(), metrics_dtype(pred, "pred"), pred_factor,
            convention == kP3m ? 255.0 / pred_factor : 0.0};
  a.gt = {gt.const_data_ptr(), metrics_dtype(gt, "gt"), gt_factor, convention == kP3m ? 255.0 / gt_factor : 0.0};
  a.region = region.const_data_ptr<uint8_t>();
  a.batch = B;
  a.height = H;
  a.width = W;
  a.gradient = gradient;
  a.connectivity = connectivity;
  at::Tensor sums = at::empty({B, kSums}, pred.options().dtype(at::kDouble));
  at::Tensor lv = levels && connectivity ? at::empty({B, 1, H, W}, pred.options().dtype(at::kByte))
                                         : at::empty({0}, pred.options().dtype(at::kByte));
  a.sums = sums.mutable_data_ptr<double>();
  a.levels = lv.numel() ? lv.mutable_data_ptr<uint8_t>() : nullptr;
  out = {sums, lv};
  return a;
}

}  // namespace

void run(CpuBackend, const MetricsArgs& args, const at::Tensor&) { metrics_cpu(args); }

#ifdef MATTINGLOSS_CUDA
// Scratch from the caching allocator, the launch on the current stream: no
// host synchronisation (CUDA-graph safe).
void run(CudaBackend, const MetricsArgs& args, const at::Tensor& pred) {
  int64_t bytes[kScratchBuffers];
  metrics_scratch_sizes(args.batch, args.height, args.width, args.levels == nullptr, args.connectivity, bytes);
  int64_t total = 0;
  int64_t offset[kScratchBuffers];
  for (int k = 0; k < kScratchBuffers; ++k) {
    offset[k] = total;
    total += (bytes[k] + 255) / 256 * 256;  // each buffer 256-byte aligned
  }
  at::Tensor scratch = at::empty({total > 0 ? total : 1}, pred.options().dtype(at::kByte));
  char* base = reinterpret_cast<char*>(scratch.mutable_data_ptr<uint8_t>());
  MetricsScratch s;
  s.norms = reinterpret_cast<Norm*>(base + offset[0]);
  s.q = reinterpret_cast<uint8_t*>(base + offset[1]);
  s.level = args.levels ? args.levels : reinterpret_cast<uint8_t*>(base + offset[2]);
  s.parent = reinterpret_cast<int32_t*>(base + offset[3]);
  s.size = reinterpret_cast<uint32_t*>(base + offset[4]);
  s.key = reinterpret_cast<uint32_t*>(base + offset[5]);
  s.best = reinterpret_cast<unsigned long long*>(base + offset[6]);
  s.masked = reinterpret_cast<unsigned long long*>(base + offset[7]);
  s.rows = reinterpret_cast<double*>(base + offset[8]);
  C10_CUDA_CHECK(launch_matting_metrics(args, s, c10::cuda::getCurrentCUDAStream()));
}
#endif

template <typename Backend>
MetricsResult matting_metrics(const at::Tensor& pred, const at::Tensor& gt, const at::Tensor& region,
                              int64_t convention, double pred_factor, double gt_factor,
                              c10::ArrayRef<double> thresholds, c10::ArrayRef<double> taps, bool gradient,
                              bool connectivity, bool levels) {
  const typename Backend::Guard guard(pred.device());
  MetricsResult out;
  const MetricsArgs args = prepare_metrics(pred, gt, region, convention, pred_factor, gt_factor, thresholds, taps,
                                           gradient, connectivity, levels, out);
  run(Backend{}, args, pred);
  return out;
}

MATTINGLOSS_IMPL("matting_metrics", matting_metrics)

}  // namespace metrics
}  // namespace mattingloss
