// Interface between the ATen-facing registration (dim_loss_cuda.cpp, built by
// the host compiler) and the kernels (dim_loss_kernel.cu, built by nvcc without
// torch headers).
#pragma once

#include "../common/cuda_launch.h"
#include "../dim_loss.h"

namespace mattingloss {

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) does the ordered final reduction.
// `scratch` holds gpu::point_scratch_sums() Sums. Returns the launch status.
template <typename acc_t>
cudaError_t launch_dim_loss_forward(const ForwardArgs<acc_t>& args, Sums<acc_t>* scratch,
                                    unsigned int* counter, cudaStream_t stream);

}  // namespace mattingloss
