// CUDA registration of matting_metrics: device guard, scratch, launch on the
// current stream. No host synchronisation (CUDA-graph safe).
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../metrics_host.h"
#include "metrics_kernel.h"

namespace mattingloss {
namespace metrics {
namespace {

MetricsResult matting_metrics_cuda(const at::Tensor& pred, const at::Tensor& gt, const at::Tensor& region,
                                   int64_t convention, double pred_factor, double gt_factor,
                                   c10::ArrayRef<double> thresholds, c10::ArrayRef<double> taps, bool gradient,
                                   bool connectivity, bool levels) {
  const c10::cuda::CUDAGuard guard(pred.device());
  MetricsResult out;
  const MetricsArgs args = prepare_metrics(pred, gt, region, convention, pred_factor, gt_factor, thresholds, taps,
                                           gradient, connectivity, levels, out);
  TORCH_CHECK(args.batch <= 65535, "mattingloss: matting_metrics on CUDA takes at most 65535 samples per call");
  int64_t bytes[9];
  metrics_scratch_sizes(args.batch, args.height, args.width, args.levels == nullptr, bytes);
  int64_t total = 0;
  int64_t offset[9];
  for (int k = 0; k < 9; ++k) {
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
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl("matting_metrics", &matting_metrics_cuda); }

}  // namespace metrics
}  // namespace mattingloss
