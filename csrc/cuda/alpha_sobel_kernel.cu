// CUDA backend of alpha_sobel_forward, a register-blocked stencil: one block
// per kAgTileH x kAgTileW tile of one sample (../alpha_sobel.h; the tiling
// depends on the shape alone), each warp walking kAgWarpRows rows of it
// downward, each lane kAgCols consecutive pixels of a row. The 3-row windows
// (pred and ground truth for the Sobel responses, the derivatives ex/ey for the
// adjoint) slide down in registers; a lane's neighbours' column values come by
// warp shuffles, and lanes 0 and 31 read the columns on either side of the
// tile's, so no shared memory and no second pass: each row of every input is
// read once per warp (its two rows above once more), its region weight made as
// it is read. Each input is loaded kAgCols elements at a time (one vector access
// where aligned), every raw load of a row issued before any conversion, and the
// next row's loads issued before the current row is computed. The per-pixel
// math is ../alpha_sobel.h's, in the CPU kernel's rounding order (column pass,
// then row pass). Per-block partial sums go through cub::BlockReduce to
// scratch; the last block (one atomic ticket, as ATen's Reduce.cuh) sums them
// per sample in a fixed order. No floating-point atomics: bitwise
// reproducible. Also the small ops around it: alpha_sobel_weights (the weight
// sums alone, the same tiles and order) and alpha_sobel_compose (one thread:
// the losses from the sums), which the prescaled op runs in the last blocks
// instead (AlphaGradArgs::compose).
#include <cub/block/block_reduce.cuh>

#include <type_traits>

#include "../alpha_sobel.h"
#include "../common/cuda_memory.cuh"
#include "../common/cuda_reduce.cuh"

// The vector-only instances skip g / 1 (exact in IEEE arithmetic) and every
// kernel must match the CPU's results: flushing subnormals would break both.
#ifdef __USE_FAST_MATH__
#error "mattingloss's CUDA kernels need IEEE arithmetic: build without --use_fast_math"
#endif

