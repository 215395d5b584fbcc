// CPU backend: fixed-size chunks of one sample each over the threads (cpu_parallel.h).
// Each chunk goes block by block through the shared per-pixel math in a loop
// the compiler vectorizes, and the terms are summed into kLanes independent
// accumulators. Chunk and lane layout never depend on the thread count, so
// the loss and gradients are bitwise the same with 1 or N threads.
#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "../common/cpu_convert.h"
#include "../common/cpu_reduce.h"
#include "../dim_loss.h"

namespace mattingloss {
namespace {

constexpr int64_t kChunk = 4096;  // pixels per partial sum
constexpr int64_t kBlock = 256;   // pixels per pass of the math loop (its buffers stay in L1)

// Buffers for one block: inputs of another dtype than acc_t converted to it,
// gradients to convert on the way out (or not requested), and the terms.
template <typename acc_t>
struct Staging {
  acc_t pred[kBlock], alpha[kBlock], mask[kBlock];
  acc_t img[3][kBlock], fg[3][kBlock], bg[3][kBlock];
  acc_t grad_pred[kBlock], grad_fg[3][kBlock], grad_bg[3][kBlock];
  acc_t alpha_term[kBlock], comp_term[kBlock], weight[kBlock];
};

// Where the math loop reads and writes one block: straight in the tensors
// where their dtype is acc_t (no copy: the loop streams from memory), else in
// Staging. data_t is the element type of the targets (alpha, mask, image, fg,
// bg): acc_t, or uint8_t when all of them are uint8 (images as a data loader
// gives them), converted in the loop itself, which costs far less than
// staging 11 streams.
template <typename acc_t, typename data_t>
struct BlockView {
  const acc_t* pred;
  const data_t* alpha;
  const data_t* mask;
  const data_t *img[3], *fg[3], *bg[3];
  acc_t* grad_pred;
  acc_t *grad_fg[3], *grad_bg[3];
  acc_t *alpha_term, *comp_term, *weight;
};

// The hot loop: pure arithmetic, no calls, no branches that depend on the
// data, so GCC vectorizes it (with -fno-math-errno for sqrt and
// -fno-trapping-math for the trimap compares; neither changes a result).
// ivdep: the outputs are fresh tensors or our own buffers, never an input, so
// no store can feed a later load; without it GCC would need a runtime overlap
// check per pair of the ~20 pointers, more than it versions a loop for, and
// leave the loop scalar. The mask mode is a template constant so its select
// folds away; so is whether fg/bg gradients are wanted.
template <bool kComp, int64_t kMode, bool kColorGrads, typename acc_t, typename data_t>
ML_CPU_CLONES void compute_block(const LossParams<acc_t>& params, const BlockView<acc_t, data_t>& v, int64_t n) {
  LossParams<acc_t> P = params;  // a local copy: stores can't alias it
  P.mask_mode = kMode;
  const acc_t* pred = v.pred;
  const data_t *alpha = v.alpha, *mask = v.mask;
  const data_t *img0 = v.img[0], *img1 = v.img[1], *img2 = v.img[2];
  const data_t *fg0 = v.fg[0], *fg1 = v.fg[1], *fg2 = v.fg[2];
  const data_t *bg0 = v.bg[0], *bg1 = v.bg[1], *bg2 = v.bg[2];
  acc_t *gp = v.grad_pred, *gf0 = v.grad_fg[0], *gf1 = v.grad_fg[1], *gf2 = v.grad_fg[2];
  acc_t *gb0 = v.grad_bg[0], *gb1 = v.grad_bg[1], *gb2 = v.grad_bg[2];
  acc_t *alpha_term = v.alpha_term, *comp_term = v.comp_term, *weight = v.weight;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    // uint8 -> float is exact: the same values as the staged conversion
    const acc_t img[3] = {acc_t(img0[i]), acc_t(img1[i]), acc_t(img2[i])};
    const acc_t fg[3] = {acc_t(fg0[i]), acc_t(fg1[i]), acc_t(fg2[i])};
    const acc_t bg[3] = {acc_t(bg0[i]), acc_t(bg1[i]), acc_t(bg2[i])};
    PixelResult<acc_t> r;
    dim_pixel<kComp>(P, pred[i], acc_t(alpha[i]), acc_t(mask[i]), img, fg, bg, r);
    weight[i] = r.weight;
    alpha_term[i] = r.alpha_term;
    comp_term[i] = r.comp_term;
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

template <bool kComp, int64_t kMode, typename data_t, typename acc_t>
Sums<acc_t> run_chunk(const ForwardArgs<acc_t>& a, Staging<acc_t>& b, int64_t sample, int64_t begin,
                      int64_t end) {
  LaneSums<acc_t, 3> lanes;  // alpha terms, comp terms, weights
  const int64_t hw = a.pixels;
  for (int64_t start = begin; start < end; start += kBlock) {
    const int64_t n = std::min(kBlock, end - start);
    const int64_t px = sample * hw + start;  // offset in (B,1,H,W) tensors
    BlockView<acc_t, data_t> v{};
    v.pred = read(a.pred, px, n, b.pred);
    v.alpha = read_target<data_t>(a.alpha, px, n, b.alpha);
    v.mask = read_target<data_t>(a.mask, px, n, b.mask);
    v.grad_pred = target(a.grad_pred, px, b.grad_pred);
    v.alpha_term = b.alpha_term;
    v.comp_term = b.comp_term;
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
      compute_block<kComp, kMode, kComp>(a.params, v, n);  // kComp, not true: no <false, _, true> instance
    } else {
      compute_block<kComp, kMode, false>(a.params, v, n);
    }
    lanes.add(0, v.alpha_term, n);
    lanes.add(1, v.comp_term, n);
    lanes.add(2, v.weight, n);
    write_back(a.grad_pred, px, n, b.grad_pred);
    if (a.loss_map) {
      for (int64_t i = 0; i < n; ++i) a.loss_map[px + i] = pixel_loss(a.params, b.alpha_term[i], b.comp_term[i]);
    }
    if (kComp) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * hw + start;
        write_back(a.grad_fg, cx, n, b.grad_fg[c]);
        write_back(a.grad_bg, cx, n, b.grad_bg[c]);
      }
    }
  }
  return lanes.template total<Sums<acc_t>>();
}

