// CPU side: reading a block of any input dtype as the accumulation type, and
// writing a block of gradients back in their own dtype. Included by each
// loss's CPU file (an anonymous namespace: every file gets its own clones).
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <type_traits>

#include "defs.h"

// The hot loops (the math, the dtype conversions in and out) are compiled for
// baseline x86-64 (SSE2), AVX2 and AVX-512 and the best one for the machine is
// picked once at load time (GCC function multi-versioning). The choice is fixed
// per machine, so results stay bitwise reproducible run after run.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ML_CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define ML_CPU_CLONES
#endif

namespace mattingloss {
namespace {

template <typename acc_t>
constexpr Dtype kAccDtype = std::is_same_v<acc_t, double> ? Dtype::kDouble : Dtype::kFloat;

template <typename src_t, typename acc_t>
ML_CPU_CLONES void convert(const void* base, int64_t offset, int64_t n, acc_t* dst) {
  const src_t* src = static_cast<const src_t*>(base) + offset;
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<acc_t>(static_cast<float>(src[i]));
}

// The block of `in` starting at `offset`, as acc_t: in place, or converted into `staging`.
template <typename acc_t>
const acc_t* read(const Input& in, int64_t offset, int64_t n, acc_t* staging) {
  switch (in.dtype) {
    case Dtype::kUInt8: convert<uint8_t>(in.data, offset, n, staging); break;
    case Dtype::kFloat:
      if constexpr (std::is_same_v<acc_t, float>) return static_cast<const float*>(in.data) + offset;
      convert<float>(in.data, offset, n, staging);
      break;
    case Dtype::kDouble:
      if constexpr (std::is_same_v<acc_t, double>) return static_cast<const double*>(in.data) + offset;
      convert<double>(in.data, offset, n, staging);  // to float: a float32 prediction's accumulation type
      break;
    case Dtype::kHalf: convert<c10::Half>(in.data, offset, n, staging); break;
    case Dtype::kBFloat16: convert<c10::BFloat16>(in.data, offset, n, staging); break;
  }
  return staging;
}

// A target's block as a loop reads it: uint8 in place (data_t uint8_t: the
// loop converts each element itself, cheaper than staging many streams), else
// as read() gives it.
template <typename data_t, typename acc_t>
const data_t* read_target(const Input& in, int64_t offset, int64_t n, acc_t* staging) {
  if constexpr (std::is_same_v<data_t, uint8_t>) {
    return static_cast<const uint8_t*>(in.data) + offset;
  } else {
    return read(in, offset, n, staging);
  }
}

// f(data_t{}) with the element type a loss's loop reads its targets as:
// uint8_t when all of them are uint8 (images as a data loader gives them) and
// acc_t is float, else acc_t (float64 runs are for checking, not speed: one
// instance). Instantiates the loop per what it reads differently, not per
// combination of input dtypes.
template <typename acc_t, typename F>
void with_target_type(bool all_uint8, const F& f) {
  if constexpr (std::is_same_v<acc_t, float>) {
    if (all_uint8) return f(uint8_t{});
  }
  f(acc_t{});
}

inline bool is_uint8(const Input& in) { return in.dtype == Dtype::kUInt8; }

template <typename acc_t>
bool in_place(const Output& out) {
  return out.data && out.dtype == kAccDtype<acc_t>;
}

// Where a loop writes the block of `out` starting at `offset`: in place,
// or `staging` (converted by write_back, or dropped when not requested).
template <typename acc_t>
acc_t* target(const Output& out, int64_t offset, acc_t* staging) {
  return in_place<acc_t>(out) ? static_cast<acc_t*>(out.data) + offset : staging;
}

template <typename dst_t, typename acc_t>
ML_CPU_CLONES void convert_out(const acc_t* src, int64_t n, void* base, int64_t offset) {
  dst_t* dst = static_cast<dst_t*>(base) + offset;
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<dst_t>(src[i]);
}

// Converts a staged block into `out`; nothing to do when the loop wrote it in
// place or it was not requested.
template <typename acc_t>
void write_back(const Output& out, int64_t offset, int64_t n, const acc_t* staging) {
  if (!out.data || in_place<acc_t>(out)) return;
  switch (out.dtype) {
    case Dtype::kFloat: return convert_out<float>(staging, n, out.data, offset);
    case Dtype::kDouble: return convert_out<double>(staging, n, out.data, offset);
    case Dtype::kHalf: return convert_out<c10::Half>(staging, n, out.data, offset);
    case Dtype::kBFloat16: return convert_out<c10::BFloat16>(staging, n, out.data, offset);
    case Dtype::kUInt8: return;  // never a gradient dtype (checked on the host)
  }
}

}  // namespace
}  // namespace mattingloss
