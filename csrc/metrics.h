// The single definition of the matting evaluation metrics' per-pixel math
// (SAD, MSE, Gradient, Connectivity; mattingloss/metrics.py), shared by the
// CPU and CUDA backends. The numbers each convention must give are those of
// mattingloss/reference/metrics.py (MATLAB's single-precision steps in float,
// the rest in double). Every product and sum here is rounded on its own
// (mul_rn/add_rn: nvcc would otherwise contract a*b + c into an FMA; the CPU file
// is compiled with fp-contract=off), so both backends give the references'
// per-pixel values bit for bit, and each other's.
//
// Per sample, the kernels produce the sums in MetricSum order; Python turns
// them into the four metrics of each convention (divisions, /1000).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/defs.h"
#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace mattingloss {
namespace metrics {

enum Convention : int64_t { kDimMatlab = 0, kMmagic = 1, kGca = 2, kRvm = 3, kP3m = 4, kConventions = 5 };

// The conventions whose alphas are single precision, a = single(v) / 255, with
// thresholds and phi compared in single: MATLAB's casts, and RVM's float32 arrays
// (numpy < 1.24, which its code needs, compares a float32 array with a float64
// scalar in float32).
ML_INLINE bool single_alpha(int64_t convention) { return convention == kDimMatlab || convention == kRvm; }

// Per-sample sums, in this order in the (B, kSums) output.
enum MetricSum : int64_t {
  kSadRegion = 0,  // sum over the region of the convention's |error|
  kSadAll = 1,     // the same over every pixel (mmagic's SAD)
  kSqRegion = 2,   // sum over the region of the squared error
  kSqAll = 3,      // over every pixel (mmagic's MSE numerator)
  kCount = 4,      // pixels in the region
  kGrad = 5,       // sum over the region of (|grad p| - |grad g|)^2
  kConn = 6,       // sum over the region of |phi_p - phi_g|
  kSums = 7,
};

constexpr int kTaps = 9;    // the derivative-of-Gaussian filter: sigma 1.4, epsilon 1e-2 -> half-size 4
constexpr int kHalf = 4;
constexpr int kLevels = 11;  // thresholds 0, 0.1, ..., 1: index 10 is l = 1
constexpr uint8_t kNoLevel = 255;
// P3M's filter: scipy.ndimage.gaussian_filter(sigma=1.4) at truncate 4.0 ->
// radius int(4 * 1.4 + 0.5) = 6.
constexpr int kP3mTaps = 13;
constexpr int kP3mHalf = 6;

#if defined(__CUDA_ARCH__)
ML_INLINE double mul_rn(double a, double b) { return __dmul_rn(a, b); }
ML_INLINE double add_rn(double a, double b) { return __dadd_rn(a, b); }
ML_INLINE float mulf_rn(float a, float b) { return __fmul_rn(a, b); }
ML_INLINE float addf_rn(float a, float b) { return __fadd_rn(a, b); }
ML_INLINE float sqrtf_rn(float a) { return __fsqrt_rn(a); }
#else
ML_INLINE double mul_rn(double a, double b) { return a * b; }
ML_INLINE double add_rn(double a, double b) { return a + b; }
ML_INLINE float mulf_rn(float a, float b) { return a * b; }
ML_INLINE float addf_rn(float a, float b) { return a + b; }
ML_INLINE float sqrtf_rn(float a) { return sqrtf(a); }
#endif

struct Params {
  int64_t convention;
  double pred_factor, gt_factor;  // the 0..255 value a = x * factor (255 / scale; 1.0 keeps x exactly)
  double thresholds[kLevels];     // MATLAB's 0:0.1:1 or np.arange(0, 1.1, 0.1)
  double taps_g[kTaps];           // the Gaussian factor of the filter, unit norm
  double taps_d[kTaps];           // its derivative's factor, unit norm
  // p3m: the weights scipy's correlate1d receives from gaussian_filter1d (sigma 1.4,
  // radius 6): order 0 (symmetric) and order 1 (antisymmetric), already reversed.
  double p3m_g[kP3mTaps];
  double p3m_d[kP3mTaps];
};

// How an image is normalised before the filter: v = a / 255 (pre_div 1), single(a) / 255
// in single (pre_div 2) or a,
// n = v * scale + shift, clamped to [0, 1] when clamp.
struct Norm {
  double scale, shift;
  int32_t pre_div, clamp;
};

// From the image's minimum and maximum 0..255 values:
//   dim_matlab: mat2gray (imlincomb: A * (1/delta) + (-min/delta), clipped; a constant
//               image is only clipped);
//   mmagic:     cv2.normalize(A / 255, NORM_MINMAX): scale 1/(max-min), 0 when
//               max - min <= DBL_EPSILON, shift 0 - min*scale;
//   gca:        A / 255;
//   rvm:        cv2.normalize of the float32 alphas single(A) / 255, as mmagic's.
//   (p3m filters its 0..1 alphas as they are: p3m_gradient_term, no Norm.)
ML_INLINE Norm make_norm(int64_t convention, double lo, double hi) {
  Norm n{1.0, 0.0, 0, 0};
  if (convention == kDimMatlab) {
    n.clamp = 1;
    if (hi != lo) {
      const double delta = hi - lo;
      n.scale = 1.0 / delta;
      n.shift = -lo / delta;
    }
  } else if (convention == kMmagic || convention == kRvm) {
    n.pre_div = convention == kRvm ? 2 : 1;
    // single(a) / 255 is monotone in a: the extremes of the divided image are those of a's
    const double l = n.pre_div == 2 ? double(float(lo) / 255.0f) : lo / 255.0;
    const double h = n.pre_div == 2 ? double(float(hi) / 255.0f) : hi / 255.0;
    n.scale = h - l > 2.220446049250313e-16 ? 1.0 / (h - l) : 0.0;
    n.shift = 0.0 - mul_rn(l, n.scale);
  } else {
    n.pre_div = 1;
  }
  return n;
}

ML_INLINE double normalise(const Norm& n, double a) {
  const double v = n.pre_div == 2 ? double(float(a) / 255.0f) : n.pre_div ? a / 255.0 : a;
  const double r = add_rn(mul_rn(v, n.scale), n.shift);
  return n.clamp ? fmin(fmax(r, 0.0), 1.0) : r;
}

// One filter pass, with the taps' symmetry (checked in metrics_host.cpp): the Gaussian
// factor is symmetric (w[k] == w[8-k]) and its derivative antisymmetric (w[k] ==
// -w[8-k], w[4] == 0), so each pair of taps costs one product:
//   dot_sym  = w4 v4 + w3 (v3 + v5) + w2 (v2 + v6) + w1 (v1 + v7) + w0 (v0 + v8),
//   dot_anti = w3 (v3 - v5) + w2 (v2 - v6) + w1 (v1 - v7) + w0 (v0 - v8),
// in this order. The rounding differs from the 9-product sum by a few ulps per
// pixel (the references, in their own orders, are within 1e-10 relative).
ML_INLINE double dot_sym(const double* w, const double* v) {
  double acc = mul_rn(w[4], v[4]);
  ML_UNROLL for (int k = 3; k >= 0; --k) acc = add_rn(acc, mul_rn(w[k], add_rn(v[k], v[8 - k])));
  return acc;
}
ML_INLINE double dot_anti(const double* w, const double* v) {
  double acc = mul_rn(w[3], v[3] - v[5]);
  ML_UNROLL for (int k = 2; k >= 0; --k) acc = add_rn(acc, mul_rn(w[k], v[k] - v[8 - k]));
  return acc;
}

ML_INLINE double magnitude(double gx, double gy) { return sqrt(add_rn(mul_rn(gx, gx), mul_rn(gy, gy))); }

// The gradient term at one pixel from the two magnitudes.
ML_INLINE double gradient_term(int64_t convention, double amp_p, double amp_g) {
  if (convention == kDimMatlab) {  // (single(pred_amp) - single(target_amp)).^2, in single
    const float e = float(amp_p) - float(amp_g);
    return double(mulf_rn(e, e));
  }
  const double e = amp_p - amp_g;
  return mul_rn(e, e);
}

// SAD and MSE terms at one pixel: |e| and e^2 of the convention's error, in two
// steps so that the CPU can tabulate the first per uint8 value: u = point_value(a)
// per image, then the error from the two u (point_terms_u).
//   dim_matlab: abs(single(p)-single(g))/255, ((single(p)-single(g))/255).^2: u = single(a);
//   rvm:        float32 arrays single(p)/255 - single(g)/255, in single: u = single(a)/255;
//   mmagic:     p/255 - g/255: u = a/255;
//   gca:        (p - g)/255: u = a;
//   p3m:        predict - alpha of its 0..1 float64 arrays: u = a (the p3m
//               Image reads its 0..1 value, see scaled()).
ML_INLINE double point_value(int64_t convention, double a) {
  if (convention == kDimMatlab) return double(float(a));
  if (convention == kRvm) return double(float(a) / 255.0f);
  if (convention == kMmagic) return a / 255.0;
  return a;
}
ML_INLINE void point_terms_u(int64_t convention, double u_p, double u_g, double& abs_e, double& sq_e) {
  if (convention == kDimMatlab || convention == kRvm) {
    const float d = convention == kDimMatlab ? (float(u_p) - float(u_g)) / 255.0f : float(u_p) - float(u_g);
    abs_e = double(fabsf(d));
    sq_e = double(mulf_rn(d, d));
  } else {
    const double d = convention == kMmagic || convention == kP3m ? u_p - u_g : (u_p - u_g) / 255.0;
    abs_e = fabs(d);
    sq_e = mul_rn(d, d);
  }
}
ML_INLINE void point_terms(int64_t convention, double a_p, double a_g, double& abs_e, double& sq_e) {
  point_terms_u(convention, point_value(convention, a_p), point_value(convention, a_g), abs_e, sq_e);
}

// One pixel's SAD and MSE terms added to a row's sums (kSums doubles): the whole
// image's, and the region's with its pixel count where `in`.
ML_INLINE void add_point_sums(int64_t convention, double a_p, double a_g, bool in, double* acc) {
  double ae, se;
  point_terms(convention, a_p, a_g, ae, se);
  acc[kSadAll] += ae;
  acc[kSqAll] += se;
  if (in) {
    acc[kSadRegion] += ae;
    acc[kSqRegion] += se;
    acc[kCount] += 1.0;
  }
}

// The alpha in [0, 1] that the connectivity thresholds and phi read: single(a)/255
// (MATLAB) or a/255.0; p3m's value is already its 0..1 alpha.
ML_INLINE double conn_alpha(int64_t convention, double a) {
  if (convention == kP3m) return a;
  return single_alpha(convention) ? double(float(a) / 255.0f) : a / 255.0;
}

// How many thresholds 1..10 an alpha reaches (the thresholds increase, so the
// count says which: 1..reach). MATLAB compares its single alpha with the double
// threshold converted to single.
ML_INLINE uint8_t reach(const Params& P, double v) {
  uint8_t n = 0;
  if (single_alpha(P.convention)) {
    const float f = float(v);
    for (int i = 1; i < kLevels; ++i) n += f >= float(P.thresholds[i]);
  } else {
    for (int i = 1; i < kLevels; ++i) n += v >= P.thresholds[i];
  }
  return n;
}

// How many thresholds both alphas reach: the pixel is in the intersection mask
// of threshold i exactly when i <= q.
ML_INLINE uint8_t reached_level(const Params& P, double p, double g) {
  const uint8_t a = reach(P, p), b = reach(P, g);
  return a < b ? a : b;
}

// phi = 1 - d*(d >= 0.15), d = alpha - l: MATLAB's in single (the double l
// converted to single, 0.15 as single), the Python code bases' in double. The CPU
// tabulates these per uint8 value and level, so they stay separate functions.
ML_INLINE float phi_single(float a, float l) {
  const float d = a - l;
  return d >= 0.15f ? 1.0f - d : 1.0f;
}
ML_INLINE double phi_double(double a, double l) {
  const double d = a - l;
  return d >= 0.15 ? 1.0 - d : 1.0;
}

// The l of a level as phi reads it: P3M stores it in a float32 l_map, so its
// 0.6000000000000001 becomes float32 0.6 before pd - l_map (in float64).
ML_INLINE double level_value(const Params& P, int level) {
  return P.convention == kP3m ? double(float(P.thresholds[level])) : P.thresholds[level];
}

// P3M skips a threshold whose set is empty (no component: `continue`), so the
// pixels still unassigned there keep l_map = -1, set to 1 at the end; the other
// conventions give them the previous threshold. The sets are nested, so the
// first empty one is qmax + 1 (qmax: the most thresholds any pixel's two alphas
// both reach) and exactly the pixels at level qmax were unassigned there.
ML_INLINE uint8_t p3m_level(uint8_t level, uint8_t qmax) {
  return level == kNoLevel || (level == qmax && qmax < kLevels - 1) ? uint8_t(kLevels - 1) : level;
}

// |phi_p - phi_g| at a pixel whose l = thresholds[level].
ML_INLINE double conn_term(const Params& P, double p, double g, int level) {
  const double l = level_value(P, level);
  if (single_alpha(P.convention)) return double(fabsf(phi_single(float(p), float(l)) - phi_single(float(g), float(l))));
  return fabs(phi_double(p, l) - phi_double(g, l));
}

// An alpha image as the kernels read it: value i is data[i] * factor (0..255
// scale), or for p3m data[i] / divisor (its 0..1 alpha: uint8 v / 255 as P3M's
// np.array(Image.open(...)) / 255., a 0..1 float as it is; a product by 1/255
// would not round as that division does).
struct Image {
  const void* data = nullptr;
  Dtype dtype = Dtype::kFloat;
  double factor = 1.0;
  double divisor = 0.0;  // p3m: 255 / factor (the matte's scale); 0: use factor
};

// mul_rn: in PTX a plain product feeding a difference (gca's u_p - u_g) may be fused
// by the driver's compiler when it builds the shipped compute_80 PTX for a newer GPU
ML_INLINE double scaled(const Image& im, double raw) { return im.divisor != 0.0 ? raw / im.divisor : mul_rn(raw, im.factor); }

struct MetricsArgs {
  Params params;
  Image pred, gt;         // sample 0; sample b starts b * H * W elements later
  const uint8_t* region;  // (B, H, W), 0 or 1
  int64_t batch, height, width;
  bool gradient, connectivity;
  double* sums;     // (B, kSums)
  uint8_t* levels;  // (B, H, W) or nullptr
};

ML_INLINE double value(const Image& im, int64_t i) {
  switch (im.dtype) {
    case Dtype::kUInt8: return scaled(im, double(static_cast<const uint8_t*>(im.data)[i]));
    case Dtype::kFloat: return scaled(im, double(static_cast<const float*>(im.data)[i]));
    default: return scaled(im, static_cast<const double*>(im.data)[i]);
  }
}

// The filter's column pass at (y, x) of one image (rows clamped: replicated
// borders): sg = sum_i taps_g[i] * n(y + i - 4, x), sd the same with taps_d.
// The row pass then reads these at columns x - 4 .. x + 4 (clamped):
// gx = dot_anti(taps_d, sg[x-4 .. x+4]), gy = dot_sym(taps_g, sd[x-4 .. x+4]).
ML_INLINE void column_pass(const Params& P, const Norm& n, const Image& im, int64_t y, int64_t x, int64_t H,
                           int64_t W, double& sg, double& sd) {
  double v[kTaps];
  ML_UNROLL for (int i = 0; i < kTaps; ++i) {
    int64_t yy = y + i - kHalf;
    yy = yy < 0 ? 0 : (yy > H - 1 ? H - 1 : yy);
    v[i] = normalise(n, value(im, yy * W + x));
  }
  sg = dot_sym(P.taps_g, v);
  sd = dot_anti(P.taps_d, v);
}

// ------------------------------------------------------------ P3M's gradient
// compute_gradient_whole_image: scipy.ndimage.gaussian_filter(a, sigma=1.4,
// order=[1, 0] / [0, 1], output=np.float32): correlate1d along axis 0 (rows),
// written to the float32 output, then along axis 1 from that float32 array;
// 'reflect' borders. Its C loop (ni_filters.c NI_Correlate1D) sums a symmetric
// or antisymmetric kernel in pairs, in double, in this order:
//   out = v[6] * w[6]; out += (v[j] +/- v[12 - j]) * w[j] for j = 0 .. 5,
// which these reproduce bit for bit (v: the 13 values under the kernel).
ML_INLINE double p3m_sym(const double* w, const double* v) {
  double acc = mul_rn(v[kP3mHalf], w[kP3mHalf]);
  ML_UNROLL for (int j = 0; j < kP3mHalf; ++j) acc = add_rn(acc, mul_rn(add_rn(v[j], v[kP3mTaps - 1 - j]), w[j]));
  return acc;
}
ML_INLINE double p3m_anti(const double* w, const double* v) {
  double acc = mul_rn(v[kP3mHalf], w[kP3mHalf]);
  ML_UNROLL for (int j = 0; j < kP3mHalf; ++j) acc = add_rn(acc, mul_rn(v[j] - v[kP3mTaps - 1 - j], w[j]));
  return acc;
}

// scipy's 'reflect' extension (d c b a | a b c d | d c b a, repeated: period 2n,
// which lines shorter than the radius reach).
ML_INLINE int64_t reflect_index(int64_t i, int64_t n) {
  const int64_t period = 2 * n;
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

// np.square(sqrt(px^2 + py^2) - sqrt(gx^2 + gy^2)) of the float32 filter outputs,
// all in float32 as numpy computes it.
ML_INLINE float p3m_magnitude(float x, float y) { return sqrtf_rn(addf_rn(mulf_rn(x, x), mulf_rn(y, y))); }
ML_INLINE float p3m_gradient_term(float px, float py, float gx, float gy) {
  const float e = p3m_magnitude(px, py) - p3m_magnitude(gx, gy);
  return mulf_rn(e, e);
}

// The first pass at (y, x) of one image: the derivative (order [1, 0]'s) and the
// Gaussian (order [0, 1]'s) along the rows, rounded to float32 as the output array.
ML_INLINE void p3m_first_pass(const Params& P, const Image& im, int64_t y, int64_t x, int64_t H, int64_t W,
                              float& d, float& s) {
  double v[kP3mTaps];
  ML_UNROLL for (int j = 0; j < kP3mTaps; ++j) v[j] = value(im, reflect_index(y + j - kP3mHalf, H) * W + x);
  d = float(p3m_anti(P.p3m_d, v));
  s = float(p3m_sym(P.p3m_g, v));
}

// The gradient term at (y, x) computed directly (13 first-pass values per image
// and axis): what the CUDA kernel runs; the CPU keeps the first pass in planes.
ML_INLINE float p3m_gradient_at(const Params& P, const Image& pred, const Image& gt, int64_t y, int64_t x, int64_t H,
                                int64_t W) {
  double dp[kP3mTaps], sp[kP3mTaps], dg[kP3mTaps], sg[kP3mTaps];
  ML_UNROLL for (int j = 0; j < kP3mTaps; ++j) {
    const int64_t xx = reflect_index(x + j - kP3mHalf, W);
    float d, s;
    p3m_first_pass(P, pred, y, xx, H, W, d, s);
    dp[j] = d;
    sp[j] = s;
    p3m_first_pass(P, gt, y, xx, H, W, d, s);
    dg[j] = d;
    sg[j] = s;
  }
  return p3m_gradient_term(float(p3m_sym(P.p3m_g, dp)), float(p3m_anti(P.p3m_d, sp)), float(p3m_sym(P.p3m_g, dg)),
                           float(p3m_anti(P.p3m_d, sg)));
}

// ------------------------------------------------------------ connected components
// Union-find over one sample's pixels (int32 indices; parent[x] <= x always:
// a root is linked under the smaller root, so every component's root is its
// first pixel in row-major order, whatever order the unions ran in).
ML_INLINE int32_t find_root(const int32_t* parent, int32_t x) {
  while (parent[x] != x) x = parent[x];
  return x;
}

// The order of two components as "the largest": more pixels, then the smaller
// key (the first pixel in row-major order, or in column-major order for MATLAB's
// bwconncomp) wins. Packed so that a larger value is better (an integer max, the
// same on every backend): size in the high 32 bits, ~key in the low.
ML_INLINE uint64_t pack_best(uint32_t size, uint32_t key) {
  return (uint64_t(size) << 32) | uint64_t(0xFFFFFFFFu - key);
}
ML_INLINE uint32_t packed_size(uint64_t v) { return uint32_t(v >> 32); }
ML_INLINE uint32_t packed_key(uint64_t v) { return 0xFFFFFFFFu - uint32_t(v & 0xFFFFFFFFu); }

// The tie-break key of a pixel (y, x): row-major index, or column-major for MATLAB.
ML_INLINE uint32_t tie_key(int64_t convention, int64_t y, int64_t x, int64_t H, int64_t W) {
  return convention == kDimMatlab ? uint32_t(x * H + y) : uint32_t(y * W + x);
}

// GCA's getLargestCC counts the background (label 0) too and argmax prefers it on a tie.
ML_INLINE bool background_wins(int64_t convention, int64_t background, uint64_t best) {
  return convention == kGca && uint64_t(background) >= uint64_t(packed_size(best));
}

// The backends' entry points, called by metrics_host.cpp: the CPU kernel
// (cpu/metrics_cpu.cpp) and, below, the CUDA launch (cuda/metrics_kernel.cu).
// Both write args.sums (and args.levels when set) for every sample.
void metrics_cpu(const MetricsArgs& args);

#if defined(__CUDACC__) || defined(MATTINGLOSS_CUDA)
// Device scratch of one call (sizes in elements; B samples of N = H * W pixels).
struct MetricsScratch {
  Norm* norms;                 // 2B: pred's and gt's normalisation per sample
  uint8_t* q;                  // B*N: thresholds reached
  uint8_t* level;              // B*N: the level plane (the levels output when requested)
  int32_t* parent;             // B*N
  uint32_t* size;              // B*N
  uint32_t* key;               // B*N
  unsigned long long* best;    // B
  unsigned long long* masked;  // B (p3m: its qmax after the thresholds)
  double* rows;                // B*H*kSums
};
constexpr int kScratchBuffers = 9;

// Bytes of each scratch buffer, in MetricsScratch order (levels: 0 when the output is used).
void metrics_scratch_sizes(int64_t B, int64_t H, int64_t W, bool own_levels, bool connectivity,
                           int64_t bytes[kScratchBuffers]);

// Enqueues the whole computation on `stream` (no host synchronisation).
cudaError_t launch_matting_metrics(const MetricsArgs& args, const MetricsScratch& s, cudaStream_t stream);
#endif

}  // namespace metrics
}  // namespace mattingloss
