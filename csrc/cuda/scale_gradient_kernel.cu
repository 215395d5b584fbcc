// CUDA backend of scale_gradient_: blockIdx.y a sample (strided past the
// grid's limit), a grid-stride loop over its elements, kVec per step of a
// thread (one 16-byte access for float32 when aligned). Each block reads its
// sample's factor on the device (no host sync) and returns at once when it is 1.
#include <algorithm>

#include "../common/cuda_memory.cuh"
#include "../scale_gradient.h"

namespace mattingloss {
namespace {

constexpr int kThreads = 256;
constexpr int kVec = 4;
constexpr int64_t kMaxBlocks = 4096;  // several waves on any GPU; the grid strides past that
constexpr int64_t kMaxSampleBlocks = 65535;  // gridDim.y's limit

template <typename acc_t>
__global__ void __launch_bounds__(kThreads) scale_kernel(const ScaleGradientArgs<acc_t> a, const bool vec) {
  for (int64_t s = blockIdx.y; s < a.samples; s += gridDim.y) {
    const acc_t factor = sample_factor(a, s);
    if (factor == acc_t(1)) continue;  // x * 1 is x, bitwise
    const int64_t base = s * a.per_sample;
    for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i * kVec < a.per_sample;
         i += int64_t(gridDim.x) * kThreads) {
      const int64_t offset = base + i * kVec;
      const int n = static_cast<int>(std::min<int64_t>(kVec, a.per_sample - i * kVec));
      acc_t v[kVec];
      gpu::load<kVec>(a.in, offset, n, vec && n == kVec, v);
#pragma unroll
      for (int j = 0; j < kVec; ++j) v[j] *= factor;
      gpu::store<kVec>(a.out, offset, n, vec && n == kVec, v);
    }
  }
}

}  // namespace

template <typename acc_t>
cudaError_t launch_scale_gradient(const ScaleGradientArgs<acc_t>& a, cudaStream_t stream) {
  if (a.samples == 0 || a.per_sample == 0) return cudaSuccess;
  const int64_t steps = (a.per_sample + kVec - 1) / kVec;
  const int64_t sample_blocks = std::min(a.samples, kMaxSampleBlocks);
  const int64_t x_blocks =
      std::max<int64_t>(1, std::min<int64_t>((steps + kThreads - 1) / kThreads, kMaxBlocks / sample_blocks));
  const int64_t bytes = element_bytes(a.in.dtype);
  // Vector accesses when every sample starts on a kVec boundary.
  const bool vec = gpu::aligned(a.in.data, bytes * kVec) && a.per_sample % kVec == 0;
  const dim3 grid(static_cast<unsigned int>(x_blocks), static_cast<unsigned int>(sample_blocks));
  scale_kernel<<<grid, kThreads, 0, stream>>>(a, vec);
  return cudaGetLastError();
}

template cudaError_t launch_scale_gradient<float>(const ScaleGradientArgs<float>&, cudaStream_t);
template cudaError_t launch_scale_gradient<double>(const ScaleGradientArgs<double>&, cudaStream_t);

}  // namespace mattingloss
