// CPU backend: at::parallel_for over fixed-size chunks of one sample each.
// Each chunk is staged block by block into accumulation-type buffers (so every
// input dtype is read as stored), run through the shared per-pixel math in a
// loop the compiler vectorizes, and summed into kLanes independent
// accumulators. Chunk and lane layout never depend on the thread count, so
// the loss and gradients are bitwise the same with 1 or N threads.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "../dim_loss.h"
#include "../dim_loss_host.h"

namespace mattingloss {
namespace {

// The hot loops (the math, the dtype conversions in and out) are compiled for
// baseline x86-64 (SSE2), AVX2 and AVX-512 and the best one for the machine is
// picked once at load time (GCC function
// multi-versioning). The choice is fixed per machine, so results stay bitwise
// reproducible run after run.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ML_CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define ML_CPU_CLONES
#endif

constexpr int64_t kChunk = 4096;  // pixels per partial sum
constexpr int64_t kBlock = 64;   // pixels staged at once (buffers stay in L1)
constexpr int64_t kLanes = 16;    // independent accumulators, so the adds vectorize

template <typename src_t, typename acc_t>
ML_CPU_CLONES void convert(const void* base, int64_t offset, int64_t n, acc_t* dst) {
  const src_t* src = static_cast<const src_t*>(base) + offset;
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<acc_t>(static_cast<float>(src[i]));
}

template <typename acc_t>
void load(const Input& in, int64_t offset, int64_t n, acc_t* dst) {
  switch (in.dtype) {
    case Dtype::kUInt8: return convert<uint8_t>(in.data, offset, n, dst);
    case Dtype::kFloat: return convert<float>(in.data, offset, n, dst);
    case Dtype::kDouble: {  // not through float: keep float64 exact
      const double* src = static_cast<const double*>(in.data) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<acc_t>(src[i]);
      return;
    }
    case Dtype::kHalf: return convert<c10::Half>(in.data, offset, n, dst);
    case Dtype::kBFloat16: return convert<c10::BFloat16>(in.data, offset, n, dst);
  }
}

template <typename dst_t, typename acc_t>
ML_CPU_CLONES void convert_out(const acc_t* src, int64_t n, void* base, int64_t offset) {
  dst_t* dst = static_cast<dst_t*>(base) + offset;
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<dst_t>(src[i]);
}

template <typename acc_t>
void store(const Output& out, int64_t offset, int64_t n, const acc_t* src) {
  switch (out.dtype) {
    case Dtype::kFloat: return convert_out<float>(src, n, out.data, offset);
    case Dtype::kDouble: return convert_out<double>(src, n, out.data, offset);
    case Dtype::kHalf: return convert_out<c10::Half>(src, n, out.data, offset);
    case Dtype::kBFloat16: return convert_out<c10::BFloat16>(src, n, out.data, offset);
    case Dtype::kUInt8: return;  // never a gradient dtype (checked on the host)
  }
}

template <typename acc_t>
struct Block {
  acc_t pred[kBlock], alpha[kBlock], mask[kBlock];
  acc_t img[3][kBlock], fg[3][kBlock], bg[3][kBlock];
  acc_t alpha_term[kBlock], comp_term[kBlock], weight[kBlock];
  acc_t grad_pred[kBlock], grad_fg[3][kBlock], grad_bg[3][kBlock];
};

// The hot loop: pure arithmetic on L1-resident buffers, no calls, no branches
// that depend on the data, so GCC vectorizes it (with -fno-math-errno for
// sqrt and -fno-trapping-math for the trimap compares; neither changes a
// result). The mask mode is a template constant so its select folds away.
template <bool kComp, int64_t kMode, typename acc_t>
ML_CPU_CLONES void compute_block(const LossParams<acc_t>& params, Block<acc_t>& b, int64_t n) {
  LossParams<acc_t> P = params;  // a local copy: stores to `b` can't alias it
  P.mask_mode = kMode;
  for (int64_t i = 0; i < n; ++i) {
    const acc_t img[3] = {b.img[0][i], b.img[1][i], b.img[2][i]};
    const acc_t fg[3] = {b.fg[0][i], b.fg[1][i], b.fg[2][i]};
    const acc_t bg[3] = {b.bg[0][i], b.bg[1][i], b.bg[2][i]};
    PixelResult<acc_t> r;
    dim_pixel<kComp>(P, b.pred[i], b.alpha[i], b.mask[i], img, fg, bg, r);
    b.weight[i] = r.weight;
    b.alpha_term[i] = r.alpha_term;
    b.comp_term[i] = r.comp_term;
    b.grad_pred[i] = r.grad_pred;
    if (kComp) {
      for (int c = 0; c < 3; ++c) {
        b.grad_fg[c][i] = r.grad_fg[c];
        b.grad_bg[c][i] = r.grad_bg[c];
      }
    }
  }
}

template <typename acc_t>
struct Lanes {
  acc_t alpha[kLanes] = {}, comp[kLanes] = {}, weight[kLanes] = {};

  void add(const Block<acc_t>& b, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int64_t l = 0; l < kLanes; ++l) {
        alpha[l] += b.alpha_term[i + l];
        comp[l] += b.comp_term[i + l];
        weight[l] += b.weight[i + l];
      }
    }
    for (int64_t l = 0; i < n; ++i, ++l) {
      alpha[l] += b.alpha_term[i];
      comp[l] += b.comp_term[i];
      weight[l] += b.weight[i];
    }
  }

