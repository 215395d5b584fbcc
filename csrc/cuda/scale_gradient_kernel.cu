// CUDA backend of scale_gradient_: a grid-stride loop, kVec elements per step
// of a thread (one 16-byte access for float32 when aligned). Every thread reads
// the factor on the device (no host sync) and returns at once when it is 1.
#include <algorithm>

#include "../common/cuda_memory.cuh"
#include "scale_gradient_kernel.h"

namespace mattingloss {
namespace {

constexpr int kThreads = 256;
constexpr int kVec = 4;
constexpr int64_t kMaxBlocks = 4096;  // several waves on any GPU; the grid strides past that

template <typename acc_t>
__global__ void __launch_bounds__(kThreads) scale_kernel(const ScaleGradientArgs<acc_t> a, const bool vec) {
  const acc_t factor = *a.factor;
  if (factor == acc_t(1)) return;  // x * 1 is x, bitwise
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i * kVec < a.numel;
       i += int64_t(gridDim.x) * kThreads) {
    const int64_t offset = i * kVec;
    const int n = static_cast<int>(std::min<int64_t>(kVec, a.numel - offset));
    acc_t v[kVec];
    gpu::load<kVec>(a.in, offset, n, vec && n == kVec, v);
#pragma unroll
    for (int j = 0; j < kVec; ++j) v[j] *= factor;
    gpu::store<kVec>(a.out, offset, n, vec && n == kVec, v);
  }
}

}  // namespace

template <typename acc_t>
cudaError_t launch_scale_gradient(const ScaleGradientArgs<acc_t>& a, cudaStream_t stream) {
  if (a.numel == 0) return cudaSuccess;
  const int64_t steps = (a.numel + kVec - 1) / kVec;
  const int blocks = static_cast<int>(std::min<int64_t>((steps + kThreads - 1) / kThreads, kMaxBlocks));
  const bool vec = gpu::aligned(a.in.data, element_bytes(a.in.dtype) * kVec);
  scale_kernel<<<blocks, kThreads, 0, stream>>>(a, vec);
  return cudaGetLastError();
}

template cudaError_t launch_scale_gradient<float>(const ScaleGradientArgs<float>&, cudaStream_t);
template cudaError_t launch_scale_gradient<double>(const ScaleGradientArgs<double>&, cudaStream_t);

}  // namespace mattingloss
