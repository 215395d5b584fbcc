// The schema of the evaluation metrics' op (mattingloss/metrics.py), in its own
// fragment of the mattingloss library; the CPU and CUDA kernels register in
// csrc/cpu/metrics_cpu.cpp and csrc/cuda/metrics_cuda.cpp, the fake kernel in Python.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattingloss, m) {
  // Per sample, the sums every convention's four metrics are made of
  // (csrc/metrics.h MetricSum): SAD and MSE numerators over the region and over
  // the whole image, the region's pixel count, the gradient and connectivity
  // sums (0 where not requested), as float64 (B, 7); and, when `levels`, each
  // pixel's connectivity level k (l = thresholds[k]) as uint8 (B, 1, H, W).
  // pred, gt: (B, 1, H, W) uint8/float32/float64, 0..255 after * factor;
  // region: uint8 0/1; thresholds: 11; taps: the filter's Gaussian and
  // derivative factors (9 + 9).
  m.def(
      "matting_metrics(Tensor pred, Tensor gt, Tensor region, int convention, float pred_factor, "
      "float gt_factor, float[] thresholds, float[] taps, bool gradient, bool connectivity, bool levels) "
      "-> (Tensor sums, Tensor levels)");
}
