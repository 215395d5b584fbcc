// What every loss's kernels share, host and device: the inline/unroll macros
// and how a kernel is told where its inputs and outputs are (raw pointers and
// dtype codes, no ATen types, so .cu files need no torch headers).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ML_INLINE __host__ __device__ __forceinline__
#else
#define ML_INLINE inline __attribute__((always_inline))
#endif

#if defined(__CUDACC__)
#define ML_UNROLL _Pragma("unroll")
#else
#define ML_UNROLL _Pragma("GCC unroll 3")
#endif

// Scalar code a CUDA kernel carries for its last block only (alpha_sobel.h's
// compose): nvcc unrolls such loops by 4 with remainders, code every kernel
// instance would carry; not unrolled, it costs a few loads per iteration, once.
#if defined(__CUDACC__)
#define ML_NO_UNROLL _Pragma("unroll 1")
#else
#define ML_NO_UNROLL
#endif

namespace mattingloss {

// The element types the kernels read and write directly.
enum class Dtype : int32_t { kUInt8, kFloat, kDouble, kHalf, kBFloat16 };

ML_INLINE int element_bytes(Dtype d) {
  switch (d) {
    case Dtype::kUInt8: return 1;
    case Dtype::kHalf:
    case Dtype::kBFloat16: return 2;
    case Dtype::kFloat: return 4;
    case Dtype::kDouble: return 8;
  }
  return 8;
}

struct Input {
  const void* data = nullptr;  // contiguous
  Dtype dtype = Dtype::kFloat;
};

struct Output {
  void* data = nullptr;  // nullptr: not requested
  Dtype dtype = Dtype::kFloat;
};

}  // namespace mattingloss
