// CPU backend of the composition loss, laid out as dim_loss_cpu.cpp:
// fixed-size chunks of one sample each over the threads (cpu_parallel.h),
// block by block through the shared per-pixel math (../composition.h) in a
// loop the compiler vectorizes, the terms summed into kLanes independent accumulators. Chunk and
// lane layout never depend on the thread count, so the loss and gradients are
// bitwise the same with 1 or N threads.
#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "../common/cpu_convert.h"
#include "../common/cpu_reduce.h"
#include "../composition.h"

namespace mattingloss {
namespace composition {
namespace {

constexpr int64_t kChunk = 4096;  // pixels per partial sum
constexpr int64_t kBlock = 256;   // pixels per pass of the math loop (its buffers stay in L1)

// Buffers for one block: inputs of another dtype than acc_t converted to it,
// gradients to convert on the way out (or not requested), and the terms.
template <typename acc_t>
struct Staging {
  acc_t pred[kBlock], mask[kBlock];
  acc_t img[3][kBlock], fg[3][kBlock], bg[3][kBlock];
  acc_t grad_pred[kBlock], grad_fg[3][kBlock], grad_bg[3][kBlock];
  acc_t term[kBlock], weight[kBlock];
};

// Where the math loop reads and writes one block: straight in the tensors
// where their dtype is acc_t, else in Staging. data_t is the element type of
// the targets (mask, image, fg, bg): acc_t, or uint8_t when all of them are
// uint8, converted in the loop itself (cheaper than staging 10 streams).
template <typename acc_t, typename data_t>
struct BlockView {
  const acc_t* pred;
  const data_t* mask;
  const data_t *img[3], *fg[3], *bg[3];
  acc_t* grad_pred;
  acc_t *grad_fg[3], *grad_bg[3];
  acc_t *term, *weight;
};

// The hot loop: pure arithmetic, no calls, no data-dependent branches, so GCC
// vectorizes it (-fno-math-errno for sqrt, -fno-trapping-math for the
// compares). ivdep: the outputs are fresh tensors or our own buffers, never an
// input, so no store feeds a later load (without it GCC would need runtime
// overlap checks for ~18 pointers and leave the loop scalar). The mask mode,
// rho and whether fg/bg gradients are wanted are template constants, so their
// selects fold away.
template <int64_t kMode, int64_t kRho, bool kColorGrads, typename acc_t, typename data_t>
ML_CPU_CLONES void compute_block(const Params<acc_t>& params, const BlockView<acc_t, data_t>& v, int64_t n) {
  Params<acc_t> P = params;  // a local copy: stores can't alias it
  P.mask_mode = kMode;
  P.rho = kRho;
  const acc_t* pred = v.pred;
  const data_t* mask = v.mask;
  const data_t *img0 = v.img[0], *img1 = v.img[1], *img2 = v.img[2];
  const data_t *fg0 = v.fg[0], *fg1 = v.fg[1], *fg2 = v.fg[2];
  const data_t *bg0 = v.bg[0], *bg1 = v.bg[1], *bg2 = v.bg[2];
  acc_t *gp = v.grad_pred, *gf0 = v.grad_fg[0], *gf1 = v.grad_fg[1], *gf2 = v.grad_fg[2];
  acc_t *gb0 = v.grad_bg[0], *gb1 = v.grad_bg[1], *gb2 = v.grad_bg[2];
  acc_t *term = v.term, *weight = v.weight;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    // uint8 -> float is exact: the same values as a staged conversion
    const acc_t img[3] = {acc_t(img0[i]), acc_t(img1[i]), acc_t(img2[i])};
    const acc_t fg[3] = {acc_t(fg0[i]), acc_t(fg1[i]), acc_t(fg2[i])};
    const acc_t bg[3] = {acc_t(bg0[i]), acc_t(bg1[i]), acc_t(bg2[i])};
    const acc_t t = kMode == kAllPixels ? acc_t(1) : acc_t(mask[i]);
    acc_t gf[3], gb[3];
    composition_pixel<kColorGrads>(P, pred[i], t, img, fg, bg, term[i], weight[i], gp[i], gf, gb);
    if (kColorGrads) {  // else not computed either: the loop is that much shorter
      gf0[i] = gf[0];
      gf1[i] = gf[1];
      gf2[i] = gf[2];
      gb0[i] = gb[0];
      gb1[i] = gb[1];
      gb2[i] = gb[2];
    }
  }
}

template <int64_t kMode, int64_t kRho, typename data_t, typename acc_t>
CompSums<acc_t> run_chunk(const ForwardArgs<acc_t>& a, Staging<acc_t>& b, int64_t sample, int64_t begin,
                          int64_t end) {
  LaneSums<acc_t, 2> lanes;  // terms, weights
  const int64_t hw = a.pixels;
  const bool color_grads = a.grad_fg.data || a.grad_bg.data;
  for (int64_t start = begin; start < end; start += kBlock) {
    const int64_t n = std::min(kBlock, end - start);
    const int64_t px = sample * hw + start;  // offset in (B,1,H,W) tensors
    BlockView<acc_t, data_t> v{};
    v.pred = read(a.pred, px, n, b.pred);
    if (kMode != kAllPixels) v.mask = read_target<data_t>(a.mask, px, n, b.mask);
    v.grad_pred = target(a.grad_pred, px, b.grad_pred);
    v.term = b.term;
    v.weight = b.weight;
    for (int64_t c = 0; c < 3; ++c) {
      const int64_t cx = (sample * 3 + c) * hw + start;  // offset in (B,3,H,W) tensors
      v.img[c] = read_target<data_t>(a.image, cx, n, b.img[c]);
      v.fg[c] = read_target<data_t>(a.fg, cx, n, b.fg[c]);
      v.bg[c] = read_target<data_t>(a.bg, cx, n, b.bg[c]);
      v.grad_fg[c] = target(a.grad_fg, cx, b.grad_fg[c]);
      v.grad_bg[c] = target(a.grad_bg, cx, b.grad_bg[c]);
    }
    if (color_grads) {
      compute_block<kMode, kRho, true>(a.params, v, n);
    } else {
      compute_block<kMode, kRho, false>(a.params, v, n);
    }
    lanes.add(0, v.term, n);
    lanes.add(1, v.weight, n);
    write_back(a.grad_pred, px, n, b.grad_pred);
    if (a.loss_map) std::copy(b.term, b.term + n, a.loss_map + px);
    for (int64_t c = 0; c < 3; ++c) {
      const int64_t cx = (sample * 3 + c) * hw + start;
      write_back(a.grad_fg, cx, n, b.grad_fg[c]);
      write_back(a.grad_bg, cx, n, b.grad_bg[c]);
    }
  }
  return lanes.template total<CompSums<acc_t>>();
}

template <int64_t kMode, int64_t kRho, typename data_t, typename acc_t>
void forward(const ForwardArgs<acc_t>& a) {
  reduce_chunks<CompSums<acc_t>>(
      EndOfPass<acc_t>{a, a.scale}, a.batch, a.pixels, kChunk, [] { return std::make_unique<Staging<acc_t>>(); },
      [&](auto& block, int64_t sample, int64_t begin, int64_t end) {
        return run_chunk<kMode, kRho, data_t>(a, *block, sample, begin, end);
      });
}

template <int64_t kMode, typename data_t, typename acc_t>
void run_rho(const ForwardArgs<acc_t>& a) {
  switch (a.params.rho) {
    case kL1: return forward<kMode, kL1, data_t>(a);
    case kCharbonnier: return forward<kMode, kCharbonnier, data_t>(a);
    default: return forward<kMode, kL2, data_t>(a);
  }
}

template <typename data_t, typename acc_t>
void run_mode(const ForwardArgs<acc_t>& a) {
  switch (a.params.mask_mode) {
    case kUnknownEqual: return run_rho<kUnknownEqual, data_t>(a);
    case kUnknownRange: return run_rho<kUnknownRange, data_t>(a);
    case kWeight: return run_rho<kWeight, data_t>(a);
    default: return run_rho<kAllPixels, data_t>(a);
  }
}

}  // namespace

template <typename acc_t>
void composition_cpu(const ForwardArgs<acc_t>& a) {
  const bool all_u8 = (!a.mask.data || is_uint8(a.mask)) && is_uint8(a.image) && is_uint8(a.fg) && is_uint8(a.bg);
  with_target_type<acc_t>(all_u8, [&](auto data) { run_mode<decltype(data)>(a); });
}

template void composition_cpu<float>(const ForwardArgs<float>&);
template void composition_cpu<double>(const ForwardArgs<double>&);

}  // namespace composition
}  // namespace mattingloss
