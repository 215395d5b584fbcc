// CUDA backend of the DIM loss: the pointwise driver
// (../common/cuda_pointwise.cuh) over the loss's policy (../dim_loss.h).
#include "../common/cuda_pointwise.cuh"
#include "../dim_loss.h"

namespace mattingloss {

template cudaError_t launch_pointwise<DimPointwise<float>>(const ForwardArgs<float>&, Sums<float>*, unsigned int*,
                                                           cudaStream_t);
template cudaError_t launch_pointwise<DimPointwise<double>>(const ForwardArgs<double>&, Sums<double>*,
                                                            unsigned int*, cudaStream_t);

}  // namespace mattingloss