namespace mattingloss {
namespace {

template <typename acc_t>
struct Partial {
  acc_t v[kAgSums];
};

template <typename acc_t>
struct PartialSum {
  __device__ __forceinline__ Partial<acc_t> operator()(const Partial<acc_t>& a, const Partial<acc_t>& b) const {
    Partial<acc_t> r;
#pragma unroll
    for (int j = 0; j < kAgSums; ++j) r.v[j] = a.v[j] + b.v[j];
    return r;
  }
};

// Run by the last block only: per-sample sums of the tiles' partials, each
// thread a fixed stride of the tiles, then cub::BlockReduce: a fixed order.
template <typename acc_t>
__device__ void finish(const AlphaGradArgs<acc_t>& a, int64_t tiles_per_sample, const acc_t* scratch) {
  using BlockReduce = cub::BlockReduce<Partial<acc_t>, kAgThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  for (int64_t s = 0; s < a.batch; ++s) {
    Partial<acc_t> mine{};
    for (int64_t t = threadIdx.x; t < tiles_per_sample; t += kAgThreads) {
      const acc_t* p = scratch + (s * tiles_per_sample + t) * kAgSums;
#pragma unroll
      for (int j = 0; j < kAgSums; ++j) mine.v[j] += __ldcg(p + j);  // L2: written by other blocks
    }
    const Partial<acc_t> total = BlockReduce(temp).Reduce(mine, PartialSum<acc_t>());
    if (threadIdx.x == 0) {
#pragma unroll
      for (int j = 0; j < kAgSums; ++j) a.sums[s * kAgSums + j] = total.v[j];
    }
    __syncthreads();  // before temp is reused
  }
  // alpha_sobel_prescaled's compose in this block rather than a kernel of its
  // own (LastBlockCompose). Thread 0 wrote every sample's sums above, so it
  // reads them back in its own program order; no other thread takes part.
  if (a.compose.factors != nullptr && threadIdx.x == 0) {
    compose_alpha_losses(a.compose.params, a.sums, a.compose.total, a.compose.components, a.compose.factors);
  }
}

// The block's partial sums to scratch; the last block to finish (one atomic
// ticket) sums them per sample (finish).
template <typename acc_t>
__device__ void reduce_tiles(const AlphaGradArgs<acc_t>& a, const Partial<acc_t>& mine, int64_t tiles_per_sample,
                             acc_t* scratch, unsigned int* counter) {
  gpu::reduce_block_then_last<kAgThreads>(
      mine, PartialSum<acc_t>(), counter,
      [&](const Partial<acc_t>& block_sum) {
#pragma unroll
        for (int j = 0; j < kAgSums; ++j) scratch[int64_t(blockIdx.x) * kAgSums + j] = block_sum.v[j];
      },
      [&] { finish(a, tiles_per_sample, scratch); });
}

__device__ __forceinline__ int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

// Lane L gets lane L-1's v (lane 0 its own: a halo lane, whose value is unused).
template <typename acc_t>
__device__ __forceinline__ acc_t from_left(acc_t v) {
  return __shfl_up_sync(0xffffffffu, v, 1);
}

// Lane L gets lane L+1's v (lane 31 its own, unused likewise).
template <typename acc_t>
__device__ __forceinline__ acc_t from_right(acc_t v) {
  return __shfl_down_sync(0xffffffffu, v, 1);
}

// Where one lane's pixels are: a row strip of kAgCols columns from x0 in the
// rows y0 .. y0 + rows - 1 of its warp, sample `sample`. Shared by both kernels,
// so that alpha_sobel_weights sums the weights in the forward's order.
struct Strip {
  int64_t sample, y0, x0, base;
  int rows;  // output rows of the warp (<= 0: none; the warp still joins the block's reduction)
  int ncol;  // columns inside the image: 0 (left of it, or right of it) to kAgCols
  bool owner;  // lanes 1..30; lanes 0 and 31 are the halo
  __device__ Strip(int64_t H, int64_t W, int64_t tiles_x, int64_t tiles_per_sample) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    sample = blockIdx.x / tiles_per_sample;
    const int64_t tile = blockIdx.x % tiles_per_sample;
    y0 = (tile / tiles_x) * kAgTileH + warp * kAgWarpRows;
    x0 = (tile % tiles_x) * kAgTileW + (lane - 1) * kAgCols;
    base = sample * H * W;
    rows = y0 < H ? static_cast<int>(min64(kAgWarpRows, H - y0)) : 0;
    ncol = x0 < 0 || x0 >= W ? 0 : static_cast<int>(min64(kAgCols, W - x0));
    owner = lane >= 1 && lane <= 30;
  }
  // Elements of row y to read: none outside the image (zero padding).
  __device__ int n(int64_t y, int64_t H) const { return y >= 0 && y < H ? ncol : 0; }
  // Offset of row y's first column (only dereferenced where n(y) > 0).
  __device__ int64_t at(int64_t y, int64_t W) const { return base + y * W + x0; }
};

// One row of each sliding window: pred and ground truth (row r), the region
// weight and the derivatives ex/ey, and (kVecOnly) the raw loads of pred and
// gt. A step reads three rows as (old, mid, new): pred, gt, ex and ey at rows
// old..new, the weight at mid and new; kVecOnly loads the next row into a 4th.
template <typename acc_t, typename RawP, typename RawG>
struct WindowRow {
  acc_t p[kAgCols], g[kAgCols], w[kAgCols], ex[kAgCols], ey[kAgCols];
  RawP rp;
  RawG rg;
};

// PredT, GtT, MaskT: the inputs' element types (gpu::Dyn: read through a
// dtype switch after the loads). kFast: the parameters are ViTMatte's and
// GCA's (L1 of the masked difference, a 0/1 region), so the per-pixel math's
// branches on them fold at compile time (with them, the loop is 1.7x longer).
// kVecOnly: the launch has vec (below), so every strip is C columns or none
// and no element path is compiled; the loop is unrolled by 4, the longest
// lifetime of a row (pred, loaded one step ahead, is read for 3 more), so
// sliding the windows is register renaming, not copies. kUnitScale:
// alpha_scale is 1, and gt / 1 is gt (IEEE: exact, whatever gt is; a NaN stays
// a NaN), so the division is skipped. Instances: alpha_sobel_forward's launch
// (kVecOnly also needs one gradient map or none, and H <= 2^30).
// vec: every pointer aligned to kAgCols elements and W % kAgCols == 0.
template <typename acc_t, int64_t kSobel, typename PredT, typename GtT, typename MaskT, bool kFast, bool kVecOnly,
          bool kUnitScale>
__global__ void __launch_bounds__(kAgThreads)
    alpha_sobel_kernel(const AlphaGradArgs<acc_t> a, const int64_t tiles_x, const int64_t tiles_per_sample,
                       const bool vec, acc_t* scratch, unsigned int* counter) {
  constexpr int C = kAgCols;
  constexpr bool kStencil = kSobel != kSobelNone;
  // Gradient maps written: kVecOnly instances write one (the prescaled op's, or
  // none), so the other maps' per-pixel terms and store guards are not compiled.
  constexpr int kMaps = kVecOnly ? 1 : kMaxGroups;
  // pred / gt rows read ahead of the output row, and the weight's: the stencil
  // needs the derivatives at y+1 (pred rows y..y+2, weight row y+1) to finish row y.
  constexpr int kAhead = kStencil ? 2 : 0, kAheadW = kStencil ? 1 : 0;
  using RawP = typename gpu::RawOf<PredT, C>::type;
  using RawG = typename gpu::RawOf<GtT, C>::type;
  using RawM = typename gpu::RawOf<MaskT, C>::type;
  using Row = WindowRow<acc_t, RawP, RawG>;
  const int64_t H = a.height, W = a.width;
  const Strip s(H, W, tiles_x, tiles_per_sample);
  AlphaGradParams<acc_t> P = a.params;
  if (a.factors) scale_coefs_for_sample(P, a.factors, s.sample, a.batch);
  P.sobel = kSobel;  // sobel_pixel's branch, resolved at compile time
  if constexpr (kFast) {  // the values they have (fast_params), as constants
    P.rho = kL1;
    P.mask_in_diff = true;
    P.binary_mask = true;
  }
  const int64_t plane = a.batch * H * W;
  const bool has_mask = a.mask.data != nullptr;

  // Whether column i of a strip with n columns in the image is in it: with
  // kVecOnly n is C or 0, so one test serves the C columns.
  auto in_cols = [](int n, int i) { return kVecOnly ? n != 0 : i < n; };
  // s.n(y, H); kVecOnly: one unsigned 32-bit compare instead of two 64-bit ones
  // (the launcher's H <= 2^30, so y in -2 .. H + 17 stays in range).
  auto n_of = [&](int64_t y) { return kVecOnly ? (uint32_t(y) < uint32_t(H) ? s.ncol : 0) : s.n(y, H); };
  // C elements of an input at row y (zero bits outside the image: +0 in every
  // dtype); kVecOnly: the strip is C columns or none.
  auto load_vec = [&](auto tag, const Input& in, int64_t y, auto& raw) {
    raw = {};
    if (n_of(y) == C) raw = gpu::load_raw_t<decltype(tag), C>(in, s.at(y, W), C, true);
  };
  auto load_pg = [&](int64_t y, RawP& rp, RawG& rg) {
    if constexpr (kVecOnly) {
      load_vec(PredT{}, a.pred, y, rp);
      load_vec(GtT{}, a.gt, y, rg);
    } else {
      const int n = s.n(y, H);
      const bool v = vec && n == C;
      rp = gpu::load_raw_t<PredT, C>(a.pred, s.at(y, W), n, v);
      rg = gpu::load_raw_t<GtT, C>(a.gt, s.at(y, W), n, v);
    }
  };
  auto load_m = [&](int64_t y, RawM& rm) {
    if (!has_mask) return;
    if constexpr (kVecOnly) {
      load_vec(MaskT{}, a.mask, y, rm);
    } else {
      const int n = s.n(y, H);
      rm = gpu::load_raw_t<MaskT, C>(a.mask, s.at(y, W), n, vec && n == C);
    }
  };
  auto to_pg = [&](const RawP& rp, const RawG& rg, acc_t* p, acc_t* g) {
    gpu::convert_t<PredT, C>(a.pred, rp, p);
    gpu::convert_t<GtT, C>(a.gt, rg, g);
#pragma unroll
    for (int i = 0; i < C; ++i) {
      // kUnitScale: g / 1 is g bitwise (IEEE division; no flush to zero in this build)
      if constexpr (!kUnitScale) g[i] = ground_truth(P, g[i]);  // 0 outside the image too
    }
  };
  // kVecOnly: region_weight for kFast's modes (binary: equal, range, or every
  // pixel) as one closed interval lo_in <= t <= hi_in, so the loop holds no
  // mode test (selecting the tests by the mode cost a reload of the mode and a
  // branch per element, 0.4 warp-instructions per pixel): equal is [lo, lo];
  // range's t > lo is t >= the next float above lo (exact for float t, -0 and
  // subnormals included: no flush to zero in this build; lo = +inf admits
  // nothing: NaN) and t < hi likewise; no mask reads t = 1 in [-inf, inf]. A
  // NaN t or bound fails both forms: the same 0 or 1 for every t.
  acc_t lo_in = -INFINITY, hi_in = INFINITY;
  if constexpr (kVecOnly) {
    if (P.mask_mode == kUnknownEqual) {
      lo_in = hi_in = P.mask_lo;
    } else if (P.mask_mode == kUnknownRange) {
      lo_in = P.mask_lo == INFINITY ? NAN : nextafterf(P.mask_lo, INFINITY);
      hi_in = P.mask_hi == -INFINITY ? NAN : nextafterf(P.mask_hi, -INFINITY);
    }
  }
  // The region weight of row y: 0 outside the image (F.conv2d's padding of the mask product).
  auto to_w = [&](int64_t y, const RawM& rm, acc_t* w) {
    acc_t stored[C];
    if (has_mask) {
      gpu::convert_t<MaskT, C>(a.mask, rm, stored);
    } else {
#pragma unroll
      for (int i = 0; i < C; ++i) stored[i] = acc_t(1);
    }
    const int n = s.n(y, H);
#pragma unroll
    for (int i = 0; i < C; ++i) {
      if constexpr (kVecOnly) {
        w[i] = (n != 0) & (stored[i] >= lo_in) & (stored[i] <= hi_in) ? acc_t(1) : acc_t(0);
      } else {
        w[i] = in_cols(n, i) ? region_weight(stored[i], P.mask_mode, P.mask_lo, P.mask_hi) : acc_t(0);
      }
    }
  };

  Partial<acc_t> mine{};
  if (s.rows > 0) {  // uniform across the warp: every shuffle below runs with all 32 lanes
    RawP rp{};
    RawG rg{};
    RawM rm{};
    // One row: y = y0 + j is the output row (j < 0: the window's fill). o, m, n:
    // the window rows (old, mid, new) of the stencil, n the one this step fills;
    // kVecOnly: q gets the next row's raw pred and gt (n has this one's).
    auto step = [&](const int j, Row& o, Row& m, Row& n, Row& q) {
      const int64_t y = s.y0 + j;
      // pred and gt at row y + kAhead, the weight at y + kAheadW, ex/ey at y + 1.
      to_pg(kVecOnly ? n.rp : rp, kVecOnly ? n.rg : rg, n.p, n.g);
      to_w(y + kAheadW, rm, n.w);
      if (j + 1 < s.rows) {  // the next row's loads, in flight while this one is computed
        load_pg(y + 1 + kAhead, kVecOnly ? q.rp : rp, kVecOnly ? q.rg : rg);
        load_m(y + 1 + kAheadW, rm);
      }
#pragma unroll
      for (int i = 0; i < C; ++i) {
        n.ex[i] = acc_t(0);
        n.ey[i] = acc_t(0);
      }
      if constexpr (kStencil) {
        // Column pass at the strip's columns and one either side (from the neighbour lanes).
        acc_t sp[C + 2], dp[C + 2], sg[C + 2], dg[C + 2];
#pragma unroll
        for (int i = 0; i < C; ++i) {
          sp[i + 1] = sobel_smooth(o.p[i], m.p[i], n.p[i]);
          dp[i + 1] = sobel_diff(o.p[i], n.p[i]);
          sg[i + 1] = sobel_smooth(o.g[i], m.g[i], n.g[i]);
          dg[i + 1] = sobel_diff(o.g[i], n.g[i]);
        }
        sp[0] = from_left(sp[C]);
        dp[0] = from_left(dp[C]);
        sg[0] = from_left(sg[C]);
        dg[0] = from_left(dg[C]);
        sp[C + 1] = from_right(sp[1]);
        dp[C + 1] = from_right(dp[1]);
        sg[C + 1] = from_right(sg[1]);
        dg[C + 1] = from_right(dg[1]);
        const int ne = s.n(y + 1, H);                           // columns where row y+1 is in the image
        const bool own = s.owner && j + 1 >= 0 && j + 1 < s.rows;  // row y+1's Sobel sums are this warp's
#pragma unroll
        for (int i = 0; i < C; ++i) {
          SobelResult<acc_t> r;
          sobel_pixel(P, sobel_diff(sp[i], sp[i + 2]), sobel_smooth(dp[i], dp[i + 1], dp[i + 2]),
                      sobel_diff(sg[i], sg[i + 2]), sobel_smooth(dg[i], dg[i + 1], dg[i + 2]), n.w[i], r);
          const bool in = in_cols(ne, i);  // the derivatives are 0 outside the image (the adjoint's padding)
          n.ex[i] = in ? r.ex : acc_t(0);
          n.ey[i] = in ? r.ey : acc_t(0);
          if (in && own) {
            mine.v[kSumSobelX] += r.sx;
            mine.v[kSumSobelY] += r.sy;
            mine.v[kSumPenaltyX] += r.px;
            mine.v[kSumPenaltyY] += r.py;
          }
        }
      }
      if (j >= 0) {  // uniform: the shuffles below run with all lanes
        acc_t adj[C] = {};
        if constexpr (kStencil) {
          acc_t cx[C + 2], cy[C + 2];
#pragma unroll
          for (int i = 0; i < C; ++i) {
            cx[i + 1] = sobel_adjoint_col_x(o.ex[i], m.ex[i], n.ex[i]);
            cy[i + 1] = sobel_adjoint_col_y(o.ey[i], n.ey[i]);
          }
          cx[0] = from_left(cx[C]);
          cy[0] = from_left(cy[C]);
          cx[C + 1] = from_right(cx[1]);
          cy[C + 1] = from_right(cy[1]);
#pragma unroll
          for (int i = 0; i < C; ++i) adj[i] = sobel_adjoint_row(cx[i], cx[i + 2], cy[i], cy[i + 1], cy[i + 2]);
        }
        const acc_t* p = kStencil ? o.p : n.p;  // row y
        const acc_t* g = kStencil ? o.g : n.g;
        const acc_t* w = kStencil ? m.w : n.w;
        acc_t grad[kMaxGroups][C], value[C];
#pragma unroll
        for (int i = 0; i < C; ++i) {
          PointResult<acc_t> pt;
          alpha_pixel(P, p[i], g[i], w[i], pt);
          if (s.owner && in_cols(s.ncol, i)) {
            mine.v[kSumUnknown] += pt.unknown;
            mine.v[kSumKnown] += pt.known;
            mine.v[kSumWUnknown] += pt.w;
            mine.v[kSumWKnown] += pt.wk;
          }
          value[i] = pt.value;
#pragma unroll
          for (int k = 0; k < kMaps; ++k) {
            // kVecOnly: one map, so group[2] is 0 (the launcher's condition): the same sum
            grad[k][i] = pt.grad[k] + (kVecOnly || P.group[2] == k ? adj[i] : acc_t(0));
          }
        }
        if (s.owner && s.ncol > 0) {
          const int64_t off = s.at(y, W);
          const bool v = kVecOnly || (vec && s.ncol == C);
          // (per-pixel values only without a Sobel term: the host's check)
          if (!kStencil && a.values.data) gpu::store_as<C, acc_t>(a.values.data, off, s.ncol, v, value);
          if (a.grad.data) {
#pragma unroll  // constant indices keep grad in registers
            for (int k = 0; k < kMaps; ++k) {
              if (kVecOnly || k < a.groups) {
                if constexpr (kVecOnly) {
                  // float32 maps, one 16-byte store: nvcc split a Pack's or a float4's
                  // assignment into 4 here. A plain (weak) st.global.v4 (__stwb would be a
                  // STRONG.SM store). 16-byte aligned: the launcher checks the base, off is a
                  // multiple of 4 floats.
                  static_assert(std::is_same_v<PredT, float>, "vector-only instances store float32 maps");
                  float* dst = static_cast<float*>(a.grad.data) + k * plane + off;
                  asm volatile("st.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(dst), "f"(grad[k][0]),
                               "f"(grad[k][1]), "f"(grad[k][2]), "f"(grad[k][3])
                               : "memory");
                } else {
                  gpu::store_t<PredT, C>(a.grad, k * plane + off, s.ncol, v, grad[k]);
                }
              }
            }
          }
        }
      }
    };

    // The window before the first step: pred and gt at rows y0-2 and y0-1 (stencil),
    // zeros elsewhere (ex, ey at y0-2 and y0-1 are the fill steps' to make).
    Row r0{}, r1{}, r2{}, r3{};
    RawP& rp0 = kVecOnly ? r2.rp : rp;  // the first step's row
    RawG& rg0 = kVecOnly ? r2.rg : rg;
    if constexpr (kStencil) {
      RawP ap, bp;
      RawG ag, bg;
      load_pg(s.y0 - 2, ap, ag);
      load_pg(s.y0 - 1, bp, bg);
      load_pg(s.y0, rp0, rg0);
      load_m(s.y0 - 1, rm);
      to_pg(ap, ag, r0.p, r0.g);
      to_pg(bp, bg, r1.p, r1.g);
    } else {
      load_pg(s.y0, rp0, rg0);
      load_m(s.y0, rm);
    }
    // Iterations j < 0 only fill the window (the derivatives at y0-1 and y0).
    int j = kStencil ? -2 : 0;
    if constexpr (kVecOnly) {
      // Unrolled by 4, the rows' roles rotating: no copies.
#pragma unroll 1
      while (true) {
        step(j, r0, r1, r2, r3);
        if (++j >= s.rows) break;
        step(j, r1, r2, r3, r0);
        if (++j >= s.rows) break;
        step(j, r2, r3, r0, r1);
        if (++j >= s.rows) break;
        step(j, r3, r0, r1, r2);
        if (++j >= s.rows) break;
      }
    } else {
#pragma unroll 1
      for (; j < s.rows; ++j) {
        step(j, r0, r1, r2, r2);
        if constexpr (kStencil) {  // slide the windows down one row
#pragma unroll
          for (int i = 0; i < C; ++i) {
            r0.p[i] = r1.p[i];
            r1.p[i] = r2.p[i];
            r0.g[i] = r1.g[i];
            r1.g[i] = r2.g[i];
            r1.w[i] = r2.w[i];
            r0.ex[i] = r1.ex[i];
            r1.ex[i] = r2.ex[i];
            r0.ey[i] = r1.ey[i];
            r1.ey[i] = r2.ey[i];
          }
        }
      }
    }
  }
  reduce_tiles(a, mine, tiles_per_sample, scratch, counter);
}

// alpha_sobel_weights: the same tiles, each lane the same pixels in the same
// order as the forward's pointwise sums, the same reduction: the weight sums
// bitwise the forward's.
template <typename acc_t>
__global__ void __launch_bounds__(kAgThreads)
    alpha_weights_kernel(const AlphaGradArgs<acc_t> a, const int64_t tiles_x, const int64_t tiles_per_sample,
                         const bool vec, acc_t* scratch, unsigned int* counter) {
  constexpr int C = kAgCols;
  const AlphaGradParams<acc_t>& P = a.params;
  const int64_t H = a.height, W = a.width;
  const Strip s(H, W, tiles_x, tiles_per_sample);
  Partial<acc_t> mine{};
  if (s.owner && s.ncol > 0) {
    for (int j = 0; j < s.rows; ++j) {
      const int64_t y = s.y0 + j;
      acc_t stored[C];
      if (a.mask.data) {
        gpu::load<C>(a.mask, s.at(y, W), s.ncol, vec && s.ncol == C, stored);
      } else {
#pragma unroll
        for (int i = 0; i < C; ++i) stored[i] = acc_t(1);
      }
#pragma unroll
      for (int i = 0; i < C; ++i) {
        if (i < s.ncol) {
          const acc_t w = region_weight(stored[i], P.mask_mode, P.mask_lo, P.mask_hi);
          mine.v[kSumWUnknown] += w;
          mine.v[kSumWKnown] += known_weight(w);
        }
      }
    }
  }
  reduce_tiles(a, mine, tiles_per_sample, scratch, counter);
}

}  // namespace

