// CPU backend of temporal_loss_forward: fixed-size chunks of pixels of one
// sample over the threads (../common/cpu_parallel.h). A chunk goes block by block (kBlock pixels);
// each block walks the frames t = 0..T-1 in order, keeping frame t-1's values
// and pending gradients in small arrays (../temporal.h), so every input element
// is read once and every gradient element written once, as soon as it is
// final. The terms go into kLanes accumulators in pixel order; chunk and lane
// layout depend on the shape only, so results are bitwise the same with 1 or N
// threads. Chunk partials are added up in double, in chunk order.
#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "../common/cpu_convert.h"
#include "../common/cpu_reduce.h"
#include "../temporal.h"

namespace mattingloss {
namespace {

constexpr int64_t kChunk = 1024;  // pixels per partial sum (x T frames x 4 channels)
constexpr int64_t kBlock = 256;   // pixels per pass of the math loop (its arrays stay in L1)

// Per block: frame t-1's carried values, and staging for inputs/gradients of
// another dtype than acc_t. Every row is padded by one cache line so that no two
// rows start at the same address modulo 4 KiB: the loop stores to one row and
// then loads another at the same index, and rows 4 KiB apart would make each
// such load wait on the store ("4K aliasing": about 5x slower unpadded, measured here).
template <typename acc_t>
struct Staging {
  static constexpr int64_t kStride = kBlock + 64 / sizeof(acc_t);  // an odd number of cache lines
  enum Row {
    kCarryPred = 0,        // [4]: x_{t-1}, channel 0 alpha, 1..3 foreground
    kCarryTruth = 4,       // [4]: y_{t-1}
    kCarryPending = 8,     // [4]: frame t-1's gradient without d_t
    kCarryMask = 12,       // RVM's foreground mask of frame t-1
    kPred = 13,            // [4]: frame t's predictions when not read in place
    kTruth = 17,           // [4]: frame t's targets when not read in place
    kGrad = 21,            // [4]: frame t-1's gradients when not written in place
    kPhaL1 = 25, kPhaCoh, kFgrL1, kFgrCoh,  // frame t's terms
    kRows
  };
  alignas(64) acc_t rows[kRows][kStride];
  acc_t* row(int r) { return rows[r]; }
  const acc_t* row(int r) const { return rows[r]; }
};

// Where the math loop reads and writes one frame of one block. data_t: the
// targets' element type, acc_t or uint8_t (both targets uint8, converted in
// the loop rather than staged).
template <typename acc_t, typename data_t>
struct FrameView {
  const acc_t* pred[4];
  const data_t* truth[4];
  acc_t* grad_prev[4];  // frame t-1's gradient (unused at t == 0)
};

// The hot loop for one frame of one block: pure arithmetic, no data-dependent
// branches, so GCC vectorizes it. ivdep: outputs are fresh tensors or our own
// arrays, never an input (without it GCC would need a runtime overlap check for
// each pair of the ~30 pointers and leave the loop scalar). kDivide false: both
// scales are 1, and the targets' divisions (4 per element, the loop's slowest
// instructions) are skipped: v / 1 == v exactly.
template <bool kFirst, bool kDivide, typename acc_t, typename data_t>
ML_CPU_CLONES void frame_block(const TemporalParams<acc_t>& params, const FrameView<acc_t, data_t>& v,
                               Staging<acc_t>& s, int64_t n) {
  const TemporalParams<acc_t> P = params;  // a local copy: stores can't alias it
  const acc_t* pp = v.pred[0];
  const acc_t *pf0 = v.pred[1], *pf1 = v.pred[2], *pf2 = v.pred[3];
  const data_t* tp = v.truth[0];
  const data_t *tf0 = v.truth[1], *tf1 = v.truth[2], *tf2 = v.truth[3];
  acc_t* gp = v.grad_prev[0];
  acc_t *gf0 = v.grad_prev[1], *gf1 = v.grad_prev[2], *gf2 = v.grad_prev[3];
  using S = Staging<acc_t>;
  acc_t *cp0 = s.row(S::kCarryPred), *cp1 = s.row(S::kCarryPred + 1), *cp2 = s.row(S::kCarryPred + 2),
        *cp3 = s.row(S::kCarryPred + 3);
  acc_t *ct0 = s.row(S::kCarryTruth), *ct1 = s.row(S::kCarryTruth + 1), *ct2 = s.row(S::kCarryTruth + 2),
        *ct3 = s.row(S::kCarryTruth + 3);
  acc_t *cg0 = s.row(S::kCarryPending), *cg1 = s.row(S::kCarryPending + 1), *cg2 = s.row(S::kCarryPending + 2),
        *cg3 = s.row(S::kCarryPending + 3);
  acc_t* cm = s.row(S::kCarryMask);
  acc_t *pha_l1 = s.row(S::kPhaL1), *pha_coh = s.row(S::kPhaCoh), *fgr_l1 = s.row(S::kFgrL1),
        *fgr_coh = s.row(S::kFgrCoh);
  acc_t* const cpf[3] = {cp1, cp2, cp3};
  acc_t* const ctf[3] = {ct1, ct2, ct3};
  acc_t* const cgf[3] = {cg1, cg2, cg3};
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const acc_t y = kDivide ? scaled(acc_t(tp[i]), P.pha_scale) : acc_t(tp[i]);
    Carry<acc_t> c{cp0[i], ct0[i], cg0[i]};
    const Step<acc_t> a = temporal_step<kFirst>(pp[i], y, P.k_pha_l1, P.k_pha_coh, c);
    cp0[i] = c.pred;
    ct0[i] = c.truth;
    cg0[i] = c.pending;
    pha_l1[i] = a.l1;
    if (!kFirst) {
      pha_coh[i] = a.coh;
      gp[i] = a.grad_prev;
    }

    const acc_t m = fgr_mask(y);
    const acc_t m_prev = cm[i];
    cm[i] = m;
    const acc_t xf[3] = {pf0[i] * m, pf1[i] * m, pf2[i] * m};
    const acc_t yf[3] = {(kDivide ? scaled(acc_t(tf0[i]), P.fgr_scale) : acc_t(tf0[i])) * m,
                         (kDivide ? scaled(acc_t(tf1[i]), P.fgr_scale) : acc_t(tf1[i])) * m,
                         (kDivide ? scaled(acc_t(tf2[i]), P.fgr_scale) : acc_t(tf2[i])) * m};
    acc_t l1 = 0, coh = 0, g[3];
    ML_UNROLL for (int ch = 0; ch < 3; ++ch) {
      Carry<acc_t> cf{cpf[ch][i], ctf[ch][i], cgf[ch][i]};
      const Step<acc_t> f = temporal_step<kFirst>(xf[ch], yf[ch], P.k_fgr_l1, P.k_fgr_coh, cf);
      cpf[ch][i] = cf.pred;
      ctf[ch][i] = cf.truth;
      cgf[ch][i] = cf.pending;
      l1 += f.l1;
      coh += f.coh;
      g[ch] = f.grad_prev * m_prev;  // d(x)/d(raw pred) = the mask of that frame
    }
    fgr_l1[i] = l1;
    if (!kFirst) {
      fgr_coh[i] = coh;
      gf0[i] = g[0];
      gf1[i] = g[1];
      gf2[i] = g[2];
    }
  }
}

// After the last frame: its gradients are the pending ones (times the mask).
template <typename acc_t>
ML_CPU_CLONES void flush_block(const Staging<acc_t>& s, acc_t* const* grad, int64_t n) {
  using S = Staging<acc_t>;
  const acc_t* pending = s.row(S::kCarryPending);
  const acc_t* mask = s.row(S::kCarryMask);
  for (int64_t i = 0; i < n; ++i) grad[0][i] = pending[i];
  for (int ch = 1; ch < 4; ++ch) {
    const acc_t* p = s.row(S::kCarryPending + ch);
    for (int64_t i = 0; i < n; ++i) grad[ch][i] = p[i] * mask[i];
  }
}

template <typename data_t, bool kDivide, typename acc_t>
TemporalSums<acc_t> run_chunk(const TemporalArgs<acc_t>& a, Staging<acc_t>& s, int64_t sample, int64_t begin,
                              int64_t end) {
  using S = Staging<acc_t>;
  LaneSums<acc_t, 4> lanes;  // pha L1, pha coherence, fgr L1, fgr coherence
  const int64_t hw = a.pixels, T = a.frames;
  const Input* preds[4] = {&a.pred_pha, &a.pred_fgr, &a.pred_fgr, &a.pred_fgr};
  const Input* truths[4] = {&a.true_pha, &a.true_fgr, &a.true_fgr, &a.true_fgr};
  const Output* grads[4] = {&a.grad_pha, &a.grad_fgr, &a.grad_fgr, &a.grad_fgr};
  // 64-bit offset of (sample, frame, channel) + start in a (B, T, C, H, W) tensor; channel 0 is alpha (C = 1).
  auto offset = [&](int64_t t, int ch, int64_t start) {
    return ch == 0 ? (sample * T + t) * hw + start : ((sample * T + t) * 3 + (ch - 1)) * hw + start;
  };
  for (int64_t start = begin; start < end; start += kBlock) {
    const int64_t n = std::min(kBlock, end - start);
    for (int64_t t = 0; t < T; ++t) {
      FrameView<acc_t, data_t> v{};
      for (int ch = 0; ch < 4; ++ch) {
        const int64_t off = offset(t, ch, start);
        v.pred[ch] = read(*preds[ch], off, n, s.row(S::kPred + ch));
        v.truth[ch] = read_target<data_t>(*truths[ch], off, n, s.row(S::kTruth + ch));
        if (t > 0) v.grad_prev[ch] = target(*grads[ch], offset(t - 1, ch, start), s.row(S::kGrad + ch));
      }
      if (t == 0) {
        frame_block<true, kDivide>(a.params, v, s, n);
      } else {
        frame_block<false, kDivide>(a.params, v, s, n);
        for (int ch = 0; ch < 4; ++ch) write_back(*grads[ch], offset(t - 1, ch, start), n, s.row(S::kGrad + ch));
        lanes.add(1, s.row(S::kPhaCoh), n);
        lanes.add(3, s.row(S::kFgrCoh), n);
      }
      lanes.add(0, s.row(S::kPhaL1), n);
      lanes.add(2, s.row(S::kFgrL1), n);
    }
    acc_t* last[4];
    for (int ch = 0; ch < 4; ++ch) last[ch] = target(*grads[ch], offset(T - 1, ch, start), s.row(S::kGrad + ch));
    flush_block(s, last, n);
    for (int ch = 0; ch < 4; ++ch) write_back(*grads[ch], offset(T - 1, ch, start), n, s.row(S::kGrad + ch));
  }
  return lanes.template total<TemporalSums<acc_t>>();
}

template <typename data_t, typename acc_t>
void forward(const TemporalArgs<acc_t>& a) {
  const bool divide = !(a.params.pha_scale == acc_t(1) && a.params.fgr_scale == acc_t(1));
  const std::vector<TemporalSums<acc_t>> partial = chunk_partials<TemporalSums<acc_t>>(
      a.batch, a.pixels, kChunk, [] { return std::make_unique<Staging<acc_t>>(); },
      [&](auto& staging, int64_t sample, int64_t begin, int64_t end) {
        return divide ? run_chunk<data_t, true>(a, *staging, sample, begin, end)
                      : run_chunk<data_t, false>(a, *staging, sample, begin, end);
      });
  TemporalSums<double> total{0, 0, 0, 0};
  for (const auto& p : partial) total = total + widen(p);  // in chunk order
  temporal_finalize(a, total);
}

}  // namespace

template <typename acc_t>
void temporal_cpu(const TemporalArgs<acc_t>& a) {
  with_target_type<acc_t>(is_uint8(a.true_pha) && is_uint8(a.true_fgr), [&](auto data) { forward<decltype(data)>(a); });
}

template void temporal_cpu<float>(const TemporalArgs<float>&);
template void temporal_cpu<double>(const TemporalArgs<double>&);

}  // namespace mattingloss
