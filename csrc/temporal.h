// The single definition of the pointwise and temporal-coherence terms of
// RobustVideoMatting's matting_loss (PeterL1n/RobustVideoMatting train_loss.py;
// our reference: mattingloss/reference/rvm.py), shared by the CPU and CUDA
// backends. Plain arithmetic on the accumulation type only, so the CPU tests
// test the CUDA path's math too.
//
// Inputs are (B, T, C, H, W), C = 1 for alpha and 3 for the foreground. A
// thread walks one pixel's frames t = 0..T-1 in order and keeps frame t-1's
// values, so every element is read once. With x_t, y_t the predicted and true
// values (the foreground masked by m_t = [true alpha > 0], multiplied in as RVM
// does), per element:
//   L1 term           |x_t - y_t|                                  (all t)
//   coherence term    d_t^2, d_t = (x_t - x_{t-1}) - (y_t - y_{t-1})   (t >= 1)
// and the gradient of  total = sum_k w_k * term_k  with respect to the raw
// prediction at frame t:
//   m_t * (k_l1 * sgn(x_t - y_t) + 2 k_coh * (d_t - d_{t+1}))
// with d_0 = d_T = 0, k_l1 = w_l1 / count_l1 and k_coh = 5 w_coh / count_coh
// (the term's mean's factor: counts are element counts known on the host).
// The frame-(t-1) gradient is final once d_t is known: it is held as
// `pending` (the part without d_t) until then.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/defs.h"
#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace mattingloss {

template <typename acc_t>
struct TemporalParams {
  acc_t pha_scale;  // value of full opacity in true_pha (1, or 255 for 8-bit)
  acc_t fgr_scale;  // value of full intensity in true_fgr
  // d(total)/d(sum of the term's elements): weight / count, x5 for coherence
  // (0 for coherence when T == 1: there is no frame difference).
  acc_t k_pha_l1, k_pha_coh, k_fgr_l1, k_fgr_coh;
};

// The four per-term sums (not yet divided by their counts).
template <typename acc_t>
struct TemporalSums {
  acc_t pha_l1, pha_coh, fgr_l1, fgr_coh;
  ML_INLINE TemporalSums operator+(const TemporalSums& o) const {
    return {pha_l1 + o.pha_l1, pha_coh + o.pha_coh, fgr_l1 + o.fgr_l1, fgr_coh + o.fgr_coh};
  }
};

// torch's abs backward: sgn(e), 0 at e == 0 (and for NaN). Branch-free.
template <typename acc_t>
ML_INLINE acc_t sgn(acc_t e) {
  return static_cast<acc_t>(e > acc_t(0)) - static_cast<acc_t>(e < acc_t(0));
}

// Frame t-1's values of one element, carried to frame t.
template <typename acc_t>
struct Carry {
  acc_t pred;     // x_{t-1} (masked)
  acc_t truth;    // y_{t-1} (masked)
  acc_t pending;  // d(total)/d(x_{t-1}) without the d_t part
};

// What frame t of one element adds: its L1 term, its coherence term (t >= 1),
// and frame t-1's final gradient w.r.t. x_{t-1} (t >= 1; before the mask).
template <typename acc_t>
struct Step {
  acc_t l1, coh, grad_prev;
};

// One element at frame t: x, y its (masked) predicted and true values. kFirst:
// t == 0 (no previous frame; `c` is only written). Updates `c` to frame t.
template <bool kFirst, typename acc_t>
ML_INLINE Step<acc_t> temporal_step(acc_t x, acc_t y, acc_t k_l1, acc_t k_coh, Carry<acc_t>& c) {
  Step<acc_t> s;
  const acc_t e = x - y;
  s.l1 = std::abs(e);
  acc_t pending = k_l1 * sgn(e);
  if (kFirst) {
    s.coh = acc_t(0);
    s.grad_prev = acc_t(0);
  } else {
    // RVM's order: both frame differences first, then their difference.
    const acc_t d = (x - c.pred) - (y - c.truth);
    const acc_t g = acc_t(2) * k_coh * d;
    s.coh = d * d;
    s.grad_prev = c.pending - g;
    pending += g;
  }
  c.pred = x;
  c.truth = y;
  c.pending = pending;
  return s;
}