namespace {

// Both kernels' grid: one block per tile of one sample.
struct TileGrid {
  int64_t tiles_x, tiles_per_sample, blocks;
  explicit TileGrid(int64_t batch, int64_t height, int64_t width)
      : tiles_x((width + kAgTileW - 1) / kAgTileW),
        tiles_per_sample(alpha_sobel_tiles(height, width)),
        blocks(batch * tiles_per_sample) {}
  bool fits() const { return blocks <= 0x7fffffff; }  // > 2^40 pixels: cannot fit in memory anyway
};

// Whether every row strip can be read and written kAgCols elements at a time:
// each pointer aligned to kAgCols of its elements, and every row starting at a
// multiple of kAgCols (W % kAgCols == 0; then every gradient map does too).
template <typename acc_t>
bool strips_aligned(const AlphaGradArgs<acc_t>& a) {
  auto ok = [](const void* p, Dtype d) { return p == nullptr || gpu::aligned(p, kAgCols * element_bytes(d)); };
  return a.width % kAgCols == 0 && ok(a.pred.data, a.pred.dtype) && ok(a.gt.data, a.gt.dtype) &&
         ok(a.mask.data, a.mask.dtype) && ok(a.grad.data, a.grad.dtype) &&
         (a.values.data == nullptr || gpu::aligned(a.values.data, kAgCols * int(sizeof(acc_t))));
}

// The parameters alpha_sobel_kernel's kFast instance assumes.
template <typename acc_t>
bool fast_params(const AlphaGradArgs<acc_t>& a) {
  return a.pred.dtype == Dtype::kFloat && a.gt.dtype == Dtype::kFloat && a.params.rho == kL1 &&
         a.params.mask_in_diff && a.params.binary_mask;
}

// The vector-only instances (fast parameters, vec): a float32 or uint8 trimap
// (or none: any, the mask is not read), alpha_scale 1 or not; false for a
// trimap of another dtype. Only the Sobel difference (ViTMatte, the
// benchmark's trio) has them: each instance costs build time and size (issue 30).
template <int64_t kSobel, typename MaskT>
void launch_vec_scale(const AlphaGradArgs<float>& a, const TileGrid& t, float* scratch, unsigned int* counter,
                      cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned int>(t.blocks));
  if (a.params.alpha_scale == 1.0f) {
    alpha_sobel_kernel<float, kSobel, float, float, MaskT, true, true, true>
        <<<grid, kAgThreads, 0, stream>>>(a, t.tiles_x, t.tiles_per_sample, true, scratch, counter);
  } else {
    alpha_sobel_kernel<float, kSobel, float, float, MaskT, true, true, false>
        <<<grid, kAgThreads, 0, stream>>>(a, t.tiles_x, t.tiles_per_sample, true, scratch, counter);
  }
}

