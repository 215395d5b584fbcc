// CPU backend of the composition loss: the pointwise driver
// (../common/cpu_pointwise.h) over the loss's policy (../composition.h).
#include "../common/cpu_pointwise.h"
#include "../composition.h"

namespace mattingloss {

using composition::CompositionPointwise;

template void pointwise_cpu<CompositionPointwise<float>>(const composition::ForwardArgs<float>&);
template void pointwise_cpu<CompositionPointwise<double>>(const composition::ForwardArgs<double>&);

}  // namespace mattingloss
