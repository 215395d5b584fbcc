// What the pointwise losses (DIM, composition) share, host and device: their
// kernels' inputs and outputs and what one pixel gives. Each loss is a policy
// (DimPointwise in dim_loss.h, CompositionPointwise in composition.h) that one
// driver per backend runs (cpu_pointwise.h, cuda_pointwise.cuh), so the chunk
// layout, the reads as stored, the stores and the ordered reductions are
// written once. A policy P gives:
//   P::Acc                       the accumulation type
//   P::Args, P::Params, P::Sums  the kernel arguments (a PointwiseIO with the
//                                loss's `params`, naming P as Args::Policy),
//                                their parameters, the per-sample sums
//                                {term 0 .. kTerms-1, weight}
//   P::kTerms, P::kReadsAlpha    terms per pixel; whether `alpha` is read
//   P::kHasAllPixels             whether mask mode kAllPixels exists
//   P::kRawLoadsFirst            CUDA: every raw load of a thread before the
//                                conversions (unless its registers spill)
//   P::with_variant(a, f)        f(kComp, kRho) as integral constants: the
//                                kernels' compile-time parameters for `a`
//   P::with_rho<kRho>(params)    the parameters with that constant rho
//   P::pixel<kComp, kColorGrads>(params, p, alpha, t, img, fg, bg, result)
//   P::loss(params, terms)       the per-pixel loss of reduction "none"
//   P::sums(result)              a pixel's Sums
//   P{a, a.scale}                the end of the pass (common/cpu_reduce.h
//                                reduce_chunks, cuda_reduce.cuh
//                                finish_per_sample): fix, contribution,
//                                finish, scale
#pragma once

#include <cstdint>

#include "defs.h"
#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
#include "cuda_launch.h"
#endif

namespace mattingloss {

template <typename acc_t>
struct PointwiseIO {
  int64_t batch = 0;
  int64_t pixels = 0;  // H * W per sample
  // (B,1,H,W) pred, alpha (read when kReadsAlpha) and mask (data null for
  // kAllPixels); (B,3,H,W) image, fg and bg (data null without them)
  Input pred, alpha, mask, image, fg, bg;
  Output grad_pred, grad_fg, grad_bg;  // per-pixel gradients before the reduction's scale
  acc_t* loss_map = nullptr;  // (B,1,H,W) per-pixel loss, only for reduction="none"
  acc_t* loss = nullptr;      // the scalar loss, except for reduction="none"
  acc_t* scale = nullptr;     // (B,) backward scale per sample
};

// Everything one pixel contributes: its weight, its weighted terms (summed per
// sample in this order, then the weight) and its gradients, before the
// reduction's scale.
template <typename acc_t, int kTerms>
struct PointResult {
  acc_t weight;
  acc_t term[kTerms];
  acc_t grad_pred;
  acc_t grad_fg[3];
  acc_t grad_bg[3];
};

// The drivers' entry points, instantiated per loss in cpu/<loss>_cpu.cpp and
// cuda/<loss>_kernel.cu and called by the host (pointwise_host.h): the CPU
// forward (cpu_pointwise.h), and the CUDA launch (cuda_pointwise.cuh), which
// enqueues the whole forward on `stream`: one kernel whose last block (elected
// through `counter`, which must be 0) does the ordered final reduction;
// `scratch` holds gpu::point_scratch_sums() Sums. Returns the launch status.
template <typename Policy>
void pointwise_cpu(const typename Policy::Args& args);

#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
template <typename Policy>
cudaError_t launch_pointwise(const typename Policy::Args& args, typename Policy::Sums* scratch, unsigned int* counter,
                             cudaStream_t stream);
#endif

}  // namespace mattingloss
