// CUDA side: loads of any input dtype into the accumulation type and stores of
// gradients in their own dtype, kVec consecutive elements per thread with one
// vector access where the caller says it is aligned. No torch headers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

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

// Loads come in two steps, raw bits then conversion, so that a thread issues
// every load before it waits for any: a conversion right after its load stalls
// the thread until that load returns, and with a dtype switch around each load
// the compiler cannot move the next input's load above it (issue 27: bf16, f16
// and uint8 rows were latency-bound). Callers with several inputs call
// load_raw for each, then convert for each; load() is both for one input.

// The unsigned integer of an element's size: loads move bits, not values.
template <int kBytes> struct UInt;
template <> struct UInt<1> { using type = uint8_t; };
template <> struct UInt<2> { using type = uint16_t; };
template <> struct UInt<4> { using type = uint32_t; };
template <> struct UInt<8> { using type = unsigned long long; };
template <typename T> using Bits = typename UInt<sizeof(T)>::type;

template <typename T> __device__ __forceinline__ T from_bits(Bits<T> u);
template <> __device__ __forceinline__ uint8_t from_bits<uint8_t>(uint8_t u) { return u; }
template <> __device__ __forceinline__ float from_bits<float>(uint32_t u) { return __uint_as_float(u); }
template <> __device__ __forceinline__ double from_bits<double>(unsigned long long u) {
  return __longlong_as_double(static_cast<long long>(u));
}
template <> __device__ __forceinline__ __half from_bits<__half>(uint16_t u) { return __ushort_as_half(u); }
template <> __device__ __forceinline__ __nv_bfloat16 from_bits<__nv_bfloat16>(uint16_t u) {
  return __ushort_as_bfloat16(u);
}

// kVec elements of U at base + offset: one vector access when `vec` (the
// caller's promise: n == kVec and aligned to the whole Pack), else the first n
// one by one and zero bits past them (which every dtype reads as +0).
template <int kVec, typename U>
__device__ __forceinline__ Pack<U, kVec> load_bits(const void* base, int64_t offset, int n, bool vec) {
  const U* src = static_cast<const U*>(base) + offset;
  Pack<U, kVec> p;
  if (vec) {
    p = *reinterpret_cast<const Pack<U, kVec>*>(src);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) p.v[i] = i < n ? src[i] : U(0);
  }
  return p;
}

// The bits of kVec elements of an input whose dtype is known only at run time:
// room for the widest (8 bytes each), element i at bytes [i * size, (i + 1) * size).
template <int kVec>
struct Raw {
  uint32_t w[2 * kVec];
};

template <int kVec, typename U>
__device__ __forceinline__ Raw<kVec> to_raw(const Pack<U, kVec>& p) {
  Raw<kVec> r{};
  memcpy(r.w, p.v, sizeof(p.v));
  return r;
}

template <typename T, int kVec>
__device__ __forceinline__ T element(const Raw<kVec>& r, int i) {
  Bits<T> u;
  memcpy(&u, reinterpret_cast<const unsigned char*>(r.w) + i * sizeof(T), sizeof(T));
  return from_bits<T>(u);
}

// load_bits into a Raw. A vector of 1- or 2-byte elements is loaded as whole
// 32-bit words (the same bytes): loaded as U, the compiler splits it into
// elements and repacks them into Raw's words right after the load, and that
// repacking waits for the load, before the caller's next load is issued.
template <int kVec, typename U>
__device__ __forceinline__ Raw<kVec> load_raw_as(const void* base, int64_t offset, int n, bool vec) {
  constexpr int kBytes = kVec * int(sizeof(U));
  if constexpr (sizeof(U) < 4 && kBytes % 4 == 0) {
    if (vec) {
      const Pack<uint32_t, kBytes / 4> p =
          *reinterpret_cast<const Pack<uint32_t, kBytes / 4>*>(static_cast<const U*>(base) + offset);
      Raw<kVec> r{};
#pragma unroll
      for (int i = 0; i < kBytes / 4; ++i) r.w[i] = p.v[i];
      return r;
    }
  }
  return to_raw(load_bits<kVec, U>(base, offset, n, vec));
}

