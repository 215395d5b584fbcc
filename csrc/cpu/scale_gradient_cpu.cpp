// CPU backend of scale_gradient_: blocks of the gradient in parallel, each read
// in place (or converted into a staging row when it is not the accumulation
// type), multiplied and written back. A factor of 1 returns at once.
#include <torch/library.h>

#include <algorithm>

#include "../common/cpu_convert.h"
#include "../common/cpu_parallel.h"
#include "../common/cpu_rows.h"
#include "../scale_gradient_host.h"

namespace mattingloss {
namespace {

constexpr int64_t kBlock = 4096;

template <typename acc_t>
ML_CPU_CLONES void scale_block(const acc_t* in, acc_t factor, int64_t n, acc_t* out) {
#pragma GCC ivdep  // in and out are the same elements or disjoint rows
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] * factor;
}

template <typename acc_t>
void scale(const ScaleGradientArgs<acc_t>& a) {
  const acc_t factor = *a.factor;
  if (factor == acc_t(1)) return;  // x * 1 is x, bitwise
  parallel_chunks((a.numel + kBlock - 1) / kBlock, 1, [&](ChunkQueue& queue) {
    PaddedRows<acc_t> staging(2, kBlock);
    for (int64_t block; queue.next(block);) {
      const int64_t first = block * kBlock, n = std::min(kBlock, a.numel - first);
      const acc_t* in = read(a.in, first, n, staging[0]);
      acc_t* out = target(a.out, first, staging[1]);
      scale_block(in, factor, n, out);
      write_back(a.out, first, n, out);
    }
  });
}

struct ScaleGradientCpu : CpuBackend {
  template <typename acc_t>
  static void run(const ScaleGradientArgs<acc_t>& a) {
    scale(a);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CPU, m) { m.impl("scale_gradient_", &scale_gradient<ScaleGradientCpu>); }

}  // namespace mattingloss