template <int64_t kSobel>
bool launch_vec(const AlphaGradArgs<float>& a, const TileGrid& t, float* scratch, unsigned int* counter,
                cudaStream_t stream) {
  // One gradient map at most (then every group index is 0): the prescaled op's
  // map, or none; several maps (a direct forward call) take the fast instance.
  // Rows in 32 bits (y - 2 .. y + 17 too).
  if (a.grad.data != nullptr && a.groups != 1) return false;
  if (a.height > (int64_t(1) << 30)) return false;
  if constexpr (kSobel == kSobelDiff) {
    if (a.mask.data == nullptr || a.mask.dtype == Dtype::kFloat) {
      launch_vec_scale<kSobel, float>(a, t, scratch, counter, stream);
      return true;
    }
    if (a.mask.dtype == Dtype::kUInt8) {
      launch_vec_scale<kSobel, uint8_t>(a, t, scratch, counter, stream);
      return true;
    }
  }
  return false;
}

template <int64_t kSobel, typename acc_t>
void launch_style(const AlphaGradArgs<acc_t>& a, const TileGrid& t, bool vec, acc_t* scratch, unsigned int* counter,
                  cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned int>(t.blocks));
  if constexpr (std::is_same_v<acc_t, double>) {  // a float64 prediction: the accumulation type's
    alpha_sobel_kernel<double, kSobel, double, gpu::Dyn, gpu::Dyn, false, false, false>
        <<<grid, kAgThreads, 0, stream>>>(a, t.tiles_x, t.tiles_per_sample, vec, scratch, counter);
  } else if (fast_params(a)) {
    if (vec && launch_vec<kSobel>(a, t, scratch, counter, stream)) return;
    alpha_sobel_kernel<float, kSobel, float, float, gpu::Dyn, true, false, false>
        <<<grid, kAgThreads, 0, stream>>>(a, t.tiles_x, t.tiles_per_sample, vec, scratch, counter);
  } else {
    alpha_sobel_kernel<float, kSobel, gpu::Dyn, gpu::Dyn, gpu::Dyn, false, false, false>
        <<<grid, kAgThreads, 0, stream>>>(a, t.tiles_x, t.tiles_per_sample, vec, scratch, counter);
  }
}

}  // namespace

