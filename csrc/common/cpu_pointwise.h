// The CPU driver of the pointwise losses (common/pointwise.h): fixed-size
// chunks of one sample each over the threads (cpu_parallel.h). Each chunk
// goes block by block through the policy's per-pixel math in a loop the
// compiler vectorizes, and the terms are summed into kLanes independent
// accumulators. Chunk and lane layout never depend on the thread count, so
// the loss and gradients are bitwise the same with 1 or N threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "../codes.h"
#include "cpu_convert.h"
#include "cpu_reduce.h"
#include "pointwise.h"

namespace mattingloss {
namespace {

constexpr int64_t kChunk = 4096;  // pixels per partial sum
constexpr int64_t kBlock = 256;   // pixels per pass of the math loop (its buffers stay in L1)

// Buffers for one block: inputs of another dtype than acc_t converted to it,
// gradients to convert on the way out (or not requested), and the terms.
template <typename acc_t, int kTerms>
struct Staging {
  acc_t pred[kBlock], alpha[kBlock], mask[kBlock];
  acc_t img[3][kBlock], fg[3][kBlock], bg[3][kBlock];
  acc_t grad_pred[kBlock], grad_fg[3][kBlock], grad_bg[3][kBlock];
  acc_t term[kTerms][kBlock], weight[kBlock];
};

// Where the math loop reads and writes one block: straight in the tensors
// where their dtype is acc_t (no copy: the loop streams from memory), else in
// Staging. data_t is the element type of the targets (alpha, mask, image, fg,
// bg): acc_t, or uint8_t when all of them are uint8 (images as a data loader
// gives them), converted in the loop itself, which costs far less than
// staging 11 streams.
template <typename acc_t, typename data_t, int kTerms>
struct BlockView {
  const acc_t* pred;
  const data_t* alpha;
  const data_t* mask;
  const data_t *img[3], *fg[3], *bg[3];
  acc_t* grad_pred;
  acc_t *grad_fg[3], *grad_bg[3];
  acc_t *term[kTerms], *weight;
};

// The hot loop: pure arithmetic, no calls, no branches that depend on the
// data, so GCC vectorizes it (with -fno-math-errno for sqrt and
// -fno-trapping-math for the trimap compares; neither changes a result).
// ivdep: the outputs are fresh tensors or our own buffers, never an input, so
// no store can feed a later load; without it GCC would need a runtime overlap
// check per pair of the ~20 pointers, more than it versions a loop for, and
// leave the loop scalar. The mask mode and rho are template constants so
// their selects fold away; so is whether fg/bg gradients are wanted.
template <typename Policy, bool kComp, int64_t kMode, int64_t kRho, bool kColorGrads, typename acc_t,
          typename data_t>
ML_CPU_CLONES void compute_block(const typename Policy::Params& params,
                                 const BlockView<acc_t, data_t, Policy::kTerms>& v, int64_t n) {
  constexpr int K = Policy::kTerms;
  typename Policy::Params P = Policy::template with_rho<kRho>(params);  // a local copy: stores can't alias it
  P.mask_mode = kMode;
  const acc_t* pred = v.pred;
  const data_t *alpha = v.alpha, *mask = v.mask;
  const data_t *img0 = v.img[0], *img1 = v.img[1], *img2 = v.img[2];
  const data_t *fg0 = v.fg[0], *fg1 = v.fg[1], *fg2 = v.fg[2];
  const data_t *bg0 = v.bg[0], *bg1 = v.bg[1], *bg2 = v.bg[2];
  acc_t *gp = v.grad_pred, *gf0 = v.grad_fg[0], *gf1 = v.grad_fg[1], *gf2 = v.grad_fg[2];
  acc_t *gb0 = v.grad_bg[0], *gb1 = v.grad_bg[1], *gb2 = v.grad_bg[2];
  acc_t* term[K];
  for (int k = 0; k < K; ++k) term[k] = v.term[k];
  acc_t* weight = v.weight;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    // uint8 -> float is exact: the same values as the staged conversion
    acc_t img[3] = {}, fg[3] = {}, bg[3] = {};
    if (kComp) {
      img[0] = acc_t(img0[i]), img[1] = acc_t(img1[i]), img[2] = acc_t(img2[i]);
      fg[0] = acc_t(fg0[i]), fg[1] = acc_t(fg1[i]), fg[2] = acc_t(fg2[i]);
      bg[0] = acc_t(bg0[i]), bg[1] = acc_t(bg1[i]), bg[2] = acc_t(bg2[i]);
    }
    const acc_t a = Policy::kReadsAlpha ? acc_t(alpha[i]) : acc_t(0);
    const acc_t t = kMode == kAllPixels ? acc_t(1) : acc_t(mask[i]);
    PointResult<acc_t, K> r;
    Policy::template pixel<kComp, kColorGrads>(P, pred[i], a, t, img, fg, bg, r);
    weight[i] = r.weight;
    for (int k = 0; k < K; ++k) term[k][i] = r.term[k];
    gp[i] = r.grad_pred;
    if (kColorGrads) {  // else not computed either: the loop is that much shorter
      gf0[i] = r.grad_fg[0];
      gf1[i] = r.grad_fg[1];
      gf2[i] = r.grad_fg[2];
      gb0[i] = r.grad_bg[0];
      gb1[i] = r.grad_bg[1];
      gb2[i] = r.grad_bg[2];
    }
  }
}

template <typename Policy, bool kComp, int64_t kMode, int64_t kRho, typename data_t, typename acc_t>
typename Policy::Sums run_chunk(const typename Policy::Args& a, Staging<acc_t, Policy::kTerms>& b, int64_t sample,
                                int64_t begin, int64_t end) {
  constexpr int K = Policy::kTerms;
  LaneSums<acc_t, K + 1> lanes;  // the terms, then the weights
  const int64_t hw = a.pixels;
  for (int64_t start = begin; start < end; start += kBlock) {
    const int64_t n = std::min(kBlock, end - start);
    const int64_t px = sample * hw + start;  // offset in (B,1,H,W) tensors
    BlockView<acc_t, data_t, K> v{};
    v.pred = read(a.pred, px, n, b.pred);
    if (Policy::kReadsAlpha) v.alpha = read_target<data_t>(a.alpha, px, n, b.alpha);
    if (kMode != kAllPixels) v.mask = read_target<data_t>(a.mask, px, n, b.mask);
    v.grad_pred = target(a.grad_pred, px, b.grad_pred);
    for (int k = 0; k < K; ++k) v.term[k] = b.term[k];
    v.weight = b.weight;
    if (kComp) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * hw + start;  // offset in (B,3,H,W) tensors
        v.img[c] = read_target<data_t>(a.image, cx, n, b.img[c]);
        v.fg[c] = read_target<data_t>(a.fg, cx, n, b.fg[c]);
        v.bg[c] = read_target<data_t>(a.bg, cx, n, b.bg[c]);
        v.grad_fg[c] = target(a.grad_fg, cx, b.grad_fg[c]);
        v.grad_bg[c] = target(a.grad_bg, cx, b.grad_bg[c]);
      }
    }
    if (kComp && (a.grad_fg.data || a.grad_bg.data)) {
      compute_block<Policy, kComp, kMode, kRho, kComp>(a.params, v, n);  // kComp, not true: no <false, .., true>
    } else {
      compute_block<Policy, kComp, kMode, kRho, false>(a.params, v, n);
    }
    for (int k = 0; k < K; ++k) lanes.add(k, v.term[k], n);
    lanes.add(K, v.weight, n);
    write_back(a.grad_pred, px, n, b.grad_pred);
    if (a.loss_map) {
      for (int64_t i = 0; i < n; ++i) {
        acc_t terms[K];
        for (int k = 0; k < K; ++k) terms[k] = b.term[k][i];
        a.loss_map[px + i] = Policy::loss(a.params, terms);
      }
    }
    if (kComp) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * hw + start;
        write_back(a.grad_fg, cx, n, b.grad_fg[c]);
        write_back(a.grad_bg, cx, n, b.grad_bg[c]);
      }
    }
  }
  return lanes.template total<typename Policy::Sums>();
}

