// CPU backend of matting_metrics, one sample after the other:
//   1. (gradient) each image's minimum and maximum, for its normalisation;
//   2. (connectivity) q per pixel: how many thresholds both alphas reach, so the
//      intersection mask of threshold i is q >= i;
//   3. (connectivity) per threshold, in parallel: union-find labelling of the
//      mask's row runs (4-connectivity; roots are each component's first row-major pixel),
//      sizes and tie-break keys, the largest component (../metrics.h pack_best)
//      as row runs; then each pixel's level (the first threshold whose largest
//      component misses it), filled run by run;
//   4. per row, in parallel: the SAD/MSE terms, the separable derivative-of-Gaussian
//      filter (a column pass into a padded row, then a row pass; replicated
//      borders) and the connectivity term, summed per row;
//   5. the rows' sums added in row order: the same bits with any thread count.
#pragma GCC optimize("fp-contract=off")  // products rounded on their own, as the references and the CUDA kernel

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../metrics.h"
#include "../metrics_host.h"

namespace mattingloss {
namespace metrics {
namespace {

inline Image sample_of(const Image& im, int64_t offset) {
  Image s = im;
  s.data = static_cast<const char*>(im.data) + offset * element_bytes(im.dtype);
  return s;
}

// A run of consecutive mask pixels in one row: [x0, x1).
struct Run {
  int32_t y, x0, x1;
};

// What omega of one threshold is: the largest component's runs in row-major
// order, or (background: GCA's label 0 won) the mask's runs, which omega misses.
struct Omega {
  std::vector<Run> runs;
  bool background = false;
};

struct LabelScratch {
  std::vector<Run> runs;
  std::vector<int64_t> row_start;  // runs of row y: [row_start[y], row_start[y + 1])
  std::vector<int32_t> parent;     // per run
  std::vector<uint32_t> size, key;
};

// Eight q values (each 0..10) at once: the high bit of byte j of the result is
// set where q[j] < i (q + 0x80 - i stays below 0x100: no carry between bytes).
constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
inline uint64_t below8(const uint8_t* q, uint64_t bias) {
  uint64_t v;
  std::memcpy(&v, q, 8);
  return ~(v + bias) & kHigh;
}

inline int32_t find_run(int32_t* parent, int32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

// omega of threshold i (1..10) for one sample: 1 where the pixel is in the
// largest 4-connected component of {q >= i} (or, for GCA when the background
// wins, where q < i). Labelled by runs: union-find over the row runs, a run
// united with the runs of the row above that share a column. Runs are numbered
// in row-major order and a root is linked under the smaller root, so each
// component's root is its first run, the one holding its first row-major pixel;
// MATLAB's column-major key of a component is the least x0 * H + y of its runs.
void largest_component(const Params& P, const uint8_t* q, int64_t H, int64_t W, int i, LabelScratch& s,
                       Omega& omega) {
  const int64_t N = H * W;
  s.runs.clear();
  s.row_start.assign(H + 1, 0);
  int64_t masked = 0;
  const uint64_t bias = kOnes * uint64_t(0x80 - i);
  for (int64_t y = 0; y < H; ++y) {
    s.row_start[y] = int64_t(s.runs.size());
    const uint8_t* row = q + y * W;
    int64_t x = 0;
    while (x < W) {
      while (x + 8 <= W && below8(row + x, bias) == kHigh) x += 8;
      while (x < W && row[x] < i) ++x;
      if (x == W) break;
      const int64_t x0 = x;
      while (x + 8 <= W && below8(row + x, bias) == 0) x += 8;
      while (x < W && row[x] >= i) ++x;
      s.runs.push_back({int32_t(y), int32_t(x0), int32_t(x)});
      masked += x - x0;
    }
  }
  s.row_start[H] = int64_t(s.runs.size());
  const int64_t R = int64_t(s.runs.size());
  s.parent.resize(R);
  int32_t* parent = s.parent.data();
  for (int64_t r = 0; r < R; ++r) parent[r] = int32_t(r);
  for (int64_t y = 1; y < H; ++y) {
    int64_t a = s.row_start[y - 1];
    const int64_t a_end = s.row_start[y];
    for (int64_t r = s.row_start[y]; r < s.row_start[y + 1]; ++r) {
      const Run& run = s.runs[r];
      while (a < a_end && s.runs[a].x1 <= run.x0) ++a;  // runs above ending before this one starts
      for (int64_t u = a; u < a_end && s.runs[u].x0 < run.x1; ++u) {
        const int32_t ra = find_run(parent, int32_t(u)), rb = find_run(parent, int32_t(r));
        if (ra < rb) {
          parent[rb] = ra;
        } else if (rb < ra) {
          parent[ra] = rb;
        }
      }
    }
  }
  s.size.assign(R, 0);
  s.key.assign(R, 0xFFFFFFFFu);
  for (int64_t r = 0; r < R; ++r) {
    const int32_t root = find_run(parent, int32_t(r));
    parent[r] = root;
    const Run& run = s.runs[r];
    s.size[root] += uint32_t(run.x1 - run.x0);
    const uint32_t k = tie_key(P.convention, run.y, run.x0, H, W);
    if (k < s.key[root]) s.key[root] = k;
  }
  uint64_t best = 0;
  int32_t best_root = -1;
  for (int64_t r = 0; r < R; ++r) {
    if (parent[r] != r) continue;
    const uint64_t v = pack_best(s.size[r], s.key[r]);
    if (v > best) {
      best = v;
      best_root = int32_t(r);
    }
  }
  omega.runs.clear();
  omega.background = background_wins(P.convention, N - masked, best);
  if (omega.background) {
    omega.runs = s.runs;  // omega is the complement of the mask: its runs are what omega misses
  } else {
    for (int64_t r = 0; r < R; ++r)
      if (parent[r] == best_root) omega.runs.push_back(s.runs[r]);
  }
}

// The levels from the thresholds' omegas: level = i - 1 for the first i whose
// omega misses the pixel, else 10. Written from i = 10 down to 1, each
// threshold overwriting what it misses, so the smallest such i stays.
void fill_levels(const std::vector<Omega>& omegas, int64_t N, int64_t W, uint8_t* level) {
  std::memset(level, kLevels - 1, size_t(N));
  for (int i = kLevels - 1; i >= 1; --i) {
    const Omega& o = omegas[i - 1];
    const uint8_t v = uint8_t(i - 1);
    if (o.background) {  // misses the mask: the runs
      for (const Run& run : o.runs) std::memset(level + run.y * W + run.x0, v, size_t(run.x1 - run.x0));
    } else {  // misses everything but the best component's runs (row-major order)
      int64_t cursor = 0;
      for (const Run& run : o.runs) {
        const int64_t start = run.y * W + run.x0;
        std::memset(level + cursor, v, size_t(start - cursor));
        cursor = run.y * W + run.x1;
      }
      std::memset(level + cursor, v, size_t(N - cursor));
    }
  }
}

struct RowScratch {
  std::vector<double> sg_p, sd_p, sg_g, sd_g;  // column passes, padded by kHalf on each side
  std::vector<double> gx, gy, amp_p, amp_g;     // row passes and magnitudes
};

// ../metrics.h column_pass for a whole row y of an image normalised beforehand,
// tap by tap across the row (the same sums in the same order: dot9's), so the
// compiler vectorises over x.
inline void column_rows(const Params& P, const double* n, int64_t y, int64_t H, int64_t W, double* sg,
                        double* sd) {
  for (int i = 0; i < kTaps; ++i) {
    const int64_t yy = std::min<int64_t>(std::max<int64_t>(y + i - kHalf, 0), H - 1);
    const double* r = n + yy * W;
    const double wg = P.taps_g[i], wd = P.taps_d[i];
    if (i == 0) {
      for (int64_t x = 0; x < W; ++x) {
        sg[x] = mul_rn(wg, r[x]);
        sd[x] = mul_rn(wd, r[x]);
      }
    } else {
      for (int64_t x = 0; x < W; ++x) {
        sg[x] = add_rn(sg[x], mul_rn(wg, r[x]));
        sd[x] = add_rn(sd[x], mul_rn(wd, r[x]));
      }
    }
  }
}

// The row pass (gx = dot9(taps_d, sg[x-4..x+4]), gy = dot9(taps_g, sd[x-4..x+4]); sg, sd
// padded by kHalf) and the magnitudes, tap by tap across the row.
inline void row_magnitudes(const Params& P, const double* sg, const double* sd, int64_t W, double* gx, double* gy,
                           double* amp) {
  for (int k = 0; k < kTaps; ++k) {
    const double wd = P.taps_d[k], wg = P.taps_g[k];
    const double* a = sg + k;
    const double* b = sd + k;
    if (k == 0) {
      for (int64_t x = 0; x < W; ++x) {
        gx[x] = mul_rn(wd, a[x]);
        gy[x] = mul_rn(wg, b[x]);
      }
    } else {
      for (int64_t x = 0; x < W; ++x) {
        gx[x] = add_rn(gx[x], mul_rn(wd, a[x]));
        gy[x] = add_rn(gy[x], mul_rn(wg, b[x]));
      }
    }
  }
  for (int64_t x = 0; x < W; ++x) amp[x] = magnitude(gx[x], gy[x]);
}

inline void pad_row(std::vector<double>& r, int64_t W) {
  for (int k = 0; k < kHalf; ++k) {
    r[k] = r[kHalf];
    r[kHalf + W + k] = r[kHalf + W - 1];
  }
}

void metrics_sample(const MetricsArgs& A, int64_t b) {
  const Params& P = A.params;
  const int64_t H = A.height, W = A.width, N = H * W;
  const Image pred = sample_of(A.pred, b * N), gt = sample_of(A.gt, b * N);
  const uint8_t* region = A.region + b * N;

  // 1. normalisation of each image for the filter
  Norm np{}, ng{};
  if (A.gradient) {
    std::vector<double> lo(2 * H), hi(2 * H);
    at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        double l0 = value(pred, y * W), h0 = l0, l1 = value(gt, y * W), h1 = l1;
        for (int64_t x = 1; x < W; ++x) {
          const double a = value(pred, y * W + x), c = value(gt, y * W + x);
          l0 = std::min(l0, a);
          h0 = std::max(h0, a);
          l1 = std::min(l1, c);
          h1 = std::max(h1, c);
        }
        lo[2 * y] = l0;
        hi[2 * y] = h0;
        lo[2 * y + 1] = l1;
        hi[2 * y + 1] = h1;
      }
    });
    double lp = lo[0], hp = hi[0], lg = lo[1], hg = hi[1];
    for (int64_t y = 1; y < H; ++y) {
      lp = std::min(lp, lo[2 * y]);
      hp = std::max(hp, hi[2 * y]);
      lg = std::min(lg, lo[2 * y + 1]);
      hg = std::max(hg, hi[2 * y + 1]);
    }
    np = make_norm(P.convention, lp, hp);
    ng = make_norm(P.convention, lg, hg);
  }
  // The normalised images, once per pixel (the column pass reads each 9 times).
  std::vector<double> norm_p, norm_g;
  if (A.gradient) {
    norm_p.resize(N);
    norm_g.resize(N);
    at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
      for (int64_t k = y0 * W; k < y1 * W; ++k) {
        norm_p[k] = normalise(np, value(pred, k));
        norm_g[k] = normalise(ng, value(gt, k));
      }
    });
  }

  // 2-3. the thresholds' largest components
  std::vector<uint8_t> q, level_scratch;
  std::vector<Omega> omegas(kLevels - 1);
  uint8_t* level = A.levels ? A.levels + b * N : nullptr;
  if (A.connectivity) {
    q.resize(N);
    if (!level) {
      level_scratch.resize(N);
      level = level_scratch.data();
    }
    // uint8 images: each value's reach from a table of 256.
    uint8_t table_p[256], table_g[256];
    for (int v = 0; v < 256; ++v) {
      table_p[v] = reach(P, conn_alpha(P.convention, double(v) * pred.factor));
      table_g[v] = reach(P, conn_alpha(P.convention, double(v) * gt.factor));
    }
    const bool u8p = pred.dtype == Dtype::kUInt8, u8g = gt.dtype == Dtype::kUInt8;
    at::parallel_for(0, H, 16, [&](int64_t y0, int64_t y1) {
      for (int64_t k = y0 * W; k < y1 * W; ++k) {
        const uint8_t a = u8p ? table_p[static_cast<const uint8_t*>(pred.data)[k]]
                              : reach(P, conn_alpha(P.convention, value(pred, k)));
        const uint8_t c = u8g ? table_g[static_cast<const uint8_t*>(gt.data)[k]]
                              : reach(P, conn_alpha(P.convention, value(gt, k)));
        q[k] = a < c ? a : c;
      }
    });
    at::parallel_for(1, kLevels, 1, [&](int64_t i0, int64_t i1) {
      LabelScratch s;
      for (int64_t i = i0; i < i1; ++i) largest_component(P, q.data(), H, W, int(i), s, omegas[i - 1]);
    });
    fill_levels(omegas, N, W, level);
  }

  // 4. per row: levels and every term
  std::vector<double> rows(H * kSums, 0.0);
  at::parallel_for(0, H, 8, [&](int64_t y0, int64_t y1) {
    RowScratch s;
    if (A.gradient) {
      for (auto* r : {&s.sg_p, &s.sd_p, &s.sg_g, &s.sd_g}) r->assign(W + 2 * kHalf, 0.0);
      for (auto* r : {&s.gx, &s.gy, &s.amp_p, &s.amp_g}) r->assign(W, 0.0);
    }
    for (int64_t y = y0; y < y1; ++y) {
      if (A.gradient) {
        column_rows(P, norm_p.data(), y, H, W, s.sg_p.data() + kHalf, s.sd_p.data() + kHalf);
        column_rows(P, norm_g.data(), y, H, W, s.sg_g.data() + kHalf, s.sd_g.data() + kHalf);
        for (auto* r : {&s.sg_p, &s.sd_p, &s.sg_g, &s.sd_g}) pad_row(*r, W);
        row_magnitudes(P, s.sg_p.data(), s.sd_p.data(), W, s.gx.data(), s.gy.data(), s.amp_p.data());
        row_magnitudes(P, s.sg_g.data(), s.sd_g.data(), W, s.gx.data(), s.gy.data(), s.amp_g.data());
      }
      double acc[kSums] = {0, 0, 0, 0, 0, 0, 0};
      for (int64_t x = 0; x < W; ++x) {
        const int64_t k = y * W + x;
        const double a_p = value(pred, k), a_g = value(gt, k);
        const bool in = region[k] != 0;
        add_point_sums(P.convention, a_p, a_g, in, acc);
        if (A.gradient && in) {
          acc[kGrad] += gradient_term(P.convention, s.amp_p[x], s.amp_g[x]);
        }
        if (A.connectivity && in)
          acc[kConn] += conn_term(P, conn_alpha(P.convention, a_p), conn_alpha(P.convention, a_g), level[k]);
      }
      std::memcpy(&rows[y * kSums], acc, sizeof(acc));
    }
  });

  // 5. rows in order
  double* out = A.sums + b * kSums;
  for (int k = 0; k < kSums; ++k) out[k] = 0.0;
  for (int64_t y = 0; y < H; ++y)
    for (int k = 0; k < kSums; ++k) out[k] += rows[y * kSums + k];
}

MetricsResult matting_metrics_cpu(const at::Tensor& pred, const at::Tensor& gt, const at::Tensor& region,
                                  int64_t convention, double pred_factor, double gt_factor,
                                  c10::ArrayRef<double> thresholds, c10::ArrayRef<double> taps, bool gradient,
                                  bool connectivity, bool levels) {
  MetricsResult out;
  const MetricsArgs args = prepare_metrics(pred, gt, region, convention, pred_factor, gt_factor, thresholds, taps,
                                           gradient, connectivity, levels, out);
  for (int64_t b = 0; b < args.batch; ++b) metrics_sample(args, b);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(mattingloss, CPU, m) { m.impl("matting_metrics", &matting_metrics_cpu); }

}  // namespace metrics
}  // namespace mattingloss