  Sums<acc_t> total() const {
    Sums<acc_t> s{0, 0, 0};
    for (int64_t l = 0; l < kLanes; ++l) s = s + Sums<acc_t>{alpha[l], comp[l], weight[l]};
    return s;
  }
};

template <bool kComp, int64_t kMode, typename acc_t>
Sums<acc_t> run_chunk(const ForwardArgs<acc_t>& a, Block<acc_t>& b, int64_t sample, int64_t begin,
                      int64_t end) {
  Lanes<acc_t> lanes;
  const int64_t hw = a.pixels;
  for (int64_t start = begin; start < end; start += kBlock) {
    const int64_t n = std::min(kBlock, end - start);
    const int64_t px = sample * hw + start;  // offset in (B,1,H,W) tensors
    load(a.pred, px, n, b.pred);
    load(a.alpha, px, n, b.alpha);
    load(a.mask, px, n, b.mask);
    if (kComp) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * hw + start;  // offset in (B,3,H,W) tensors
        load(a.image, cx, n, b.img[c]);
        load(a.fg, cx, n, b.fg[c]);
        load(a.bg, cx, n, b.bg[c]);
      }
    }
    compute_block<kComp, kMode>(a.params, b, n);
    lanes.add(b, n);
    if (a.grad_pred.data) store(a.grad_pred, px, n, b.grad_pred);
    if (a.loss_map) {
      for (int64_t i = 0; i < n; ++i) a.loss_map[px + i] = pixel_loss(a.params, b.alpha_term[i], b.comp_term[i]);
    }
    if (kComp) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t cx = (sample * 3 + c) * hw + start;
        if (a.grad_fg.data) store(a.grad_fg, cx, n, b.grad_fg[c]);
        if (a.grad_bg.data) store(a.grad_bg, cx, n, b.grad_bg[c]);
      }
    }
  }
  return lanes.total();
}

template <bool kComp, int64_t kMode, typename acc_t>
void forward(const ForwardArgs<acc_t>& a) {
  const int64_t chunks_per_sample = (a.pixels + kChunk - 1) / kChunk;
  std::vector<Sums<acc_t>> partial(a.batch * chunks_per_sample);
  at::parallel_for(0, static_cast<int64_t>(partial.size()), 1, [&](int64_t first, int64_t last) {
    auto block = std::make_unique<Block<acc_t>>();
    for (int64_t chunk = first; chunk < last; ++chunk) {
      const int64_t sample = chunk / chunks_per_sample;
      const int64_t begin = (chunk % chunks_per_sample) * kChunk;
      partial[chunk] = run_chunk<kComp, kMode>(a, *block, sample, begin, std::min(begin + kChunk, a.pixels));
    }
  });
  // Ordered final sums: per sample over its chunks, then over samples.
  std::vector<Sums<acc_t>> sample_sums(a.batch, Sums<acc_t>{0, 0, 0});
  Sums<acc_t> total{0, 0, 0};
  for (int64_t s = 0; s < a.batch; ++s) {
    for (int64_t c = 0; c < chunks_per_sample; ++c) sample_sums[s] = sample_sums[s] + partial[s * chunks_per_sample + c];
    total = total + sample_contribution(sample_sums[s], a.params.reduction);
  }
  acc_t loss;
  finalize(a.params, total, a.batch, &loss, a.components, a.components + 1);
  if (a.loss) *a.loss = loss;
  for (int64_t s = 0; s < a.batch; ++s) a.scale[s] = grad_scale(a.params, sample_sums[s], total, a.batch);
}

template <bool kComp, typename acc_t>
void run_mode(const ForwardArgs<acc_t>& a) {
  switch (a.params.mask_mode) {
    case kUnknownEqual: return forward<kComp, kUnknownEqual>(a);
    case kUnknownRange: return forward<kComp, kUnknownRange>(a);
    default: return forward<kComp, kWeight>(a);
  }
}

template <typename acc_t>
void run(const ForwardArgs<acc_t>& a) {
  if (a.has_comp) {
    run_mode<true>(a);
  } else {
    run_mode<false>(a);
  }
}

ForwardResult dim_loss_forward_cpu(const at::Tensor& pred, const at::Tensor& alpha, const at::Tensor& mask,
                                   const std::optional<at::Tensor>& image, const std::optional<at::Tensor>& fg,
                                   const std::optional<at::Tensor>& bg, int64_t mask_mode, double mask_lo,
                                   double mask_hi, double wl, double eps, double alpha_scale,
                                   double color_scale, int64_t reduction, bool grad_pred, bool grad_fg,
                                   bool grad_bg) {
  ForwardOp op = prepare_forward(pred, alpha, mask, image, fg, bg, mask_mode, mask_lo, mask_hi, wl, eps,
                                 alpha_scale, color_scale, reduction, grad_pred, grad_fg, grad_bg);
  if (op.use_double) {
    run(op.f64);
  } else {
    run(op.f32);
  }
  return op.outputs;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CPU, m) { m.impl("dim_loss_forward", &dim_loss_forward_cpu); }

}  // namespace mattingloss