template <typename acc_t>
cudaError_t launch_alpha_sobel_forward(const AlphaGradArgs<acc_t>& a, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream) {
  const TileGrid t(a.batch, a.height, a.width);
  if (!t.fits()) return cudaErrorInvalidConfiguration;
  const bool vec = strips_aligned(a);
  switch (a.params.sobel) {
    case kSobelNone: launch_style<kSobelNone>(a, t, vec, scratch, counter, stream); break;
    case kSobelDiff: launch_style<kSobelDiff>(a, t, vec, scratch, counter, stream); break;
    default: launch_style<kSobelMagnitude>(a, t, vec, scratch, counter, stream); break;
  }
  return cudaGetLastError();
}

template <typename acc_t>
cudaError_t launch_alpha_sobel_weights(const AlphaGradArgs<acc_t>& a, acc_t* scratch, unsigned int* counter,
                                          cudaStream_t stream) {
  const TileGrid t(a.batch, a.height, a.width);
  if (!t.fits()) return cudaErrorInvalidConfiguration;
  const bool vec = a.width % kAgCols == 0 &&
                   (a.mask.data == nullptr || gpu::aligned(a.mask.data, kAgCols * element_bytes(a.mask.dtype)));
  alpha_weights_kernel<<<static_cast<unsigned int>(t.blocks), kAgThreads, 0, stream>>>(
      a, t.tiles_x, t.tiles_per_sample, vec, scratch, counter);
  return cudaGetLastError();
}