// The raw step: only the element size matters (the switch is uniform across the grid).
template <int kVec>
__device__ __forceinline__ Raw<kVec> load_raw(const Input& in, int64_t offset, int n, bool vec) {
  switch (element_bytes(in.dtype)) {
    case 1: return load_raw_as<kVec, uint8_t>(in.data, offset, n, vec);
    case 2: return load_raw_as<kVec, uint16_t>(in.data, offset, n, vec);
    case 4: return to_raw(load_bits<kVec, uint32_t>(in.data, offset, n, vec));
    default: return to_raw(load_bits<kVec, unsigned long long>(in.data, offset, n, vec));
  }
}

template <int kVec, typename T, typename acc_t>
__device__ __forceinline__ void convert_as(const Raw<kVec>& r, acc_t* out) {
#pragma unroll
  for (int i = 0; i < kVec; ++i) out[i] = to_acc<acc_t>(element<T>(r, i));
}

// The conversion step (as ATen's fetch_and_cast, one uniform switch).
template <int kVec, typename acc_t>
__device__ __forceinline__ void convert(Dtype dtype, const Raw<kVec>& r, acc_t* out) {
  switch (dtype) {
    case Dtype::kUInt8: return convert_as<kVec, uint8_t>(r, out);
    case Dtype::kFloat: return convert_as<kVec, float>(r, out);
    case Dtype::kDouble: return convert_as<kVec, double>(r, out);
    case Dtype::kHalf: return convert_as<kVec, __half>(r, out);
    case Dtype::kBFloat16: return convert_as<kVec, __nv_bfloat16>(r, out);
  }
}

// n elements (n <= kVec) at offset of an input of any dtype: zeros past n.
template <int kVec, typename acc_t>
__device__ __forceinline__ void load(const Input& in, int64_t offset, int n, bool vec, acc_t* out) {
  convert<kVec>(in.dtype, load_raw<kVec>(in, offset, n, vec), out);
}

// The same two steps for a kernel instance that knows an input's dtype T at
// compile time (Dyn: known at run time, as above): no switch, and raw
// registers of T's own size.
struct Dyn {};

template <typename T, int kVec>
struct RawOf {
  using type = Pack<Bits<T>, kVec>;
};
template <int kVec>
struct RawOf<Dyn, kVec> {
  using type = Raw<kVec>;
};

template <typename T, int kVec>
__device__ __forceinline__ typename RawOf<T, kVec>::type load_raw_t(const Input& in, int64_t offset, int n,
                                                                    bool vec) {
  if constexpr (std::is_same_v<T, Dyn>) {
    return load_raw<kVec>(in, offset, n, vec);
  } else {
    return load_bits<kVec, Bits<T>>(in.data, offset, n, vec);
  }
}

template <typename T, int kVec, typename acc_t>
__device__ __forceinline__ void convert_t(const Input& in, const typename RawOf<T, kVec>::type& r, acc_t* out) {
  if constexpr (std::is_same_v<T, Dyn>) {
    convert<kVec>(in.dtype, r, out);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) out[i] = to_acc<acc_t>(from_bits<T>(r.v[i]));
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

// store() for an output whose dtype T an instance knows (Dyn: at run time).
template <typename T, int kVec, typename acc_t>
__device__ __forceinline__ void store_t(const Output& out, int64_t offset, int n, bool vec, const acc_t* in) {
  if constexpr (std::is_same_v<T, Dyn>) {
    store<kVec>(out, offset, n, vec, in);
  } else {
    store_as<kVec, T>(out.data, offset, n, vec, in);
  }
}

inline bool aligned(const void* p, int bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace gpu
}  // namespace mattingloss
