// CUDA backend of the composition loss: the pointwise driver
// (../common/cuda_pointwise.cuh) over the loss's policy (../composition.h).
#include "../common/cuda_pointwise.cuh"
#include "../composition.h"

namespace mattingloss {

using composition::CompositionPointwise;

template cudaError_t launch_pointwise<CompositionPointwise<float>>(const composition::ForwardArgs<float>&,
                                                                   composition::CompSums<float>*, unsigned int*,
                                                                   cudaStream_t);
template cudaError_t launch_pointwise<CompositionPointwise<double>>(const composition::ForwardArgs<double>&,
                                                                    composition::CompSums<double>*, unsigned int*,
                                                                    cudaStream_t);

}  // namespace mattingloss
