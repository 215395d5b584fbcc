// ATen side of csrc/common/defs.h: a tensor as an Input or Output of a kernel.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "defs.h"

namespace mattingloss {

inline Dtype dtype_code(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kByte: return Dtype::kUInt8;
    case at::kFloat: return Dtype::kFloat;
    case at::kDouble: return Dtype::kDouble;
    case at::kHalf: return Dtype::kHalf;
    case at::kBFloat16: return Dtype::kBFloat16;
    default: TORCH_CHECK(false, "mattingloss: ", name, " has dtype ", t.scalar_type(),
                         "; the kernels read uint8, float16, bfloat16, float32 and float64");
  }
}

inline Input input(const at::Tensor& t, const char* name) { return {t.const_data_ptr(), dtype_code(t, name)}; }

// An empty or undefined tensor is an output nobody asked for.
inline Output output(const at::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return {};
  return {t.mutable_data_ptr(), dtype_code(t, "gradient")};
}

}  // namespace mattingloss
