// Every integer code the ops take, in one place: the C++ twin of
// mattingloss/_codes.py (tests/test_codes.py checks that the two agree).
// Changing one means bumping kAbiVersion (csrc/ops.cpp) and _ops.ABI_VERSION.
#pragma once

#include <cstdint>
#include <type_traits>

namespace mattingloss {

// How a mask input is read (every op with a trimap or weight).
enum MaskMode : int64_t {
  kUnknownEqual = 0,  // w = [t == lo]
  kUnknownRange = 1,  // w = [lo < t < hi]
  kWeight = 2,        // w = t (non-negative weights, soft masks)
  kAllPixels = 3,     // no trimap or weight: w = 1, the mask is not read
};

// f(std::integral_constant<int64_t, mode>()): a CPU kernel's mask mode as a
// template constant, so that its loops' select folds away; the one switch over
// the modes.
template <typename F>
void with_mask_mode(int64_t mode, const F& f) {
  switch (mode) {
    case kUnknownEqual: return f(std::integral_constant<int64_t, kUnknownEqual>());
    case kUnknownRange: return f(std::integral_constant<int64_t, kUnknownRange>());
    case kWeight: return f(std::integral_constant<int64_t, kWeight>());
    default: return f(std::integral_constant<int64_t, kAllPixels>());
  }
}

// Reductions of the DIM and composition ops.
enum Reduction : int64_t { kMean = 0, kSample = 1, kSum = 2, kNone = 3 };

// The per-element penalty (the alpha/Sobel op takes L1 and Charbonnier).
enum Rho : int64_t { kL1 = 0, kCharbonnier = 1, kL2 = 2 };

// The alpha/Sobel op's Sobel term: none; the L1 of the x and y responses'
// differences (ViTMatte, mmagic; plus ViTMatte's penalty on the prediction's
// responses); or the L1 of the gradient magnitudes' difference (GCA).
enum SobelStyle : int64_t { kSobelNone = 0, kSobelDiff = 1, kSobelMagnitude = 2 };

// The alpha/Sobel op's per-sample sums, in this order in its (B, kAgSums) output.
enum AlphaGradSum : int64_t {
  kSumUnknown = 0,   // sum rho over the unknown region (see alpha_pixel)
  kSumKnown = 1,     // the same over the known region, w_k = [w == 0]
  kSumWUnknown = 2,  // sum w
  kSumWKnown = 3,    // sum w_k
  kSumSobelX = 4,    // sum |Sx(p) - Sx(g)| (masked), or the magnitude term (GCA)
  kSumSobelY = 5,    // sum |Sy(p) - Sy(g)| (masked)
  kSumPenaltyX = 6,  // sum |Sx(p)| (masked): ViTMatte's penalty
  kSumPenaltyY = 7,  // sum |Sy(p)| (masked)
  kAgSums = 8,
};

// How a term's sum becomes a loss (mattingloss/alpha.py Norm): off; sum / (sum(w)
// + guard) pooled over the batch; each sample's masked mean, averaged; the plain
// sum; over B*H*W; ViTMatte's mean over B*H*W times B * crop_pixels / sum(w).
enum AlphaNorm : int64_t { kNormOff = -1, kNormMean = 0, kNormSample = 1, kNormSum = 2, kNormNumel = 3,
                           kNormVitmatte = 4 };

namespace lap {

enum Padding : int64_t { kReflect = 0, kReplicate = 1 };

// How the Laplacian op's optional weight enters.
enum WeightMode : int64_t {
  kNoWeight = 0,     // mean |L_i| per level
  kWeightAfter = 1,  // MGMatting: sum |w_i L_i| / (sum w_i + 1e-8), w_i = w[::2^i, ::2^i]
  kMaskBefore = 2,   // SDMatte: d = (pred - gt) * w, scaled by numer / sum(w) (0 when sum(w) == 0)
};

constexpr int kMaxLevels = 16;

}  // namespace lap
}  // namespace mattingloss