// RVM's foreground mask, from the true alpha as read (divided by its scale).
template <typename acc_t>
ML_INLINE acc_t fgr_mask(acc_t true_pha) {
  return static_cast<acc_t>(true_pha > acc_t(0));
}

// The targets as the reference reads them: true / scale (divided, not
// multiplied by a reciprocal, so 8-bit targets give the reference's values).
template <typename acc_t>
ML_INLINE acc_t scaled(acc_t v, acc_t scale) {
  return v / scale;
}

// What a backend's kernel gets: raw pointers, each input's dtype (read as
// stored, converted per element to acc_t), sizes and the parameters. Plain
// data with no ATen types, so the .cu file needs no torch headers. Filled by
// prepare_temporal() in temporal_host.cpp.
template <typename acc_t>
struct TemporalArgs {
  TemporalParams<acc_t> params;
  double counts[4];   // elements of each term: B*T*H*W, B*(T-1)*H*W, 3x those
  double weights[4];  // of each term in the total
  int64_t batch = 0, frames = 0;
  int64_t pixels = 0;  // H * W
  Input pred_fgr, pred_pha, true_fgr, true_pha;
  Output grad_fgr, grad_pha;  // final gradients of the total (empty: not requested)
  acc_t* total = nullptr;     // 0-dim
  acc_t* terms = nullptr;     // [pha_l1, pha_coherence, fgr_l1, fgr_coherence] as RVM reports them
};

// Each term's mean (RVM's loss['...'] values, x5 for coherence) and the
// weighted total, from the batch sums (added up in double by both backends:
// float32 partials of a large batch lose digits otherwise). A coherence term
// with no element (T == 1) is 0, where RVM's F.mse_loss of empty tensors is NaN.
template <typename acc_t>
ML_INLINE void temporal_finalize(const TemporalArgs<acc_t>& a, const TemporalSums<double>& s) {
  const double sums[4] = {s.pha_l1, s.pha_coh, s.fgr_l1, s.fgr_coh};
  double total = 0;
  for (int k = 0; k < 4; ++k) {
    double v = a.counts[k] > 0 ? sums[k] / a.counts[k] : 0.0;
    if (k == 1 || k == 3) v = v * 5;
    a.terms[k] = static_cast<acc_t>(v);
    total = total + a.weights[k] * v;
  }
  *a.total = static_cast<acc_t>(total);
}

template <typename acc_t>
ML_INLINE TemporalSums<double> widen(const TemporalSums<acc_t>& s) {
  return {double(s.pha_l1), double(s.pha_coh), double(s.fgr_l1), double(s.fgr_coh)};
}

// The backends' entry points, called by temporal_host.cpp: the CPU kernel
// (cpu/temporal_cpu.cpp) and, below, the CUDA launch (cuda/temporal_kernel.cu).
template <typename acc_t>
void temporal_cpu(const TemporalArgs<acc_t>& args);

#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
constexpr int kTemporalThreads = 128;        // threads per block (small blocks: many per SM for 288x512 clips)
constexpr int kTemporalPixelsPerThread = 4;  // one vector load per input, frame and thread
constexpr int64_t kTemporalChunk = kTemporalThreads * kTemporalPixelsPerThread;  // pixels per block

// Scratch the launch needs: one partial TemporalSums<acc_t> per block.
inline int64_t temporal_cuda_blocks(int64_t batch, int64_t pixels) {
  return batch * ((pixels + kTemporalChunk - 1) / kTemporalChunk);
}

// Enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) adds the partials up in a fixed order
// and writes the terms and the total. Returns the launch status.
template <typename acc_t>
cudaError_t launch_temporal_forward(const TemporalArgs<acc_t>& args, TemporalSums<acc_t>* scratch,
                                    unsigned int* counter, cudaStream_t stream);
#endif

}  // namespace mattingloss
