// CPU backend of the DIM loss: the pointwise driver (../common/cpu_pointwise.h)
// over the loss's policy (../dim_loss.h).
#include "../common/cpu_pointwise.h"
#include "../dim_loss.h"

namespace mattingloss {

template void pointwise_cpu<DimPointwise<float>>(const ForwardArgs<float>&);
template void pointwise_cpu<DimPointwise<double>>(const ForwardArgs<double>&);

}  // namespace mattingloss
