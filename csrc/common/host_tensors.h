// ATen side of csrc/common/defs.h: a tensor as an Input or Output of a kernel.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Device.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>
#include <torch/library.h>

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

// Raw-op check of pred_alpha: (B, 1, H, W), not empty, floating, contiguous.
inline void check_pred(const at::Tensor& pred) {
  TORCH_CHECK(pred.dim() == 4 && pred.size(1) == 1, "mattingloss: pred_alpha has shape ", pred.sizes(),
              ", expected (B, 1, H, W)");
  TORCH_CHECK(pred.numel() > 0, "mattingloss: pred_alpha is empty");
  TORCH_CHECK(at::isFloatingType(pred.scalar_type()), "mattingloss: pred_alpha must be floating, got ",
              pred.scalar_type());
  TORCH_CHECK(pred.is_contiguous(), "mattingloss: pred_alpha must be contiguous");
}

// Raw-op check of a (B, channels, H, W) input matching pred (the Python API
// checks first, with friendlier messages; this keeps a direct torch.ops call
// from reading out of bounds).
inline void check_map(const at::Tensor& t, const char* name, const at::Tensor& pred, int64_t channels) {
  TORCH_CHECK(t.dim() == 4 && t.size(0) == pred.size(0) && t.size(1) == channels &&
                  t.size(2) == pred.size(2) && t.size(3) == pred.size(3),
              "mattingloss: ", name, " has shape ", t.sizes(), ", expected (", pred.size(0), ", ",
              channels, ", ", pred.size(2), ", ", pred.size(3), ")");
  TORCH_CHECK(t.is_contiguous(), "mattingloss: ", name, " must be contiguous");
  TORCH_CHECK(t.device() == pred.device(), "mattingloss: ", name, " is on ", t.device(),
              ", pred_alpha on ", pred.device());
}

// A trimap bound as PyTorch's `trimap == value` sees it: rounded to the dtype
// the comparison runs in (the trimap's own floating dtype; float32, the default
// dtype, for a uint8 trimap), so that a kernel comparing in its accumulation
// type finds exactly the pixels torch finds. Comparisons that cannot be made
// exact this way (in float64 by a float32 kernel; integer dtypes the kernels
// don't read) are made in Python before the launch (mattingloss/_args.py).
inline double comparison_bound(double value, const at::Tensor& trimap) {
  switch (trimap.scalar_type()) {
    case at::kHalf: return static_cast<float>(c10::Half(static_cast<float>(value)));
    case at::kBFloat16: return static_cast<float>(c10::BFloat16(static_cast<float>(value)));
    case at::kByte:
    case at::kFloat: return static_cast<float>(value);
    default: return value;
  }
}

// A gradient output: like `like` when wanted, else empty (on pred's device).
inline at::Tensor gradient_buffer(bool wanted, const at::Tensor& like, const at::Tensor& pred) {
  if (!wanted) return at::empty({0}, pred.options());
  TORCH_CHECK(at::isFloatingType(like.scalar_type()), "mattingloss: a gradient was requested for a ",
              like.scalar_type(), " tensor");
  return at::empty(like.sizes(), like.options());
}

// The backend tags of an op's host side (common/cuda_host.h has CudaBackend):
// each op overloads `run(CpuBackend, args, on)` (and its CUDA twin) with its
// kernel's entry point, and run_op picks one by the tag.
struct CpuBackend {
  struct Guard {
    explicit Guard(const c10::Device&) {}
  };
};

// f(the op's float or float64 arguments): op.use_double for a float64
// prediction. The one float/double dispatch of every op.
template <typename Op, typename F>
void for_acc_type(Op& op, const F& f) {
  if (op.use_double) {
    f(op.f64);
  } else {
    f(op.f32);
  }
}

// Every op's host forward, written once: under the device guard of `on`,
// prepare() checks the raw op's arguments, allocates the outputs and fills the
// kernel arguments of both accumulation types; then the backend's kernel runs
// in the op's accumulation type, through `run(Backend{}, args, on)` unless a
// `run(args)` is given (an op with two kernels on the same arguments).
template <typename Backend, typename Prepare>
auto run_op(const at::Tensor& on, const Prepare& prepare) {
  const typename Backend::Guard guard(on.device());
  auto op = prepare();
  for_acc_type(op, [&](const auto& args) { run(Backend{}, args, on); });
  return op.outputs;
}

template <typename Backend, typename Prepare, typename Run>
auto run_op(const at::Tensor& on, const Prepare& prepare, const Run& run) {
  const typename Backend::Guard guard(on.device());
  auto op = prepare();
  for_acc_type(op, run);
  return op.outputs;
}

}  // namespace mattingloss

// Registers fn<CpuBackend> as the CPU kernel of op `name` and, in CUDA builds
// (setup.py defines MATTINGLOSS_CUDA; the op's file then includes
// cuda_host.h), fn<CudaBackend> as its CUDA kernel.
#ifdef MATTINGLOSS_CUDA
#define MATTINGLOSS_IMPL(name, fn)                                            \
  TORCH_LIBRARY_IMPL(mattingloss, CPU, m) { m.impl(name, &fn<CpuBackend>); } \
  TORCH_LIBRARY_IMPL(mattingloss, CUDA, m) { m.impl(name, &fn<CudaBackend>); }
#else
#define MATTINGLOSS_IMPL(name, fn) \
  TORCH_LIBRARY_IMPL(mattingloss, CPU, m) { m.impl(name, &fn<CpuBackend>); }
#endif
