// CUDA side: loads of any input dtype into the accumulation type and stores of
// gradients in their own dtype, kVec consecutive elements per thread with one
// vector access where the caller says it is aligned. No torch headers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "defs.h"

namespace mattingloss {
namespace gpu {

template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

template <typename acc_t> __device__ __forceinline__ acc_t to_acc(uint8_t x) { return acc_t(x); }
template <typename acc_t> __device__ __forceinline__ acc_t to_acc(float x) { return acc_t(x); }
template <typename acc_t> __device__ __forceinline__ acc_t to_acc(double x) { return acc_t(x); }
template <typename acc_t> __device__ __forceinline__ acc_t to_acc(__half x) { return acc_t(__half2float(x)); }
template <typename acc_t> __device__ __forceinline__ acc_t to_acc(__nv_bfloat16 x) {
  return acc_t(__bfloat162float(x));
}

template <typename T> __device__ __forceinline__ T from_acc(float x) { return T(x); }
template <typename T> __device__ __forceinline__ T from_acc(double x) { return T(x); }
template <> __device__ __forceinline__ __half from_acc<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __half from_acc<__half>(double x) { return __float2half_rn(float(x)); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(double x) {
  return __float2bfloat16_rn(float(x));
}

// n elements (n <= kVec) at base + offset; a vector load when `vec` (n == kVec
// and aligned), zeros past n otherwise.
template <int kVec, typename T, typename acc_t>
__device__ __forceinline__ void load_as(const void* base, int64_t offset, int n, bool vec, acc_t* out) {
  const T* src = static_cast<const T*>(base) + offset;
  if (vec) {
    const Pack<T, kVec> p = *reinterpret_cast<const Pack<T, kVec>*>(src);
#pragma unroll
    for (int i = 0; i < kVec; ++i) out[i] = to_acc<acc_t>(p.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) out[i] = i < n ? to_acc<acc_t>(src[i]) : acc_t(0);
  }
}

// The dtype switch is uniform across the grid, as in ATen's fetch_and_cast.
template <int kVec, typename acc_t>
__device__ __forceinline__ void load(const Input& in, int64_t offset, int n, bool vec, acc_t* out) {
  switch (in.dtype) {
    case Dtype::kUInt8: return load_as<kVec, uint8_t>(in.data, offset, n, vec, out);
    case Dtype::kFloat: return load_as<kVec, float>(in.data, offset, n, vec, out);
    case Dtype::kDouble: return load_as<kVec, double>(in.data, offset, n, vec, out);
    case Dtype::kHalf: return load_as<kVec, __half>(in.data, offset, n, vec, out);
    case Dtype::kBFloat16: return load_as<kVec, __nv_bfloat16>(in.data, offset, n, vec, out);
  }
}

template <int kVec, typename T, typename acc_t>
__device__ __forceinline__ void store_as(void* base, int64_t offset, int n, bool vec, const acc_t* in) {
  T* dst = static_cast<T*>(base) + offset;
  if (vec) {
    Pack<T, kVec> p;
#pragma unroll
    for (int i = 0; i < kVec; ++i) p.v[i] = from_acc<T>(in[i]);
    *reinterpret_cast<Pack<T, kVec>*>(dst) = p;
  } else {
#pragma unroll  // constant indices keep `in` in registers
    for (int i = 0; i < kVec; ++i) {
      if (i < n) dst[i] = from_acc<T>(in[i]);
    }
  }
}

template <int kVec, typename acc_t>
__device__ __forceinline__ void store(const Output& out, int64_t offset, int n, bool vec, const acc_t* in) {
  switch (out.dtype) {
    case Dtype::kFloat: return store_as<kVec, float>(out.data, offset, n, vec, in);
    case Dtype::kDouble: return store_as<kVec, double>(out.data, offset, n, vec, in);
    case Dtype::kHalf: return store_as<kVec, __half>(out.data, offset, n, vec, in);
    case Dtype::kBFloat16: return store_as<kVec, __nv_bfloat16>(out.data, offset, n, vec, in);
    case Dtype::kUInt8: return;  // never a gradient dtype (checked on the host)
  }
}

inline bool aligned(const void* p, int bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace gpu
}  // namespace mattingloss
