// CPU backend of scale_gradient_: blocks of each sample in parallel, each read
// in place (or converted into a staging row when it is not the accumulation
// type), multiplied by the sample's factor and written back. A sample whose
// factor is 1 is left as it is.
#include <algorithm>

#include "../common/cpu_convert.h"
#include "../common/cpu_parallel.h"
#include "../common/cpu_rows.h"
#include "../scale_gradient.h"

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
  const int64_t blocks = (a.per_sample + kBlock - 1) / kBlock;
  parallel_chunks(a.samples * blocks, 1, [&](ChunkQueue& queue) {
    PaddedRows<acc_t> staging(2, kBlock);
    for (int64_t chunk; queue.next(chunk);) {
      const int64_t s = chunk / blocks;
      const acc_t factor = sample_factor(a, s);
      if (factor == acc_t(1)) continue;  // x * 1 is x, bitwise
      const int64_t within = (chunk % blocks) * kBlock;
      const int64_t first = s * a.per_sample + within, n = std::min(kBlock, a.per_sample - within);
      const acc_t* in = read(a.in, first, n, staging[0]);
      acc_t* out = target(a.out, first, staging[1]);
      scale_block(in, factor, n, out);
      write_back(a.out, first, n, out);
    }
  });
}

}  // namespace

template <typename acc_t>
void scale_gradient_cpu(const ScaleGradientArgs<acc_t>& a) {
  scale(a);
}

template void scale_gradient_cpu<float>(const ScaleGradientArgs<float>&);
template void scale_gradient_cpu<double>(const ScaleGradientArgs<double>&);

}  // namespace mattingloss
