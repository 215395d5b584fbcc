// scale_gradient_: a stored gradient times one factor, in place (the backward of
// every loss whose forward stored its final gradient: grad_output, times the
// loss's scale where that was not applied in forward). Plain data for both
// backends; the product is the whole of the math.
#pragma once

#include <cstdint>

#include "common/defs.h"

namespace mattingloss {

template <typename acc_t>
struct ScaleGradientArgs {
  int64_t numel = 0;
  Input in;                       // the gradient, read...
  Output out;                     // ...and written: the same storage
  const acc_t* factor = nullptr;  // one value; 1 leaves the gradient as it is (x * 1 is x)
};

}  // namespace mattingloss
