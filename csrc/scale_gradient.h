// scale_gradient_: stored gradients times grad_output (and the loss's per-sample
// scale where forward did not apply it), in place: the whole backward of every
// loss whose forward stored its gradient. The factor is read on the device, so
// backward is this one op, with no multiply before it and no host sync.
#pragma once

#include <cstdint>

#include "common/defs.h"
#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace mattingloss {

template <typename acc_t>
struct ScaleGradientArgs {
  int64_t samples = 1;       // the gradient's first dimension
  int64_t per_sample = 0;    // elements of one sample
  Input in;                  // the gradient, read...
  Output out;                // ...and written: the same storage
  const acc_t* grad_output = nullptr;  // one value, or one per sample
  bool per_sample_output = false;
  const acc_t* scale = nullptr;        // nullptr: none; one value (shared), or one per sample
  bool per_sample_scale = false;
};

// Sample s's factor: grad_output times the scale, in that order (as the
// Python product scale * grad_output was). 1 leaves the sample as it is.
template <typename acc_t>
ML_INLINE acc_t sample_factor(const ScaleGradientArgs<acc_t>& a, int64_t s) {
  const acc_t g = a.grad_output[a.per_sample_output ? s : 0];
  if (a.scale == nullptr) return g;
  return a.scale[a.per_sample_scale ? s : 0] * g;
}

// The backends' entry points, called by scale_gradient_host.cpp: the CPU
// kernel (cpu/scale_gradient_cpu.cpp) and, below, the CUDA launch
// (cuda/scale_gradient_kernel.cu).
template <typename acc_t>
void scale_gradient_cpu(const ScaleGradientArgs<acc_t>& args);

#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
// Enqueues scale_gradient_ (args.out overwritten in place): one grid-stride kernel.
template <typename acc_t>
cudaError_t launch_scale_gradient(const ScaleGradientArgs<acc_t>& args, cudaStream_t stream);
#endif

}  // namespace mattingloss
