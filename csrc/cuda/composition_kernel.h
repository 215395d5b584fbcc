// Interface between the ATen-facing registration (composition_cuda.cpp, built
// by the host compiler) and the kernel (composition_kernel.cu, built by nvcc
// without torch headers).
#pragma once

#include "../common/cuda_launch.h"
#include "../composition.h"

namespace mattingloss {
namespace composition {

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) does the ordered final reduction.
// `scratch` holds gpu::point_scratch_sums() CompSums. Returns the launch status.
template <typename acc_t>
cudaError_t launch_composition_forward(const ForwardArgs<acc_t>& args, CompSums<acc_t>* scratch,
                                       unsigned int* counter, cudaStream_t stream);

}  // namespace composition
}  // namespace mattingloss
