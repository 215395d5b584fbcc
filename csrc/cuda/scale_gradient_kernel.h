// Interface between scale_gradient_cuda.cpp (host compiler) and
// scale_gradient_kernel.cu (nvcc, no torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include "../scale_gradient.h"

namespace mattingloss {

// Enqueues scale_gradient_ (args.out overwritten in place): one grid-stride kernel.
template <typename acc_t>
cudaError_t launch_scale_gradient(const ScaleGradientArgs<acc_t>& args, cudaStream_t stream);

}  // namespace mattingloss