namespace {

template <typename acc_t>
__global__ void compose_kernel(const AlphaComposeParams<acc_t> params, const acc_t* sums, acc_t* total,
                               acc_t* components, acc_t* factors) {
  compose_alpha_losses(params, sums, total, components, factors);
}

}  // namespace

template <typename acc_t>
cudaError_t launch_alpha_sobel_compose(const AlphaComposeParams<acc_t>& params, const acc_t* sums, acc_t* total,
                                          acc_t* components, acc_t* factors, cudaStream_t stream) {
  compose_kernel<<<1, 1, 0, stream>>>(params, sums, total, components, factors);
  return cudaGetLastError();
}

template cudaError_t launch_alpha_sobel_compose<float>(const AlphaComposeParams<float>&, const float*, float*,
                                                          float*, float*, cudaStream_t);
template cudaError_t launch_alpha_sobel_compose<double>(const AlphaComposeParams<double>&, const double*, double*,
                                                           double*, double*, cudaStream_t);
template cudaError_t launch_alpha_sobel_forward<float>(const AlphaGradArgs<float>&, float*, unsigned int*,
                                                          cudaStream_t);
template cudaError_t launch_alpha_sobel_forward<double>(const AlphaGradArgs<double>&, double*, unsigned int*,
                                                           cudaStream_t);
template cudaError_t launch_alpha_sobel_weights<float>(const AlphaGradArgs<float>&, float*, unsigned int*,
                                                          cudaStream_t);
template cudaError_t launch_alpha_sobel_weights<double>(const AlphaGradArgs<double>&, double*, unsigned int*,
                                                           cudaStream_t);

}  // namespace mattingloss