template <typename Policy, bool kComp, int64_t kMode, int64_t kRho, typename data_t, typename acc_t>
void forward(const typename Policy::Args& a) {
  reduce_chunks<typename Policy::Sums>(
      Policy{a, a.scale}, a.batch, a.pixels, kChunk,
      [] { return std::make_unique<Staging<acc_t, Policy::kTerms>>(); },
      [&](auto& block, int64_t sample, int64_t begin, int64_t end) {
        return run_chunk<Policy, kComp, kMode, kRho, data_t>(a, *block, sample, begin, end);
      });
}

inline bool uint8_or_absent(const Input& in) { return !in.data || is_uint8(in); }

}  // namespace

// The forward of a pointwise loss on the CPU: its variant, target type and
// mask mode as template constants.
template <typename Policy>
void pointwise_cpu(const typename Policy::Args& a) {
  using acc_t = typename Policy::Acc;
  const bool all_u8 = (!Policy::kReadsAlpha || is_uint8(a.alpha)) && uint8_or_absent(a.mask) &&
                      uint8_or_absent(a.image) && uint8_or_absent(a.fg) && uint8_or_absent(a.bg);
  Policy::with_variant(a, [&](auto comp, auto rho) {
    with_target_type<acc_t>(all_u8, [&](auto data) {
      with_mask_mode(a.params.mask_mode, [&](auto mode) {
        constexpr int64_t kMode = decltype(mode)::value;
        if constexpr (kMode != kAllPixels || Policy::kHasAllPixels) {
          forward<Policy, std::decay_t<decltype(comp)>::value, kMode, std::decay_t<decltype(rho)>::value,
                  std::decay_t<decltype(data)>, acc_t>(a);
        }
      });
    });
  });
}

}  // namespace mattingloss