template <bool kComp, int64_t kMode, typename data_t, typename acc_t>
void forward(const ForwardArgs<acc_t>& a) {
  reduce_chunks<Sums<acc_t>>(
      EndOfPass<acc_t>{a, a.scale}, a.batch, a.pixels, kChunk, [] { return std::make_unique<Staging<acc_t>>(); },
      [&](auto& block, int64_t sample, int64_t begin, int64_t end) {
        return run_chunk<kComp, kMode, data_t>(a, *block, sample, begin, end);
      });
}

template <bool kComp, typename data_t, typename acc_t>
void run_mode(const ForwardArgs<acc_t>& a) {
  switch (a.params.mask_mode) {
    case kUnknownEqual: return forward<kComp, kUnknownEqual, data_t>(a);
    case kUnknownRange: return forward<kComp, kUnknownRange, data_t>(a);
    default: return forward<kComp, kWeight, data_t>(a);
  }
}

template <bool kComp, typename acc_t>
void run_targets(const ForwardArgs<acc_t>& a) {
  const bool all_u8 = is_uint8(a.alpha) && is_uint8(a.mask) &&
                      (!kComp || (is_uint8(a.image) && is_uint8(a.fg) && is_uint8(a.bg)));
  with_target_type<acc_t>(all_u8, [&](auto data) { run_mode<kComp, decltype(data)>(a); });
}

}  // namespace

template <typename acc_t>
void dim_loss_cpu(const ForwardArgs<acc_t>& a) {
  if (a.has_comp) {
    run_targets<true>(a);
  } else {
    run_targets<false>(a);
  }
}

template void dim_loss_cpu<float>(const ForwardArgs<float>&);
template void dim_loss_cpu<double>(const ForwardArgs<double>&);

}  // namespace mattingloss
