// CPU backend of matting_metrics, one sample after the other, in three parallel
// loops (each costs a wait for a time slice when another process holds a core):
//   1. per chunk of rows: each image's minimum and maximum (for its normalisation
//      before the filter) and (connectivity) q per pixel (how many thresholds both
//      alphas reach) one row at a time and every threshold's row runs from its
//      bit masks;
//   2. (connectivity) two union-finds over the runs (two groups of thresholds, in
//      parallel), each fed in decreasing threshold order (see label_levels);
//   3. per band of rows: each pixel's level from the union-finds' histories
//      (fill_levels), the SAD/MSE terms, the separable derivative-of-Gaussian
//      filter (a ring of normalised rows, a column pass, a row pass; replicated
//      borders; only where the region needs it) and the connectivity term
//      (tabulated for uint8), summed per row in fixed lanes;
//   4. the rows' sums added in row order: the same bits with any thread count.
#pragma GCC optimize("fp-contract=off")  // products rounded on their own, as the references and the CUDA kernel

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "../common/cpu_convert.h"
#include "../metrics.h"

namespace mattingloss {
namespace metrics {
namespace {

inline Image sample_of(const Image& im, int64_t offset) {
  Image s = im;
  s.data = static_cast<const char*>(im.data) + offset * element_bytes(im.dtype);
  return s;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define ML_METRICS_AVX512 1
// Whether the AVX-512 paths run: the CPU has them and MATTINGLOSS_NO_AVX512 is
// unset (test_avx512_paths_same_bits sets it to check both paths give the same bits).
bool use_avx512() {
  static const bool on = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                         !std::getenv("MATTINGLOSS_NO_AVX512");
  return on;
}
// The byte permutes of q_row_u8_avx512 (Intel Ice Lake, AMD Zen 4 on).
bool use_vbmi() {
  static const bool on = use_avx512() && __builtin_cpu_supports("avx512vbmi");
  return on;
}

// q (how many thresholds both alphas reach) of n pixels of uint8 mattes, 64 at a
// time: each 256-entry reach table as four 64-byte registers read by two-register
// byte permutes (index bits 0-6) and a blend on bit 7. The scalar loop of table
// reads was half of the run scan (~2.3 ms of a 1080p call). Returns how many it did.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) int64_t q_row_u8_avx512(
    const uint8_t* reach_p, const uint8_t* reach_g, const uint8_t* __restrict a, const uint8_t* __restrict c,
    int64_t n, uint8_t* __restrict out) {
  __m512i tp[4], tg[4];
  for (int k = 0; k < 4; ++k) {
    tp[k] = _mm512_loadu_si512(reach_p + 64 * k);
    tg[k] = _mm512_loadu_si512(reach_g + 64 * k);
  }
  int64_t x = 0;
  for (; x + 64 <= n; x += 64) {
    const __m512i va = _mm512_loadu_si512(a + x), vc = _mm512_loadu_si512(c + x);
    const __m512i ra = _mm512_mask_blend_epi8(_mm512_movepi8_mask(va), _mm512_permutex2var_epi8(tp[0], va, tp[1]),
                                              _mm512_permutex2var_epi8(tp[2], va, tp[3]));
    const __m512i rc = _mm512_mask_blend_epi8(_mm512_movepi8_mask(vc), _mm512_permutex2var_epi8(tg[0], vc, tg[1]),
                                              _mm512_permutex2var_epi8(tg[2], vc, tg[3]));
    _mm512_storeu_si512(out + x, _mm512_min_epu8(ra, rc));
  }
  return x;
}

// word_masks with AVX-512: one byte compare per threshold gives its 64-bit mask
// (the same bits as the SSE2 path's, which also saves the compares of thresholds
// at or outside the word's min..max).
__attribute__((target("avx512f,avx512bw"))) void word_masks_avx512(const uint8_t* q, uint64_t* m) {
  const __m512i v = _mm512_loadu_si512(q);
  for (int i = 1; i < kLevels; ++i) m[i] = _mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(char(i)));
}
#endif

// ------------------------------------------------------------ connectivity levels
// The thresholds' sets are nested (S_{i+1} within S_i, S_i = {q >= i}), so one
// union-find, fed in decreasing threshold order, holds the components of every
// S_i in turn: 10 labellings for the price of one. Its nodes are row runs: the
// runs of S_i, each united with the runs of S_i above it that share a column and
// with the runs of S_{i+1} it contains. Each link is recorded (the root x was
// linked under, at threshold t_x: `up`, `t`), so that the root of a node's
// component at any threshold i can be told afterwards: x itself for t_x < i <= its
// own threshold, else the root of up[x]'s component at i.
//
// omega_i is the largest component of S_i (more pixels, then the smaller tie key:
// ../metrics.h pack_best). Merging only grows a component's size and lowers its
// key, so its packed value only increases: the largest at threshold i is the
// running maximum over every union and new node so far, and stays a root.
//
// A pixel's level is k - 1 for the first threshold k it is outside omega_k (10 if
// none). For a node x, M(x) = the first i <= level(x) at which x's root is not
// omega_i's: min(the first i in (t_x, level(x)] with r_i != x, M(up[x]) when that is
// <= t_x), computed parents first (reverse link order). A pixel of q >= 1 lies in
// exactly one run of threshold q; pixels of higher thresholds overwrite it.
// GCA's background (omega_i the complement of S_i: label 0 won) is a threshold at
// which no node is omega and the pixels outside S_i are in omega.
struct Run {
  int32_t y, x0, x1;
};

// A growable list of runs whose room is not initialised (the scan writes each row's
// runs through a local pointer after making room for the most a row can hold:
// std::vector's push_back loaded and stored its end and compared its capacity per
// run), kept from call to call.
struct RunList {
  std::unique_ptr<Run[]> buf;
  int64_t n = 0, cap = 0;
  void clear() { n = 0; }
  void room(int64_t k) {  // room for k more
    if (n + k <= cap) return;
    const int64_t c = std::max(n + k, 2 * cap);
    std::unique_ptr<Run[]> b(new Run[size_t(c)]);
    if (n) std::memcpy(b.get(), buf.get(), size_t(n) * sizeof(Run));
    buf = std::move(b);
    cap = c;
  }
  const Run* data() const { return buf.get(); }
  Run* data() { return buf.get(); }
  int64_t size() const { return n; }
  bool empty() const { return n == 0; }
};

// One group of thresholds (lo, hi]: its runs (threshold hi first, row-major within),
// one union-find fed in decreasing threshold order, each threshold's omega root
// (-1: none; GCA's background) and each node's M (see label_levels, fill_levels).
struct Group {
  int lo = 0, hi = 0;
  std::vector<Run> runs;
  std::vector<int64_t> level_start;  // runs of threshold i: [level_start[hi - i], level_start[hi - i + 1])
  std::vector<int64_t> row_start;
  std::vector<int64_t> block_start;  // a flat split's upper group: chunk c's runs are nodes [c], [c + 1)
  std::vector<int32_t> ptr, up, links;
  std::vector<uint8_t> t, m, node_lv;
  std::vector<uint64_t> val;  // pack_best(size, key) per node (of its component while a root)
  int32_t omega_root[kLevels + 1];
  bool background[kLevels + 1];
};

inline int32_t find_ptr(int32_t* p, int32_t x) {
  while (p[x] != x) {
    p[x] = p[p[x]];  // path halving: ptr only speeds up finds; the history is in up
    x = p[x];
  }
  return x;
}

// A root's packed value after a union: sizes added, the smaller key (the larger low half).
inline uint64_t merged(uint64_t va, uint64_t vb) {
  return (((va >> 32) + (vb >> 32)) << 32) | std::max(va & 0xFFFFFFFFull, vb & 0xFFFFFFFFull);
}

// Unites two different roots: the smaller component under the larger (size, then
// the lower index on a tie), the kept root's packed value updated and the best
// (largest) raised. Returns the root kept.
inline int32_t unite_roots(int32_t* ptr, uint64_t* val, int32_t keep, int32_t other, uint64_t& best,
                           int32_t& best_root) {
  uint64_t vk = val[keep], vo = val[other];
  if ((vk >> 32) < (vo >> 32) || ((vk >> 32) == (vo >> 32) && other < keep)) {
    std::swap(keep, other);
    std::swap(vk, vo);
  }
  ptr[other] = keep;
  const uint64_t v = merged(vk, vo);
  val[keep] = v;
  if (v > best) {
    best = v;
    best_root = keep;
  }
  return keep;
}

void label_group(const Params& P, const std::vector<RunList>& found, int64_t chunks, int64_t H, int64_t W,
                 Group& s) {
  const int lo = s.lo, hi = s.hi, n = hi - lo;
  const bool flat = n == 1;  // one threshold: no history needed, M is its root's
  const int64_t N = H * W;
  s.runs.clear();
  s.level_start.assign(size_t(n + 1), 0);
  for (int i = hi; i > lo; --i) {
    s.level_start[hi - i] = int64_t(s.runs.size());
    for (int64_t c = 0; c < chunks; ++c) {
      const RunList& v = found[size_t(c * kLevels + i)];
      s.runs.insert(s.runs.end(), v.data(), v.data() + v.size());
    }
  }
  const int64_t R = int64_t(s.runs.size());
  s.level_start[n] = R;
  s.ptr.resize(R);
  s.up.resize(R);
  s.t.assign(R, 0);
  s.val.resize(R);
  s.node_lv.resize(R);
  s.links.resize(R);  // each node is linked once at most
  s.m.resize(R);
  // the arrays in locals: the uint8_t stores (t, node_lv, m) may alias anything,
  // and reloading each vector's data pointer after each was 12% of this function
  const Run* runs = s.runs.data();
  const int64_t* level_start = s.level_start.data();
  int32_t* ptr = s.ptr.data();
  int32_t* up = s.up.data();
  int32_t* links = s.links.data();
  uint8_t* t = s.t.data();
  uint8_t* node_lv = s.node_lv.data();
  uint64_t* val = s.val.data();  // pack_best(size, key) of each root: one load per root
  int64_t nlinks = 0;
  for (int i = hi; i > lo; --i)
    for (int64_t r = level_start[hi - i]; r < level_start[hi - i + 1]; ++r) {
      ptr[r] = up[r] = int32_t(r);
      val[r] = pack_best(0, tie_key(P.convention, runs[r].y, runs[r].x0, H, W));  // its size: below
      node_lv[r] = uint8_t(i);
    }
  uint64_t best = 0;
  int32_t best_root = -1;
  // a (a root, kept in hand by the caller) with b's component; returns the new root
  auto unite = [&](int32_t a, int32_t b, int i) {
    b = find_ptr(ptr, b);
    if (a == b) return a;
    const int32_t kept = unite_roots(ptr, val, a, b, best, best_root);
    if (!flat) {  // the link history: which root went under which, at which threshold
      const int32_t under = kept == a ? b : a;
      up[under] = kept;
      t[under] = uint8_t(i);
      links[nlinks++] = under;
    }
    return kept;
  };
  int64_t masked = 0;
  s.row_start.resize(H + 1);
  int64_t* row_start = s.row_start.data();
  for (int i = hi; i > lo; --i) {
    const int64_t first = level_start[hi - i], last = level_start[hi - i + 1];
    int64_t child = i < hi ? level_start[hi - i - 1] : first;  // the runs of threshold i + 1
    std::fill(row_start, row_start + H + 1, last);
    for (int64_t r = last - 1; r >= first; --r) row_start[runs[r].y] = r;
    for (int64_t y = H - 1; y >= 0; --y) row_start[y] = std::min(row_start[y], row_start[y + 1]);
    for (int64_t r = first; r < last; ++r) {
      const Run run = runs[r];
      // its pixels of threshold exactly i: the others are in the runs of i + 1 it contains
      uint32_t own = uint32_t(run.x1 - run.x0);
      const int64_t c0 = child;
      while (child < first && runs[child].y == run.y && runs[child].x0 < run.x1) {
        own -= uint32_t(runs[child].x1 - runs[child].x0);
        ++child;
      }
      val[r] = (uint64_t(own) << 32) | (val[r] & 0xFFFFFFFFull);
      masked += own;
      if (val[r] > best) {
        best = val[r];
        best_root = int32_t(r);
      }
      int32_t root = int32_t(r);  // r is a root until its own unions
      for (int64_t c = c0; c < child; ++c) root = unite(root, int32_t(c), i);
    }
    for (int64_t y = 1; y < H; ++y) {
      int64_t a = row_start[y - 1];
      const int64_t a_end = row_start[y];
      for (int64_t r = row_start[y]; r < row_start[y + 1]; ++r) {
        const Run run = runs[r];
        while (a < a_end && runs[a].x1 <= run.x0) ++a;  // runs above ending before this one starts
        if (a == a_end || runs[a].x0 >= run.x1) continue;
        int32_t root = find_ptr(ptr, int32_t(r));
        for (int64_t u = a; u < a_end && runs[u].x0 < run.x1; ++u) root = unite(root, int32_t(u), i);
      }
    }
    s.background[i] = background_wins(P.convention, N - masked, best);
    s.omega_root[i] = s.background[i] || best_root < 0 ? -1 : best_root;
  }
  // M per node, parents first: never-linked nodes, then the links in reverse.
  constexpr uint8_t kNever = 255;
  uint8_t* m = s.m.data();
  const int32_t* omega_root = s.omega_root;
  auto own_first = [&](int32_t x, int from, int to) -> uint8_t {  // first i in (from, to] with r_i != x
    for (int i = from + 1; i <= to; ++i)
      if (omega_root[i] != x) return uint8_t(i);
    return kNever;
  };
  if (flat) {
    for (int64_t x = 0; x < R; ++x) m[x] = find_ptr(ptr, int32_t(x)) == omega_root[hi] ? kNever : uint8_t(hi);
    return;
  }
  for (int64_t x = 0; x < R; ++x)
    if (up[x] == x) m[x] = own_first(int32_t(x), lo, node_lv[x]);
  for (int64_t k = nlinks - 1; k >= 0; --k) {
    const int32_t x = links[k];
    const uint8_t mine = own_first(x, t[x], node_lv[x]), parent = m[up[x]];
    m[x] = std::min(mine, parent <= t[x] ? parent : kNever);
  }
}

// The runs of two consecutive rows, above [a0, a1) and below [b0, b1), united where
// they share a column. A run below is a root when its row starts: its root is kept
// in hand (only these unions move it), one find per run above it touches.
// (runs_a[0], runs_b[0]: the runs of nodes a0 and b0)
inline void flat_rows_pair(Group& s, const Run* runs_a, int64_t a0, int64_t a1, const Run* runs_b, int64_t b0,
                           int64_t b1, uint64_t& best_out, int32_t& root_out) {
  // everything in locals: the stores to val and ptr may alias the references
  // (each union reloaded and stored best and best_root)
  int32_t* ptr = s.ptr.data();
  uint64_t* val = s.val.data();
  uint64_t best = best_out;
  int32_t best_root = root_out;
  int64_t a = a0;
  for (int64_t r = b0; r < b1; ++r) {
    const int32_t x0 = runs_b[r - b0].x0, x1 = runs_b[r - b0].x1;
    while (a < a1 && runs_a[a - a0].x1 <= x0) ++a;
    int32_t root = find_ptr(ptr, int32_t(r));  // r itself unless a seam row's run
    for (int64_t u = a; u < a1 && runs_a[u - a0].x0 < x1; ++u) {
      const int32_t other = find_ptr(ptr, int32_t(u));
      if (other != root) root = unite_roots(ptr, val, root, other, best, best_root);
    }
  }
  best_out = best;
  root_out = best_root;
}

// A one-threshold group labelled by blocks of rows: the runs [ra, rb) (whole rows)
// made nodes and united with the runs of the row above inside the block. Blocks
// touch disjoint nodes, so they run in parallel; the seams between blocks are
// united as their blocks finish (label_levels, flat_rows_pair). (No history: a
// node's M is only whether its root is omega's.) best/root_out: the largest
// component so far; masked: the runs' pixels, for GCA's background.
// The pairs of runs to unite come from the threshold's bit masks (mask: `words`
// 64-bit words per row, as the scan found them): a run above and a run below that share a column share exactly
// one interval, a run of the two rows' AND, so each run of the AND (its first bit)
// is one pair, and each of the two runs is its row's run counted by the run starts
// up to that bit. A merge of the two rows' run lists by their ends (a load, two
// compares and a step per run, each step waiting for the last) took 12 of the 21
// ns a run of the benchmark's 2-pixel runs; the popcounts do not wait on each other
// (compiled for x86-64-v3/v4 too: baseline x86-64 has no popcnt instruction).
// The runs [ra, rb) are block[0 .. rb - ra).
ML_CPU_CLONES void flat_rows(const Params& P, int64_t H, int64_t W, Group& s, const uint64_t* mask, const Run* block,
                             int64_t ra, int64_t rb, uint64_t& best_out, int32_t& root_out, int64_t& masked) {
  int32_t* ptr = s.ptr.data();
  uint64_t* val = s.val.data();
  const int64_t words = (W + 63) / 64;
  uint64_t best = best_out;
  int32_t best_root = root_out;
  int64_t pixels = 0;
  int64_t prev_first = 0;  // the previous row's first run
  int32_t prev_y = -2;
  for (int64_t r = ra; r < rb;) {
    const int32_t y = block[r - ra].y;
    int64_t e = r;
    for (; e < rb && block[e - ra].y == y; ++e) {
      const Run run = block[e - ra];
      ptr[e] = int32_t(e);
      pixels += run.x1 - run.x0;
      const uint64_t v = pack_best(uint32_t(run.x1 - run.x0), tie_key(P.convention, run.y, run.x0, H, W));
      val[e] = v;
      if (v > best) {
        best = v;
        best_root = int32_t(e);
      }
    }
    if (prev_y == y - 1) {
      const uint64_t* A = mask + (y - 1) * words;
      const uint64_t* B = mask + y * words;
      int64_t ca = prev_first - 1, cb = r - 1;  // the last run started before this word
      uint64_t ka = 0, kb = 0, ko = 0;          // each mask's bit at the previous pixel
      for (int64_t w = 0; w < words; ++w) {
        const uint64_t a = A[w], b = B[w], o = a & b;
        const uint64_t sa = a & ~((a << 1) | ka), sb = b & ~((b << 1) | kb);  // run starts
        uint64_t so = o & ~((o << 1) | ko);
        ka = a >> 63;
        kb = b >> 63;
        ko = o >> 63;
        while (so) {
          const uint64_t upto = so ^ (so - 1);  // the bits up to the pair's first shared column
          so &= so - 1;
          const int32_t u = find_ptr(ptr, int32_t(ca + __builtin_popcountll(sa & upto)));
          const int32_t v = find_ptr(ptr, int32_t(cb + __builtin_popcountll(sb & upto)));
          if (u != v) unite_roots(ptr, val, u, v, best, best_root);
        }
        ca += __builtin_popcountll(sa);
        cb += __builtin_popcountll(sb);
      }
    }
    prev_y = y;
    prev_first = r;
    r = e;
  }
  best_out = best;
  root_out = best_root;
  masked = pixels;
}

// Kept per calling thread from call to call (thread_local in metrics_sample): the
// run lists and union-find arrays keep their capacity, so a validation loop does
// not reallocate (and page-fault) some 20 MB per 1080p image.
struct LabelScratch {
  std::vector<RunList> found;           // per chunk of rows and threshold
  std::vector<uint8_t> level;           // the levels when the caller does not want them
  std::vector<uint64_t> top_mask;       // the top threshold's bit masks, per row (flat_rows)
  Group groups[2];
};

// The masks q >= i (i = 1..10) of 64 q values: bit j of m[i] is q[j] >= i.
inline void word_masks(const uint8_t* q, uint64_t* m) {
#if defined(__SSE2__)
  const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16));
  const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 32));
  const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 48));
  __m128i mx = _mm_max_epu8(_mm_max_epu8(v0, v1), _mm_max_epu8(v2, v3));
  __m128i mn = _mm_min_epu8(_mm_min_epu8(v0, v1), _mm_min_epu8(v2, v3));
  mx = _mm_max_epu8(mx, _mm_srli_si128(mx, 8));
  mn = _mm_min_epu8(mn, _mm_srli_si128(mn, 8));
  mx = _mm_max_epu8(mx, _mm_srli_si128(mx, 4));
  mn = _mm_min_epu8(mn, _mm_srli_si128(mn, 4));
  mx = _mm_max_epu8(mx, _mm_srli_si128(mx, 2));
  mn = _mm_min_epu8(mn, _mm_srli_si128(mn, 2));
  mx = _mm_max_epu8(mx, _mm_srli_si128(mx, 1));
  mn = _mm_min_epu8(mn, _mm_srli_si128(mn, 1));
  const int hi = _mm_cvtsi128_si32(mx) & 0xFF, lo = _mm_cvtsi128_si32(mn) & 0xFF;
  for (int i = 1; i < kLevels; ++i) {
    if (i <= lo) {
      m[i] = ~0ull;
    } else if (i > hi) {
      m[i] = 0;
    } else {
      const __m128i t = _mm_set1_epi8(char(i));
      auto ge = [&](__m128i v) { return uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, t), v)))); };
      m[i] = ge(v0) | (ge(v1) << 16) | (ge(v2) << 32) | (ge(v3) << 48);
    }
  }
#else
  for (int i = 1; i < kLevels; ++i) {
    uint64_t b = 0;
    for (int j = 0; j < 64; ++j) b |= uint64_t(q[j] >= i) << j;
    m[i] = b;
  }
#endif
}

constexpr int64_t kScanChunk = 64;  // rows per chunk of the run scan

// What fill_levels needs from label_levels besides the groups.
struct LevelPlan {
  int ngroups = 1;
  bool flat_split = false;
  uint8_t after[kLevels];
};

// q_row(y, out): how many thresholds both alphas reach, for the W pixels of row y;
// chunk_hook(y0, y1) runs first in each chunk of rows of the scan (the caller's own
// per-row work, e.g. the images' minimum and maximum: one parallel loop fewer),
// after_scan() once the scan is done, and idle() on each thread of the union-finds'
// parallel loop once its share of the labelling is done (the caller's work that does
// not need the levels: the threads' shares never cost quite the same).
// Each pixel's level is then written by fill_levels, band by band.
template <typename QRow, typename Hook, typename AfterScan, typename Idle>
LevelPlan label_levels(const Params& P, const QRow& q_row, const Hook& chunk_hook, const AfterScan& after_scan,
                       const Idle& idle, int64_t H, int64_t W, LabelScratch& s) {
  // Every threshold's runs from one scan of q per row: per word of 64 pixels, the
  // bit mask of q >= i for each threshold i (thresholds at or below the word's
  // smallest q are all ones, above its largest all zeros), and a run of threshold
  // i opens at each rising edge of its mask and closes at each falling one. By
  // chunks of rows in parallel, then gathered threshold 10 first, row-major within
  // a threshold.
  constexpr int64_t kChunk = kScanChunk;
  const int64_t chunks = (H + kChunk - 1) / kChunk;
  const int64_t words = (W + 63) / 64;
  std::vector<RunList>& found = s.found;
  if (found.size() < size_t(chunks * kLevels)) found.resize(size_t(chunks * kLevels));
  for (auto& v : found) v.clear();
  if (s.top_mask.size() < size_t(H * words)) s.top_mask.resize(size_t(H * words));
  uint64_t* top_mask = s.top_mask.data();
  // chunks claimed from a counter: a static split left one thread idle 0.3 of 2.3 ms
  // (the chunks' costs differ with the image's content; what a chunk writes does not
  // depend on the thread)
  std::atomic<int64_t> next_chunk{0};
  at::parallel_for(0, std::min<int64_t>(chunks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    std::vector<uint8_t> qrow(size_t(words * 64), 0);  // padding stays 0: it closes the last runs
#if ML_METRICS_AVX512
    const bool avx512 = use_avx512();
#endif
    for (int64_t c; (c = next_chunk.fetch_add(1)) < chunks;) {
      chunk_hook(c * kChunk, std::min(H, (c + 1) * kChunk));
      // the chunk's lists written through local pointers, their counts stored once a
      // row (the chunks' list headers share cache lines: a push_back's stores to them
      // from both threads made the scan 15% slower)
      RunList* lists = &found[size_t(c * kLevels)];
      Run* out[kLevels];
      for (int64_t y = c * kChunk; y < std::min(H, (c + 1) * kChunk); ++y) {
        for (int i = 1; i < kLevels; ++i) {
          lists[i].room((W + 1) / 2);  // runs are apart: at most ceil(W / 2) a row
          out[i] = lists[i].data() + lists[i].size();
        }
        q_row(y, qrow.data());
        int32_t open[kLevels];
        uint64_t carry[kLevels] = {};  // the mask's bit at the previous pixel
        for (int64_t w = 0; w < words; ++w) {
          uint64_t m[kLevels];
#if ML_METRICS_AVX512
          if (avx512) word_masks_avx512(qrow.data() + w * 64, m);
          else word_masks(qrow.data() + w * 64, m);
#else
          word_masks(qrow.data() + w * 64, m);
#endif
          top_mask[y * words + w] = m[kLevels - 1];
          const int32_t base = int32_t(w * 64);
          for (int i = 1; i < kLevels; ++i) {
            const uint64_t b = m[i], before = (b << 1) | carry[i];
            uint64_t edges = b ^ before;  // rising where b, falling where before: they alternate
            if (!edges) continue;
            if (carry[i]) {  // inside a run: the first edge closes it
              *out[i]++ = Run{int32_t(y), open[i], base + __builtin_ctzll(edges)};
              edges &= edges - 1;
            }
            while (edges) {  // (open, close) pairs; an unpaired last edge opens a run
              const int32_t x0 = base + __builtin_ctzll(edges);
              edges &= edges - 1;
              if (!edges) {
                open[i] = x0;
                break;
              }
              *out[i]++ = Run{int32_t(y), x0, base + __builtin_ctzll(edges)};
              edges &= edges - 1;
            }
            carry[i] = b >> 63;
          }
        }
        for (int i = 1; i < kLevels; ++i)  // a run reaching the last word's last bit (W % 64 == 0)
          if (carry[i]) *out[i]++ = Run{int32_t(y), open[i], int32_t(W)};
        for (int i = 1; i < kLevels; ++i) lists[i].n = out[i] - lists[i].data();
      }
    }
  });
  after_scan();
  // The thresholds split in two groups, (0, k] and (k, 10], with about as many runs
  // each: each group's union-find runs on its own (the components of S_i depend on
  // S_i alone; the nesting only lets one union-find serve several thresholds), in
  // parallel. A group's top threshold holds its runs at full width (no children).
  int64_t per[kLevels + 1] = {}, total = 0;
  for (int i = 1; i < kLevels; ++i)
    for (int64_t c = 0; c < chunks; ++c) per[i] += int64_t(found[size_t(c * kLevels + i)].size());
  for (int i = 1; i < kLevels; ++i) total += per[i];
  int split = kLevels - 1;  // no split: group (0, 10] alone
  {
    int64_t below = 0, best_cost = total;
    for (int k = 1; k < kLevels - 1; ++k) {
      below += per[k];
      const int64_t cost = std::max(below, total - below);
      if (cost < best_cost) {
        best_cost = cost;
        split = k;
      }
    }
  }
  s.groups[0].lo = 0;
  s.groups[0].hi = split;
  s.groups[1].lo = split;
  s.groups[1].hi = kLevels - 1;
  const int ngroups = split < kLevels - 1 ? 2 : 1;
  // The upper group of a split is often one threshold alone (the benchmark's 1.0,
  // split by the prediction's noise into most of the runs): then it is labelled by
  // blocks of whole rows (the scan's chunks), claimed from the top by the lower
  // group's thread once label_group is done and from the bottom by the other thread,
  // so that neither idles whatever the two cost (a static split by run counts left one
  // thread idle 1.5 of 6.7 ms; the costs per run vary with the input and the
  // machine); the seams are united after. The components, hence the levels, do not
  // depend on which thread labelled which block. The blocks' runs stay in the scan's
  // lists (gathering them into F.runs before the loop took 0.3 ms of a 2-thread 1080p
  // call, on one thread): block k's are chunk k's, nodes [fb[k], fb[k + 1]).
  const bool flat_split = ngroups == 2 && s.groups[1].hi - s.groups[1].lo == 1;
  Group& F = s.groups[1];
  const int64_t nblocks = flat_split ? chunks : 0;
  std::vector<int64_t> fb(size_t(nblocks + 1), 0);  // F's runs; block k is [fb[k], fb[k + 1])
  std::vector<uint64_t> fbest(size_t(nblocks), 0);
  std::vector<int64_t> fmasked(size_t(nblocks), 0);
  std::vector<int32_t> froot(size_t(nblocks), -1);
  int64_t fr = 0;
  std::mutex claim_mutex;
  int64_t next_top = 0, next_bottom = nblocks - 1;
  auto claim = [&](bool top) -> int64_t {  // the next block from that end, -1 when none is left
    std::lock_guard<std::mutex> lock(claim_mutex);
    if (next_top > next_bottom) return -1;
    return top ? next_top++ : next_bottom--;
  };
  // The seams between blocks, each united (under seam_mutex) by the thread that finishes
  // the second of its two blocks: the trees it touches hold only finished blocks'
  // runs (blocks are joined only by seams), which no other thread writes. (United
  // after the loop, they were 0.2 ms of a 1080p call on one thread, the other idle.)
  // The largest component's packed value only grows and is unique (its key), so the
  // largest over the blocks and the seams is the same in any order, and its root then
  // is the component's root.
  std::mutex seam_mutex;
  std::vector<uint8_t> fdone(size_t(nblocks), 0);
  uint64_t sbest = 0;
  int32_t sroot = -1;
  auto seam = [&](int64_t k) {  // blocks k - 1 and k, both done
    const int64_t rs = fb[k];
    // an empty block has no seam (its neighbours' rows are a chunk apart)
    if (fb[k - 1] == rs || fb[k + 1] == rs) return;
    const Run* above = found[size_t((k - 1) * kLevels + F.hi)].data();  // node fb[k - 1] on
    const Run* below = found[size_t(k * kLevels + F.hi)].data();        // node rs on
    const int32_t ya = above[rs - 1 - fb[k - 1]].y, yb = below[0].y;
    if (yb != ya + 1) return;
    int64_t a0 = rs - 1;
    while (a0 > fb[k - 1] && above[a0 - 1 - fb[k - 1]].y == ya) --a0;
    int64_t b1 = rs;
    while (b1 < fb[k + 1] && below[b1 - rs].y == yb) ++b1;
    flat_rows_pair(F, above + (a0 - fb[k - 1]), a0, rs, below, rs, b1, sbest, sroot);
  };
  if (flat_split) {
    for (int64_t c = 0; c < chunks; ++c) fb[c + 1] = fb[c] + int64_t(found[size_t(c * kLevels + F.hi)].size());
    fr = fb[nblocks];
    F.runs.clear();  // (the runs stay in the scan's lists, block k in chunk k's)
    F.block_start.assign(fb.begin(), fb.end());
    F.level_start.assign(2, 0);
    F.level_start[1] = fr;
    F.ptr.resize(fr);
    F.val.resize(fr);
  }
  // (two tasks even for one group: the second thread then goes straight to idle())
  at::parallel_for(0, std::max(ngroups, 2), 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      if (g < ngroups && (!flat_split || g == 0)) label_group(P, found, chunks, H, W, s.groups[g]);
      if (flat_split)
        for (int64_t k; (k = claim(g == 0)) >= 0;) {
          flat_rows(P, H, W, F, top_mask, found[size_t(k * kLevels + F.hi)].data(), fb[k], fb[k + 1], fbest[k],
                    froot[k], fmasked[k]);
          std::lock_guard<std::mutex> lock(seam_mutex);
          fdone[size_t(k)] = 1;
          if (k > 0 && fdone[size_t(k - 1)]) seam(k);
          if (k + 1 < nblocks && fdone[size_t(k + 1)]) seam(k + 1);
        }
    }
    idle();
  });
  if (flat_split) {
    uint64_t best = sbest;
    int32_t best_root = sroot;
    for (int64_t k = 0; k < nblocks; ++k)
      if (fbest[k] > best) {
        best = fbest[k];
        best_root = froot[k];
      }
    int64_t masked = 0;
    for (int64_t k = 0; k < nblocks; ++k) masked += fmasked[k];
    F.background[F.hi] = background_wins(P.convention, H * W - masked, best);
    F.omega_root[F.hi] = F.background[F.hi] || best_root < 0 ? -1 : best_root;
  }
  // A pixel's level: M - 1 when M <= q, else the first threshold above q that is not
  // a background one (every threshold above q misses the pixel unless omega is
  // the background there), minus 1; 10 when none. With two groups, the pixels of a
  // top run of the first group that is omega up to its threshold k are marked
  // (0x80): their levels above k are the second group's.
  LevelPlan plan;
  plan.ngroups = ngroups;
  plan.flat_split = flat_split;
  bool background[kLevels + 1] = {};
  for (int gi = 0; gi < ngroups; ++gi)
    for (int i = s.groups[gi].lo + 1; i <= s.groups[gi].hi; ++i) background[i] = s.groups[gi].background[i];
  for (int j = 0; j < kLevels; ++j) {
    int k = j + 1;
    while (k < kLevels && background[k]) ++k;
    plan.after[j] = uint8_t(k - 1);
  }
  return plan;
}

// The levels of rows [ya, yb) (every run lies in one row: bands fill their own rows,
// in parallel; the forests are only read).
void fill_levels(const LevelPlan& plan, const LabelScratch& s, int64_t W, int64_t ya, int64_t yb, uint8_t* level) {
  const int ngroups = plan.ngroups;
  const bool flat_split = plan.flat_split;
  const uint8_t* after = plan.after;
  auto fill = [&](const Run& run, uint8_t v) {
    // the bounds in locals: a store through uint8_t* may alias them, and reloading
    // run.x1 per byte was the fill's hottest instruction
    const int32_t x0 = run.x0, x1 = run.x1;
    uint8_t* dst = level + run.y * W;
    if (x1 - x0 <= 16) {
      for (int32_t x = x0; x < x1; ++x) dst[x] = v;
    } else {
      std::memset(dst + x0, v, size_t(x1 - x0));
    }
  };
  {
    // fn(run, node) for each run of rows [ya, yb) in r[first, last) (node: base + index)
    auto rows_of = [&](const Run* r, int64_t first, int64_t last, int64_t base, auto&& fn) {
      const int64_t lo =
          std::lower_bound(r + first, r + last, ya, [](const Run& u, int64_t y) { return u.y < y; }) - r;
      const int64_t hi = std::lower_bound(r + lo, r + last, yb, [](const Run& u, int64_t y) { return u.y < y; }) - r;
      for (int64_t x = lo; x < hi; ++x) fn(r[x], base + x);
    };
    std::memset(level + ya * W, after[0], size_t((yb - ya) * W));
    for (int gi = 0; gi < ngroups; ++gi) {
      const Group& G = s.groups[gi];
      for (int i = G.lo + 1; i <= G.hi; ++i) {
        const bool marked_top = gi == 0 && ngroups == 2 && i == G.hi;
        auto one = [&](const Run& run, int64_t x) {
          if (gi == 1 && !(level[run.y * W + run.x0] & 0x80)) return;  // out of an omega below
          uint8_t m;
          if (gi == 1 && flat_split) {  // read-only find: chunks share the forest
            int32_t root = int32_t(x);
            while (G.ptr[root] != root) root = G.ptr[root];
            m = root == G.omega_root[G.hi] ? uint8_t(255) : uint8_t(G.hi);
          } else {
            m = G.m[x];
            // out of omega below i: the run of i - 1 holding it wrote these pixels' level
            // (its M is the same, M - 1), or skipped them for the same reason
            if (m < i) return;
          }
          uint8_t v = m <= i ? uint8_t(m - 1) : after[i];
          if (marked_top && m > i) v |= 0x80;
          if (gi == 1) v |= 0x80;
          fill(run, v);
        };
        if (gi == 1 && flat_split) {  // its runs in the scan's lists, chunk c's nodes from block_start[c]
          for (int64_t c = ya / kScanChunk; c <= (yb - 1) / kScanChunk; ++c) {
            const RunList& v = s.found[size_t(c * kLevels + G.hi)];
            rows_of(v.data(), 0, v.size(), G.block_start[size_t(c)], one);
          }
        } else {
          rows_of(G.runs.data(), G.level_start[G.hi - i], G.level_start[G.hi - i + 1], 0, one);
        }
      }
    }
    if (ngroups == 2) {  // clear the marks: every marked pixel lies in a top run of the first group
      // (no level reaches 0x80: clearing every byte of the rows is the same, and vectorises)
      uint8_t* dst = level + ya * W;
      for (int64_t k = 0; k < (yb - ya) * W; ++k) dst[k] &= 0x7F;
    }
  }
}

// ------------------------------------------------------------ rows pass
// The filter's work is limited to the tiles of kTile columns that hold a region
// pixel (the error is summed over the region only): a typical trimap's unknown
// band is a third of the image, and 8-column tiles cover 39% of the benchmark's
// pixels (64-column ones 88%). Skipped tiles would only add zeros to the lanes,
// so the sums do not depend on the skipping. (kTile >= kHalf: a tile's
// neighbours cover the filter's reach.)
constexpr int64_t kTile = 8;
constexpr int64_t kBand = 16;  // rows per parallel chunk (fixed: sums independent of threads)

// A row of an image as ../metrics.h value() reads it: double(x) * factor (0..255),
// or p3m's double(x) / divisor (0..1).
template <typename T>
ML_CPU_CLONES void load_row(const T* src, int64_t n, double factor, double divisor, double* dst) {
  if (divisor != 0.0) {
    for (int64_t x = 0; x < n; ++x) dst[x] = double(src[x]) / divisor;
    return;
  }
  for (int64_t x = 0; x < n; ++x) dst[x] = double(src[x]) * factor;
}

void load_any(const Image& im, int64_t offset, int64_t n, double* dst) {
  switch (im.dtype) {
    case Dtype::kUInt8:
      load_row(static_cast<const uint8_t*>(im.data) + offset, n, im.factor, im.divisor, dst);
      break;
    case Dtype::kFloat: load_row(static_cast<const float*>(im.data) + offset, n, im.factor, im.divisor, dst); break;
    default: load_row(static_cast<const double*>(im.data) + offset, n, im.factor, im.divisor, dst); break;
  }
}

// x / c as x * (1 / c) corrected by one FMA (the residual x - q c is exact): the
// correctly rounded quotient for most x but not every x, so the vector paths use it
// only where div_exact checked every value the division will see (256 per uint8
// image) and found the division's bits. vdivpd was most of norm_row_avx512's and
// point_blocks_avx512's time (on this Xeon, 2M quotients: 2.9 ms, 0.86 ms so).
inline double div_fma(double x, double c, double r) {
  const double q = x * r;
  return std::fma(std::fma(-q, c, x), r, q);
}
bool div_exact(const double* xs, int n, double c) {
  const double r = 1.0 / c;
  for (int i = 0; i < n; ++i) {
    const double a = div_fma(xs[i], c, r), b = xs[i] / c;
    if (std::memcmp(&a, &b, sizeof(double)) != 0) return false;
  }
  return true;
}

// Which of point_blocks_avx512's divisions may run as div_fma (uint8 mattes): p, g
// every division of that image's values (scaled()'s v / divisor, mmagic's / 255);
// d gca's (u_p - u_g) / 255 (checked on the 511 differences of integer values).
struct DivPlan {
  bool p = false, g = false, d = false;
};

DivPlan div_plan(int64_t convention, const Image& pred, const Image& gt) {
  DivPlan plan;
  double xs[511];
  auto image = [&](const Image& im) {
    if (im.divisor != 0.0) {
      for (int v = 0; v < 256; ++v) xs[v] = double(v);
      if (!div_exact(xs, 256, im.divisor)) return false;
    }
    if (convention != kMmagic) return true;
    for (int v = 0; v < 256; ++v) xs[v] = scaled(im, double(v));
    return div_exact(xs, 256, 255.0);
  };
  plan.p = image(pred);
  plan.g = image(gt);
  if (convention == kGca && pred.divisor == 0.0 && gt.divisor == 0.0 && pred.factor == 1.0 && gt.factor == 1.0) {
    for (int k = 0; k < 511; ++k) xs[k] = double(k - 255);
    plan.d = div_exact(xs, 511, 255.0);
  }
  return plan;
}

#if ML_METRICS_AVX512
__attribute__((target("avx512f"))) inline __m512d div_fma_avx512(__m512d x, __m512d c, __m512d r) {
  const __m512d q = _mm512_mul_pd(x, r);
  return _mm512_fmadd_pd(_mm512_fnmadd_pd(q, c, x), r, q);
}
// x / c, by div_fma where a DivPlan flag says it gives the division's bits
__attribute__((target("avx512f"))) inline __m512d div_avx512(bool fast, __m512d x, __m512d c, __m512d r) {
  return fast ? div_fma_avx512(x, c, r) : _mm512_div_pd(x, c);
}

// normalise(n, double(src[x]) * factor) for x in [x0, x1), 8 at a time with the
// operations of ../metrics.h normalise (each rounded on its own; r is never -0.0, so
// max/min give fmax/fmin's bits): the scalar table reads were ~2 ms of a 1080p
// call, gathers from the table nearly as slow. Returns where it stopped.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's _mm512_cvtepi32_pd: its own undefined source
__attribute__((target("avx512f,avx512vl"))) int64_t norm_row_avx512(const Norm& n, double factor, bool recip,
                                                                      const uint8_t* src, int64_t x0, int64_t x1,
                                                                      double* dst) {
  const __m512d f = _mm512_set1_pd(factor), scale = _mm512_set1_pd(n.scale), shift = _mm512_set1_pd(n.shift);
  const __m512d c255 = _mm512_set1_pd(255.0), zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
  const __m512d r255 = _mm512_set1_pd(1.0 / 255.0);
  const __m256 f255 = _mm256_set1_ps(255.0f);
  int64_t x = x0;
  for (; x + 8 <= x1; x += 8) {
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + x)));
    __m512d v = _mm512_mul_pd(_mm512_cvtepi32_pd(b), f);
    if (n.pre_div == 2) v = _mm512_cvtps_pd(_mm256_div_ps(_mm512_cvtpd_ps(v), f255));
    else if (n.pre_div) v = recip ? div_fma_avx512(v, c255, r255) : _mm512_div_pd(v, c255);
    __m512d r = _mm512_add_pd(_mm512_mul_pd(v, scale), shift);
    if (n.clamp) r = _mm512_min_pd(_mm512_max_pd(r, zero), one);
    _mm512_storeu_pd(dst + x, r);
  }
  return x;
}
#pragma GCC diagnostic pop
#endif

// One image's normalisation for the filter (../metrics.h normalise), tabulated for uint8.
struct Normaliser {
  Norm n{};
  bool u8 = false;
  bool recip = false;  // norm_row_avx512's v / 255 by div_fma: checked on the 256 values
  double factor = 1.0;
  double table[256];
  void init(const Image& im, const Norm& norm) {
    n = norm;
    factor = im.factor;
    u8 = im.dtype == Dtype::kUInt8;
    if (u8) {
      double xs[256];
      for (int v = 0; v < 256; ++v) {
        table[v] = normalise(n, double(v) * im.factor);
        xs[v] = double(v) * im.factor;
      }
      recip = n.pre_div == 1 && div_exact(xs, 256, 255.0);
    }
  }
  // columns [x0, x1) of row y
  void row(const Image& im, int64_t y, int64_t W, int64_t x0, int64_t x1, double* dst, double* staging) const {
    if (u8) {
      const uint8_t* src = static_cast<const uint8_t*>(im.data) + y * W;
      int64_t x = x0;
#if ML_METRICS_AVX512
      if (use_avx512()) x = norm_row_avx512(n, factor, recip, src, x0, x1, dst);
#endif
      for (; x < x1; ++x) dst[x] = table[src[x]];
      return;
    }
    load_any(im, y * W + x0, x1 - x0, staging);
    for (int64_t x = x0; x < x1; ++x) dst[x] = normalise(n, staging[x - x0]);
  }
};

// ../metrics.h column_pass over columns [x0, x1), both factors at once: the same
// products and sums in the same order (dot_sym's, dot_anti's), vectorised over x.
ML_CPU_CLONES void column_span(const double* taps_g, const double* taps_d, const double* const* r, int64_t x0,
                               int64_t x1, double* __restrict sg, double* __restrict sd) {
  const double* r0 = r[0];
  const double* r1 = r[1];
  const double* r2 = r[2];
  const double* r3 = r[3];
  const double* r4 = r[4];
  const double* r5 = r[5];
  const double* r6 = r[6];
  const double* r7 = r[7];
  const double* r8 = r[8];
  const double g0 = taps_g[0], g1 = taps_g[1], g2 = taps_g[2], g3 = taps_g[3], g4 = taps_g[4];
  const double d0 = taps_d[0], d1 = taps_d[1], d2 = taps_d[2], d3 = taps_d[3];
  for (int64_t x = x0; x < x1; ++x) {
    double g = g4 * r4[x];
    g = g + g3 * (r3[x] + r5[x]);
    g = g + g2 * (r2[x] + r6[x]);
    g = g + g1 * (r1[x] + r7[x]);
    g = g + g0 * (r0[x] + r8[x]);
    double d = d3 * (r3[x] - r5[x]);
    d = d + d2 * (r2[x] - r6[x]);
    d = d + d1 * (r1[x] - r7[x]);
    d = d + d0 * (r0[x] - r8[x]);
    sg[x] = g;
    sd[x] = d;
  }
}

// The row pass and the magnitude over [x0, x1): gx = dot_anti(taps_d, sg[x-4..x+4]),
// gy = dot_sym(taps_g, sd[x-4..x+4]) (sg, sd hold column x at index x + kHalf).
ML_CPU_CLONES void row_span(const double* taps_g, const double* taps_d, const double* __restrict sg,
                            const double* __restrict sd, int64_t x0, int64_t x1, double* __restrict amp) {
  const double g0 = taps_g[0], g1 = taps_g[1], g2 = taps_g[2], g3 = taps_g[3], g4 = taps_g[4];
  const double d0 = taps_d[0], d1 = taps_d[1], d2 = taps_d[2], d3 = taps_d[3];
  for (int64_t x = x0; x < x1; ++x) {
    const double* a = sg + x;
    const double* b = sd + x;
    double gx = d3 * (a[3] - a[5]);
    gx = gx + d2 * (a[2] - a[6]);
    gx = gx + d1 * (a[1] - a[7]);
    gx = gx + d0 * (a[0] - a[8]);
    double gy = g4 * b[4];
    gy = gy + g3 * (b[3] + b[5]);
    gy = gy + g2 * (b[2] + b[6]);
    gy = gy + g1 * (b[1] + b[7]);
    gy = gy + g0 * (b[0] + b[8]);
    amp[x] = magnitude(gx, gy);
  }
}

// Lanes of one row's sums: element x of a row goes to lane x % kLanes.
constexpr int64_t kLanes = 16;
struct RowLanes {
  double v[kSums][kLanes];
};

// One row's SAD/MSE terms, computed a block of kLanes pixels at a time into
// arrays, then added to five local lane arrays with a select for the region:
// accumulating per pixel through RowLanes compiled to a scalar loop that stored a
// lane per add and branched on the region (8% of a 1080p call). Each lane still
// gets its pixels' terms added in x order, so the sums keep their bits.
struct PointLanes {
  double sa[kLanes] = {}, sq[kLanes] = {}, ra[kLanes] = {}, rq[kLanes] = {}, cn[kLanes] = {};
  double ae[kLanes], se[kLanes];  // the block's terms
  ML_INLINE void add(const uint8_t* __restrict in, int64_t n) {
    for (int64_t l = 0; l < n; ++l) {
      sa[l] += ae[l];
      sq[l] += se[l];
      ra[l] += in[l] ? ae[l] : 0.0;
      rq[l] += in[l] ? se[l] : 0.0;
      cn[l] += in[l] ? 1.0 : 0.0;
    }
  }
  ML_INLINE void store(RowLanes& L) const {
    for (int64_t l = 0; l < kLanes; ++l) {
      L.v[kSadAll][l] += sa[l];
      L.v[kSqAll][l] += sq[l];
      L.v[kSadRegion][l] += ra[l];
      L.v[kSqRegion][l] += rq[l];
      L.v[kCount][l] += cn[l];
    }
  }
};

// SAD and MSE terms of a row (../metrics.h point_terms), into lanes (L zero on entry).
template <int64_t C>
ML_CPU_CLONES void point_row(const double* __restrict ap, const double* __restrict ag, const uint8_t* __restrict reg,
                             int64_t W, RowLanes& L) {
  PointLanes S;
  for (int64_t x0 = 0; x0 < W; x0 += kLanes) {
    const int64_t n = std::min<int64_t>(kLanes, W - x0);
    for (int64_t l = 0; l < n; ++l) point_terms(C, ap[x0 + l], ag[x0 + l], S.ae[l], S.se[l]);
    if (n == kLanes) S.add(reg + x0, kLanes);
    else S.add(reg + x0, n);
  }
  S.store(L);
}

#if ML_METRICS_AVX512
// point_row_u8's whole blocks of kLanes pixels with AVX-512: u = point_value(scaled(a))
// computed per lane with the operations of ../metrics.h (the same bits as the
// scalar path; tested), each half of a block 8 of the lanes, so every lane's
// terms are added in x order. The region's select is a masked add: a lane outside
// keeps its value, as adding 0.0 to a sum that is never -0.0 does.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's _mm512_cvtepi32_pd: its own undefined source
template <int64_t C>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) int64_t point_blocks_avx512(
    const uint8_t* __restrict p, const uint8_t* __restrict g, const Image& pred, const Image& gt, const DivPlan& dv,
    const uint8_t* __restrict reg, int64_t W, double* sa_out, double* sq_out, double* ra_out, double* rq_out,
    double* cn_out) {
  const __m512d fp = _mm512_set1_pd(pred.factor), fg = _mm512_set1_pd(gt.factor);
  const __m512d vp = _mm512_set1_pd(pred.divisor), vg = _mm512_set1_pd(gt.divisor);
  const __m512d rvp = _mm512_set1_pd(1.0 / pred.divisor), rvg = _mm512_set1_pd(1.0 / gt.divisor);
  const __m512d r255 = _mm512_set1_pd(1.0 / 255.0);
  const bool dp = pred.divisor != 0.0, dg = gt.divisor != 0.0;
  const __m512d c255 = _mm512_set1_pd(255.0), one = _mm512_set1_pd(1.0);
  const __m256 f255 = _mm256_set1_ps(255.0f);
  const __m512d abs_mask = _mm512_castsi512_pd(_mm512_set1_epi64(INT64_MAX));
  const __m256 abs_mask_f = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MAX));
  __m512d sa[2], sq[2], ra[2], rq[2], cn[2];
  for (int h = 0; h < 2; ++h) {
    sa[h] = _mm512_loadu_pd(sa_out + 8 * h);
    sq[h] = _mm512_loadu_pd(sq_out + 8 * h);
    ra[h] = _mm512_loadu_pd(ra_out + 8 * h);
    rq[h] = _mm512_loadu_pd(rq_out + 8 * h);
    cn[h] = _mm512_loadu_pd(cn_out + 8 * h);
  }
  int64_t x0 = 0;
  for (; x0 + kLanes <= W; x0 += kLanes)
    for (int h = 0; h < 2; ++h) {
      const int64_t x = x0 + 8 * h;
      const __m512d rp = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + x))));
      const __m512d rg = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + x))));
      const __m512d ap = dp ? div_avx512(dv.p, rp, vp, rvp) : _mm512_mul_pd(rp, fp);  // scaled()
      const __m512d ag = dg ? div_avx512(dv.g, rg, vg, rvg) : _mm512_mul_pd(rg, fg);
      __m512d ae, se;
      if (C == kDimMatlab || C == kRvm) {  // point_value then point_terms_u in single
        __m256 up = _mm512_cvtpd_ps(ap), ug = _mm512_cvtpd_ps(ag);
        __m256 d;
        if (C == kDimMatlab) {
          d = _mm256_div_ps(_mm256_sub_ps(up, ug), f255);
        } else {
          d = _mm256_sub_ps(_mm256_div_ps(up, f255), _mm256_div_ps(ug, f255));
        }
        ae = _mm512_cvtps_pd(_mm256_and_ps(d, abs_mask_f));
        se = _mm512_cvtps_pd(_mm256_mul_ps(d, d));
      } else {
        const __m512d up = C == kMmagic ? div_avx512(dv.p, ap, c255, r255) : ap;
        const __m512d ug = C == kMmagic ? div_avx512(dv.g, ag, c255, r255) : ag;
        __m512d d = _mm512_sub_pd(up, ug);
        if (C == kGca) d = div_avx512(dv.d, d, c255, r255);
        ae = _mm512_and_pd(d, abs_mask);
        se = _mm512_mul_pd(d, d);
      }
      const __m128i rb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(reg + x));
      const __mmask8 in = __mmask8(_mm_test_epi8_mask(rb, rb));
      sa[h] = _mm512_add_pd(sa[h], ae);
      sq[h] = _mm512_add_pd(sq[h], se);
      ra[h] = _mm512_mask_add_pd(ra[h], in, ra[h], ae);
      rq[h] = _mm512_mask_add_pd(rq[h], in, rq[h], se);
      cn[h] = _mm512_mask_add_pd(cn[h], in, cn[h], one);
    }
  for (int h = 0; h < 2; ++h) {
    _mm512_storeu_pd(sa_out + 8 * h, sa[h]);
    _mm512_storeu_pd(sq_out + 8 * h, sq[h]);
    _mm512_storeu_pd(ra_out + 8 * h, ra[h]);
    _mm512_storeu_pd(rq_out + 8 * h, rq[h]);
    _mm512_storeu_pd(cn_out + 8 * h, cn[h]);
  }
  return x0;
}
#pragma GCC diagnostic pop
#endif

// The same for uint8 mattes, u = point_value(scaled(a)) computed as band_rows'
// tables were (table reads compiled to a scalar loop of 2.2 ns a pixel, 4.5 ms of
// a 1080p call; GCC's own vectorisation of it was slower still): whole blocks on
// the AVX-512 path where there is one.
template <int64_t C>
ML_CPU_CLONES void point_row_u8(const uint8_t* __restrict p, const uint8_t* __restrict g, const Image& pred,
                                const Image& gt, const DivPlan& dv, const uint8_t* __restrict reg, int64_t W, RowLanes& L) {
  PointLanes S;
  int64_t x0 = 0;
#if ML_METRICS_AVX512
  if (use_avx512()) x0 = point_blocks_avx512<C>(p, g, pred, gt, dv, reg, W, S.sa, S.sq, S.ra, S.rq, S.cn);
#endif
  for (; x0 < W; x0 += kLanes) {
    const int64_t n = std::min<int64_t>(kLanes, W - x0);
    for (int64_t l = 0; l < n; ++l)
      point_terms_u(C, point_value(C, scaled(pred, double(p[x0 + l]))), point_value(C, scaled(gt, double(g[x0 + l]))),
                    S.ae[l], S.se[l]);
    S.add(reg + x0, n);
  }
  S.store(L);
}

#if ML_METRICS_AVX512
// grad_span's whole groups of 8 pixels from an x that is a multiple of 8 (the
// tiles'): lanes x % 16 .. + 7 of the sums, gradient_term's operations, the
// region as a masked add (as adding 0.0 to a sum that is never -0.0). The scalar
// loop was 3% of a 1080p call. Returns where it stopped.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's _mm512_cvtpd_ps: its own undefined source
__attribute__((target("avx512f,avx512bw,avx512vl"))) int64_t grad_blocks_avx512(
    int64_t convention, const double* __restrict amp_p, const double* __restrict amp_g,
    const uint8_t* __restrict reg, int64_t x0, int64_t x1, double* lanes) {
  int64_t x = x0;
  for (; x + 8 <= x1; x += 8) {
    const __m512d p = _mm512_loadu_pd(amp_p + x), g = _mm512_loadu_pd(amp_g + x);
    __m512d t;
    if (convention == kDimMatlab) {
      const __m256 e = _mm256_sub_ps(_mm512_cvtpd_ps(p), _mm512_cvtpd_ps(g));
      t = _mm512_cvtps_pd(_mm256_mul_ps(e, e));
    } else {
      const __m512d e = _mm512_sub_pd(p, g);
      t = _mm512_mul_pd(e, e);
    }
    const __m128i rb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(reg + x));
    const __mmask8 in = __mmask8(_mm_test_epi8_mask(rb, rb));
    double* l = lanes + (x % kLanes);
    const __m512d acc = _mm512_loadu_pd(l);
    _mm512_storeu_pd(l, _mm512_mask_add_pd(acc, in, acc, t));
  }
  return x;
}
#pragma GCC diagnostic pop
#endif

// The gradient terms of the region pixels in [x0, x1), into lanes.
ML_CPU_CLONES void grad_span(int64_t convention, const double* __restrict amp_p, const double* __restrict amp_g,
                             const uint8_t* __restrict reg, int64_t x0, int64_t x1, RowLanes& L) {
#if ML_METRICS_AVX512
  if (use_avx512() && x0 % 8 == 0) x0 = grad_blocks_avx512(convention, amp_p, amp_g, reg, x0, x1, L.v[kGrad]);
#endif
  for (int64_t x = x0; x < x1; ++x) {
    const double t = gradient_term(convention, amp_p[x], amp_g[x]);
    L.v[kGrad][x % kLanes] += reg[x] ? t : 0.0;
  }
}

// phi per uint8 value and level (../metrics.h phi_single / phi_double): the
// connectivity term of a uint8 pixel is then two table reads.
struct PhiTable {
  bool single = false;
  float f[kLevels][256];
  double d[kLevels][256];
  void init(const Params& P, const Image& im) {
    single = single_alpha(P.convention);
    for (int lv = 0; lv < kLevels; ++lv)
      for (int v = 0; v < 256; ++v) {
        const double a = conn_alpha(P.convention, scaled(im, double(v)));
        if (single) f[lv][v] = phi_single(float(a), float(P.thresholds[lv]));
        else d[lv][v] = phi_double(a, level_value(P, lv));
      }
  }
};

#if ML_METRICS_AVX512
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's _mm512_cvtps_pd: its own undefined source
#define ML_IDX8(a) _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)))
// conn_row_u8's whole blocks with AVX-512: each half of a block 8 of the lanes,
// the two tables read by gathers masked to the region (the scalar loop reads them
// only there too), the term added by a masked add (as adding 0.0 outside).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) int64_t conn_blocks_avx512(
    const PhiTable& tp, const PhiTable& tg, const uint8_t* __restrict p, const uint8_t* __restrict g,
    const uint8_t* __restrict level, const uint8_t* __restrict reg, int64_t W, double* acc_out) {
  const __m512d zero = _mm512_setzero_pd();
  const __m512d abs_mask = _mm512_castsi512_pd(_mm512_set1_epi64(INT64_MAX));
  const __m256 abs_mask_f = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MAX));
  __m512d acc[2] = {_mm512_loadu_pd(acc_out), _mm512_loadu_pd(acc_out + 8)};
  int64_t x0 = 0;
  for (; x0 + kLanes <= W; x0 += kLanes)
    for (int h = 0; h < 2; ++h) {
      const int64_t x = x0 + 8 * h;
      const __m128i rb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(reg + x));
      const __mmask8 in = __mmask8(_mm_test_epi8_mask(rb, rb));
      if (!in) continue;
      const __m256i row = _mm256_slli_epi32(ML_IDX8(level + x), 8);  // level * 256
      const __m256i ip = _mm256_add_epi32(row, ML_IDX8(p + x)), ig = _mm256_add_epi32(row, ML_IDX8(g + x));
      __m512d t;
      if (tp.single) {
        const __m256 a = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(), in, ip, &tp.f[0][0], 4);
        const __m256 c = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(), in, ig, &tg.f[0][0], 4);
        t = _mm512_cvtps_pd(_mm256_and_ps(_mm256_sub_ps(a, c), abs_mask_f));
      } else {
        const __m512d a = _mm512_mask_i32gather_pd(zero, in, ip, &tp.d[0][0], 8);
        const __m512d c = _mm512_mask_i32gather_pd(zero, in, ig, &tg.d[0][0], 8);
        t = _mm512_and_pd(_mm512_sub_pd(a, c), abs_mask);
      }
      acc[h] = _mm512_mask_add_pd(acc[h], in, acc[h], t);
    }
  _mm512_storeu_pd(acc_out, acc[0]);
  _mm512_storeu_pd(acc_out + 8, acc[1]);
  return x0;
}
#undef ML_IDX8
#pragma GCC diagnostic pop
#endif

// One row's connectivity terms into local lanes (each lane's terms in x order),
// whole blocks on the AVX-512 path where there is one: the scalar loop's table
// reads were 7% of a 1080p call.
void conn_row_u8(const PhiTable& tp, const PhiTable& tg, const uint8_t* __restrict p, const uint8_t* __restrict g,
                 const uint8_t* __restrict level, const uint8_t* __restrict reg, int64_t W, RowLanes& L) {
  double acc[kLanes] = {};
  int64_t x0 = 0;
#if ML_METRICS_AVX512
  if (use_avx512()) x0 = conn_blocks_avx512(tp, tg, p, g, level, reg, W, acc);
#endif
  for (int64_t x = x0; x < W; ++x) {
    if (!reg[x]) continue;
    acc[x % kLanes] += tp.single ? double(fabsf(tp.f[level[x]][p[x]] - tg.f[level[x]][g[x]]))
                                 : fabs(tp.d[level[x]][p[x]] - tg.d[level[x]][g[x]]);
  }
  for (int64_t l = 0; l < kLanes; ++l) L.v[kConn][l] += acc[l];
}

struct BandScratch {
  std::vector<double> ring_p, ring_g;  // 9 normalised rows per image, row r in slot r % 9
  std::vector<double> sg_p, sd_p, sg_g, sd_g;  // column passes, column x at index x + kHalf
  std::vector<double> amp_p, amp_g, ap, ag, staging;
  std::vector<uint8_t> need, norm_need, dilated;  // tiles per row
  int64_t slot_row[kTaps];
};

// The tiles of row y holding a region pixel.
void row_need(const uint8_t* reg, int64_t W, int64_t tiles, uint8_t* need) {
  static_assert(kTile == 8, "a whole tile is one 8-byte word");
  const int64_t full = W / kTile;
  for (int64_t j = 0; j < full; ++j) {  // (an OR over 8 bytes compiled to shifts and ORs per tile)
    uint64_t w;
    std::memcpy(&w, reg + j * kTile, sizeof(w));
    need[j] = w != 0;
  }
  for (int64_t j = full; j < tiles; ++j) {
    const int64_t x0 = j * kTile, x1 = std::min(W, x0 + kTile);
    uint8_t any = 0;
    for (int64_t x = x0; x < x1; ++x) any |= reg[x];
    need[j] = any != 0;
  }
}

inline int64_t clamp_row(int64_t y, int64_t H) { return y < 0 ? 0 : (y > H - 1 ? H - 1 : y); }

// fn(j, jb) for each maximal run [j, jb) of set flags in flags[0, n): the filter
// works on spans of the tiles a row needs.
template <typename F>
inline void for_each_span(const uint8_t* flags, int64_t n, F&& fn) {
  for (int64_t j = 0; j < n;) {
    if (!flags[j]) {
      ++j;
      continue;
    }
    int64_t jb = j;
    while (jb < n && flags[jb]) ++jb;
    fn(j, jb);
    j = jb;
  }
}

// Gradient magnitudes of both images at the needed tiles of rows [y0, y1) of one
// sample, then every term of those rows into `rows` (kSums per row).
void band_rows(const MetricsArgs& A, const Image& pred, const Image& gt, const uint8_t* region,
               const Normaliser& np, const Normaliser& ng, const DivPlan& dv, int64_t y0, int64_t y1, BandScratch& s,
               double* rows) {
  const Params& P = A.params;
  const int64_t H = A.height, W = A.width, tiles = (W + kTile - 1) / kTile;
  const bool u8 = pred.dtype == Dtype::kUInt8 && gt.dtype == Dtype::kUInt8;
  const bool grad9 = A.gradient && P.convention != kP3m;  // p3m's filter: p3m_gradient_rows
  if (grad9) {
    // needed tiles of the output rows, and of the normalised rows (dilated by the
    // filter's reach: 4 rows, one tile on each side)
    const int64_t r0 = clamp_row(y0 - kHalf, H), r1 = clamp_row(y1 - 1 + kHalf, H) + 1;
    s.need.assign((y1 - y0) * tiles, 0);
    s.norm_need.assign((r1 - r0) * tiles, 0);
    s.dilated.assign(tiles, 0);
    uint8_t* hd = s.dilated.data();
    for (int64_t y = y0; y < y1; ++y) {
      uint8_t* nd = &s.need[(y - y0) * tiles];
      row_need(region + y * W, W, tiles, nd);
      // the tiles and their neighbours
      hd[0] = nd[0] | (tiles > 1 ? nd[1] : 0);
      for (int64_t j = 1; j + 1 < tiles; ++j) hd[j] = nd[j - 1] | nd[j] | nd[j + 1];
      if (tiles > 1) hd[tiles - 1] = nd[tiles - 2] | nd[tiles - 1];
      for (int64_t yy = clamp_row(y - kHalf, H); yy <= clamp_row(y + kHalf, H); ++yy) {
        uint8_t* nn = &s.norm_need[(yy - r0) * tiles];
        for (int64_t j = 0; j < tiles; ++j) nn[j] |= hd[j];
      }
    }
    for (int k = 0; k < kTaps; ++k) s.slot_row[k] = -1;
  }
  for (int64_t y = y0; y < y1; ++y) {
    RowLanes L;
    std::memset(&L, 0, sizeof(L));
    const uint8_t* reg = region + y * W;
    if (u8) {
      const uint8_t* p8 = static_cast<const uint8_t*>(pred.data) + y * W;
      const uint8_t* g8 = static_cast<const uint8_t*>(gt.data) + y * W;
      switch (P.convention) {
        case kDimMatlab: point_row_u8<kDimMatlab>(p8, g8, pred, gt, dv, reg, W, L); break;
        case kMmagic: point_row_u8<kMmagic>(p8, g8, pred, gt, dv, reg, W, L); break;
        case kRvm: point_row_u8<kRvm>(p8, g8, pred, gt, dv, reg, W, L); break;
        case kP3m: point_row_u8<kP3m>(p8, g8, pred, gt, dv, reg, W, L); break;
        default: point_row_u8<kGca>(p8, g8, pred, gt, dv, reg, W, L); break;
      }
    } else {
      load_any(pred, y * W, W, s.ap.data());
      load_any(gt, y * W, W, s.ag.data());
      switch (P.convention) {
        case kDimMatlab: point_row<kDimMatlab>(s.ap.data(), s.ag.data(), reg, W, L); break;
        case kMmagic: point_row<kMmagic>(s.ap.data(), s.ag.data(), reg, W, L); break;
        case kRvm: point_row<kRvm>(s.ap.data(), s.ag.data(), reg, W, L); break;
        case kP3m: point_row<kP3m>(s.ap.data(), s.ag.data(), reg, W, L); break;
        default: point_row<kGca>(s.ap.data(), s.ag.data(), reg, W, L); break;
      }
    }
    if (grad9) {
      const int64_t r0 = clamp_row(y0 - kHalf, H);
      const double* rp[kTaps];
      const double* rg[kTaps];
      for (int k = 0; k < kTaps; ++k) {
        const int64_t r = clamp_row(y + k - kHalf, H), slot = r % kTaps;
        if (s.slot_row[slot] != r) {  // first use of row r in this band: normalise its needed tiles
          for_each_span(&s.norm_need[(r - r0) * tiles], tiles, [&](int64_t j, int64_t jb) {
            const int64_t xa = j * kTile, xb = std::min(W, jb * kTile);
            np.row(pred, r, W, xa, xb, s.ring_p.data() + slot * W, s.staging.data());
            ng.row(gt, r, W, xa, xb, s.ring_g.data() + slot * W, s.staging.data());
          });
          s.slot_row[slot] = r;
        }
        rp[k] = s.ring_p.data() + slot * W;
        rg[k] = s.ring_g.data() + slot * W;
      }
      for_each_span(&s.need[(y - y0) * tiles], tiles, [&](int64_t j, int64_t jb) {
        const int64_t xa = j * kTile, xb = std::min(W, jb * kTile);
        const int64_t ca = std::max<int64_t>(xa - kHalf, 0), cb = std::min(W, xb + kHalf);
        // column x at index x + kHalf
        column_span(P.taps_g, P.taps_d, rp, ca, cb, s.sg_p.data() + kHalf, s.sd_p.data() + kHalf);
        column_span(P.taps_g, P.taps_d, rg, ca, cb, s.sg_g.data() + kHalf, s.sd_g.data() + kHalf);
        for (auto* v : {&s.sg_p, &s.sd_p, &s.sg_g, &s.sd_g}) {  // replicated borders
          double* c = v->data() + kHalf;
          for (int64_t x = xa - kHalf; x < 0; ++x) c[x] = c[0];
          for (int64_t x = W; x < xb + kHalf; ++x) c[x] = c[W - 1];
        }
        // sg + x holds column x - kHalf: row_span reads x - 4 .. x + 4
        row_span(P.taps_g, P.taps_d, s.sg_p.data(), s.sd_p.data(), xa, xb, s.amp_p.data());
        row_span(P.taps_g, P.taps_d, s.sg_g.data(), s.sd_g.data(), xa, xb, s.amp_g.data());
        grad_span(P.convention, s.amp_p.data(), s.amp_g.data(), reg, xa, xb, L);
      });
    }
    for (int k = 0; k < kSums; ++k) {  // (kConn: conn_rows, after)
      double t = 0.0;
      for (int64_t l = 0; l < kLanes; ++l) t += L.v[k][l];
      rows[y * kSums + k] = t;
    }
  }
}

// The connectivity terms of rows [y0, y1) from their levels, into each row's kConn
// sum (its own lanes, as band_rows sums the others). ap, ag: W doubles of staging.
void conn_rows(const MetricsArgs& A, const Image& pred, const Image& gt, const uint8_t* region,
               const uint8_t* level, const PhiTable* tp, const PhiTable* tg, int64_t y0, int64_t y1, double* ap,
               double* ag, double* rows) {
  const Params& P = A.params;
  const int64_t W = A.width;
  const bool u8 = pred.dtype == Dtype::kUInt8 && gt.dtype == Dtype::kUInt8;
  for (int64_t y = y0; y < y1; ++y) {
    RowLanes L;
    std::memset(&L, 0, sizeof(L));
    const uint8_t* reg = region + y * W;
    const uint8_t* lv = level + y * W;
    if (u8) {
      conn_row_u8(*tp, *tg, static_cast<const uint8_t*>(pred.data) + y * W,
                  static_cast<const uint8_t*>(gt.data) + y * W, lv, reg, W, L);
    } else {
      load_any(pred, y * W, W, ap);
      load_any(gt, y * W, W, ag);
      for (int64_t x = 0; x < W; ++x)
        if (reg[x])
          L.v[kConn][x % kLanes] +=
              conn_term(P, conn_alpha(P.convention, ap[x]), conn_alpha(P.convention, ag[x]), lv[x]);
    }
    double t = 0.0;
    for (int64_t l = 0; l < kLanes; ++l) t += L.v[kConn][l];
    rows[y * kSums + kConn] = t;
  }
}

// The smallest and largest of n bytes (compiled for x86-64-v3/v4 too: the baseline
// build's 16-byte loop was an eighth of the run scan's time, in its chunk hook).
ML_CPU_CLONES void minmax_u8(const uint8_t* __restrict d, int64_t n, uint8_t& lo, uint8_t& hi) {
  uint8_t bl = lo, bh = hi;
  for (int64_t k = 0; k < n; ++k) {
    bl = std::min(bl, d[k]);
    bh = std::max(bh, d[k]);
  }
  lo = bl;
  hi = bh;
}

template <typename T>
void minmax_rows(const T* d, int64_t n, double f, double& lo, double& hi) {
  for (int64_t i = 0; i < n; ++i) {
    const double a = double(d[i]) * f;
    lo = std::min(lo, a);
    hi = std::max(hi, a);
  }
}

// ../metrics.h p3m_first_pass over a row, from the 13 source rows r[0..12] (rows
// y - 6 .. y + 6, reflected): p3m_anti's and p3m_sym's products and sums in their
// order, vectorised over x, each rounded to float32 as scipy's output array.
ML_CPU_CLONES void p3m_column_span(const double* wg, const double* wd, const double* const* r, int64_t W,
                                   float* __restrict d, float* __restrict s) {
  const double* c = r[kP3mHalf];
  for (int64_t x = 0; x < W; ++x) {
    double ad = c[x] * wd[kP3mHalf], as = c[x] * wg[kP3mHalf];
    for (int j = 0; j < kP3mHalf; ++j) {
      ad = ad + (r[j][x] - r[kP3mTaps - 1 - j][x]) * wd[j];
      as = as + (r[j][x] + r[kP3mTaps - 1 - j][x]) * wg[j];
    }
    d[x] = float(ad);
    s[x] = float(as);
  }
}

// The second pass and p3m_gradient_term of a row, from its four reflected
// first-pass lines (e[k] + x: column x - 6): p3m_sym's and p3m_anti's products and
// sums in their order, vectorised over x (a call per pixel and line was half of
// p3m's time).
ML_CPU_CLONES void p3m_row_terms(const double* wg, const double* wd, const double* const* e, int64_t W,
                                 float* __restrict term) {
  const double* e0 = e[0];
  const double* e1 = e[1];
  const double* e2 = e[2];
  const double* e3 = e[3];
  for (int64_t x = 0; x < W; ++x) {
    double px = e0[x + kP3mHalf] * wg[kP3mHalf], py = e1[x + kP3mHalf] * wd[kP3mHalf];
    double gx = e2[x + kP3mHalf] * wg[kP3mHalf], gy = e3[x + kP3mHalf] * wd[kP3mHalf];
    for (int j = 0; j < kP3mHalf; ++j) {
      px = px + (e0[x + j] + e0[x + kP3mTaps - 1 - j]) * wg[j];
      py = py + (e1[x + j] - e1[x + kP3mTaps - 1 - j]) * wd[j];
      gx = gx + (e2[x + j] + e2[x + kP3mTaps - 1 - j]) * wg[j];
      gy = gy + (e3[x + j] - e3[x + kP3mTaps - 1 - j]) * wd[j];
    }
    term[x] = p3m_gradient_term(float(px), float(py), float(gx), float(gy));
  }
}

// P3M's gradient terms (../metrics.h p3m_first_pass, p3m_gradient_term) of the
// region pixels, added to each row's kGrad sum: the first pass of both images
// into float32 planes (as scipy's float32 output array holds it), then per row the
// second pass along the reflected row.
void p3m_gradient_rows(const MetricsArgs& A, const Image& pred, const Image& gt, const uint8_t* region,
                       double* rows) {
  const Params& P = A.params;
  const int64_t H = A.height, W = A.width, N = H * W;
  std::vector<float> dp(static_cast<size_t>(N)), sp(dp.size()), dg(dp.size()), sg(dp.size());
  // The first pass by bands of rows: each source row (reflected) read into doubles
  // once per band, then p3m_column_span over whole rows. Computed per pixel with 13
  // value() reads and reflections each, it made p3m 26x slower than the others.
  at::parallel_for(0, H, kBand, [&](int64_t y0, int64_t y1) {
    const int64_t r0 = y0 - kP3mHalf, nr = (y1 - y0) + 2 * kP3mHalf;  // rows r0 .. r0 + nr - 1
    std::vector<double> bp(static_cast<size_t>(nr * W)), bg(bp.size());
    for (int64_t i = 0; i < nr; ++i) {
      const int64_t yy = reflect_index(r0 + i, H);
      load_any(pred, yy * W, W, bp.data() + i * W);
      load_any(gt, yy * W, W, bg.data() + i * W);
    }
    const double* rp[kP3mTaps];
    const double* rg[kP3mTaps];
    for (int64_t y = y0; y < y1; ++y) {
      for (int j = 0; j < kP3mTaps; ++j) {
        rp[j] = bp.data() + (y - y0 + j) * W;
        rg[j] = bg.data() + (y - y0 + j) * W;
      }
      p3m_column_span(P.p3m_g, P.p3m_d, rp, W, &dp[y * W], &sp[y * W]);
      p3m_column_span(P.p3m_g, P.p3m_d, rg, W, &dg[y * W], &sg[y * W]);
    }
  });
  at::parallel_for(0, H, kBand, [&](int64_t y0, int64_t y1) {
    // the row's four first-pass lines, reflected: column x - 6 at index x
    std::vector<double> ext(static_cast<size_t>(4 * (W + 2 * kP3mHalf)));
    std::vector<float> term(static_cast<size_t>(W));
    const double* e[4];
    for (int j = 0; j < 4; ++j) e[j] = ext.data() + j * (W + 2 * kP3mHalf);
    for (int64_t y = y0; y < y1; ++y) {
      const float* src[4] = {&dp[y * W], &sp[y * W], &dg[y * W], &sg[y * W]};
      for (int64_t i = 0; i < W + 2 * kP3mHalf; ++i) {
        const int64_t xx = reflect_index(i - kP3mHalf, W);
        for (int j = 0; j < 4; ++j) ext[j * (W + 2 * kP3mHalf) + i] = double(src[j][xx]);
      }
      p3m_row_terms(P.p3m_g, P.p3m_d, e, W, term.data());
      double t = 0.0;
      for (int64_t x = 0; x < W; ++x) {
        if (!region[y * W + x]) continue;
        t += double(term[x]);
      }
      rows[y * kSums + kGrad] += t;
    }
  });
}

// The most thresholds any pixel's two alphas both reach (../metrics.h p3m_level).
template <typename QRow>
uint8_t max_reached(const QRow& q_row, int64_t H, int64_t W) {
  const int64_t chunks = (H + kBand - 1) / kBand;
  std::vector<uint8_t> best(static_cast<size_t>(chunks), 0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<uint8_t> q(static_cast<size_t>(W));
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t y = c * kBand; y < std::min(H, (c + 1) * kBand); ++y) {
        q_row(y, q.data());
        for (int64_t x = 0; x < W; ++x) best[c] = std::max(best[c], q[x]);
      }
  });
  return *std::max_element(best.begin(), best.end());
}

void metrics_sample(const MetricsArgs& A, int64_t b) {
  const Params& P = A.params;
  const int64_t H = A.height, W = A.width, N = H * W;
  const Image pred = sample_of(A.pred, b * N), gt = sample_of(A.gt, b * N);
  const uint8_t* region = A.region + b * N;
  const bool u8p = pred.dtype == Dtype::kUInt8, u8g = gt.dtype == Dtype::kUInt8;
  const bool grad9 = A.gradient && P.convention != kP3m;  // the 9-tap filter with its normalisation

  static thread_local LabelScratch ls;
  // 1. per chunk of rows: each image's minimum and maximum (for its normalisation)
  uint8_t* level = A.levels ? A.levels + b * N : nullptr;
  uint8_t reach_p[256], reach_g[256];  // uint8 images: each value's reach from a table
  if (A.connectivity) {
    if (!level) {
      if (ls.level.size() < size_t(N)) ls.level.resize(size_t(N));
      level = ls.level.data();
    }
    for (int v = 0; v < 256; ++v) {
      reach_p[v] = reach(P, conn_alpha(P.convention, scaled(pred, double(v))));
      reach_g[v] = reach(P, conn_alpha(P.convention, scaled(gt, double(v))));
    }
  }
  const int64_t chunks = (H + kBand - 1) / kBand;
  std::vector<double> lo(2 * chunks, INFINITY), hi(2 * chunks, -INFINITY);
  // per chunk of kBand rows, combined in chunk order below; inside the connectivity's
  // scan when there is one (a parallel loop fewer)
  auto minmax_chunks = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t k0 = c * kBand * W, k1 = std::min(H, (c + 1) * kBand) * W;
      if (grad9) {
        for (int j = 0; j < 2; ++j) {
          const Image& im = j ? gt : pred;
          double l = INFINITY, h = -INFINITY;
          switch (im.dtype) {
            case Dtype::kUInt8: {
              const uint8_t* d = static_cast<const uint8_t*>(im.data);
              uint8_t bl = 255, bh = 0;
              minmax_u8(d + k0, k1 - k0, bl, bh);
              l = double(bl) * im.factor;
              h = double(bh) * im.factor;
              break;
            }
            case Dtype::kFloat: minmax_rows(static_cast<const float*>(im.data) + k0, k1 - k0, im.factor, l, h); break;
            default: minmax_rows(static_cast<const double*>(im.data) + k0, k1 - k0, im.factor, l, h); break;
          }
          lo[2 * c + j] = l;
          hi[2 * c + j] = h;
        }
      }
    }
  };

  // 2. the bands' terms but Connectivity's, by bands claimed from a counter: with
  // connectivity, on each thread once its share of the union-finds is done (their
  // shares never cost the same), else in a parallel loop of their own. A row's sums
  // do not depend on which thread computes it.
  Normaliser np, ng;
  auto init_norms = [&] {
    if (!grad9) return;
    double lp = lo[0], hp = hi[0], lg = lo[1], hg = hi[1];
    for (int64_t c = 1; c < chunks; ++c) {
      lp = std::min(lp, lo[2 * c]);
      hp = std::max(hp, hi[2 * c]);
      lg = std::min(lg, lo[2 * c + 1]);
      hg = std::max(hg, hi[2 * c + 1]);
    }
    np.init(pred, make_norm(P.convention, lp, hp));
    ng.init(gt, make_norm(P.convention, lg, hg));
  };
  const DivPlan dv = u8p && u8g ? div_plan(P.convention, pred, gt) : DivPlan{};
  std::vector<double> rows(H * kSums, 0.0);
  std::atomic<int64_t> next_band{0};
  auto claimed_bands = [&] {
    std::unique_ptr<BandScratch> s;
    for (int64_t c; (c = next_band.fetch_add(1)) < chunks;) {
      if (!s) {
        s.reset(new BandScratch);
        for (auto* v : {&s->ap, &s->ag, &s->staging, &s->amp_p, &s->amp_g}) v->assign(W, 0.0);
        if (grad9) {
          for (auto* v : {&s->ring_p, &s->ring_g}) v->assign(kTaps * W, 0.0);
          for (auto* v : {&s->sg_p, &s->sd_p, &s->sg_g, &s->sd_g}) v->assign(W + 2 * kHalf + kTile, 0.0);
        }
      }
      band_rows(A, pred, gt, region, np, ng, dv, c * kBand, std::min(H, (c + 1) * kBand), *s, rows.data());
    }
  };

  // 3. the thresholds' largest components, then per band of rows its levels
  // (fill_levels) and their connectivity terms, written and read while in cache
  if (A.connectivity) {
    auto q_row = [&](int64_t y, uint8_t* out) {
      const int64_t k0 = y * W;
      if (u8p && u8g) {
        const uint8_t* a = static_cast<const uint8_t*>(pred.data) + k0;
        const uint8_t* c2 = static_cast<const uint8_t*>(gt.data) + k0;
        int64_t x = 0;
#if ML_METRICS_AVX512
        if (use_vbmi()) x = q_row_u8_avx512(reach_p, reach_g, a, c2, W, out);
#endif
        for (; x < W; ++x) out[x] = std::min(reach_p[a[x]], reach_g[c2[x]]);
        return;
      }
      for (int64_t x = 0; x < W; ++x) {
        const uint8_t a = u8p ? reach_p[static_cast<const uint8_t*>(pred.data)[k0 + x]]
                              : reach(P, conn_alpha(P.convention, value(pred, k0 + x)));
        const uint8_t c2 = u8g ? reach_g[static_cast<const uint8_t*>(gt.data)[k0 + x]]
                               : reach(P, conn_alpha(P.convention, value(gt, k0 + x)));
        out[x] = a < c2 ? a : c2;
      }
    };
    // the scan's chunks of rows are whole chunks of kBand rows (but the last)
    static_assert(kScanChunk % kBand == 0, "minmax chunks inside the scan's");
    const LevelPlan plan = label_levels(
        P, q_row, [&](int64_t y0, int64_t y1) { minmax_chunks(y0 / kBand, (y1 + kBand - 1) / kBand); }, init_norms,
        claimed_bands, H, W, ls);
    const uint8_t qmax = P.convention == kP3m ? max_reached(q_row, H, W) : uint8_t(kLevels - 1);
    std::unique_ptr<PhiTable> tp, tg;
    if (u8p && u8g) {
      tp.reset(new PhiTable);
      tg.reset(new PhiTable);
      tp->init(P, pred);
      tg->init(P, gt);
    }
    const LabelScratch& labels = ls;  // the calling thread's (a thread_local is not captured)
    // bands claimed from a counter (their costs differ with the region's extent)
    std::atomic<int64_t> next_level_band{0};
    at::parallel_for(0, std::min<int64_t>(chunks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
      std::vector<double> ap, ag;  // staging of non-uint8 rows
      if (!(u8p && u8g)) {
        ap.resize(W);
        ag.resize(W);
      }
      for (int64_t c; (c = next_level_band.fetch_add(1)) < chunks;) {
        const int64_t y0 = c * kBand, y1 = std::min(H, (c + 1) * kBand);
        fill_levels(plan, labels, W, y0, y1, level);
        if (qmax < kLevels - 1)  // p3m: no pixel reaches the top threshold (../metrics.h p3m_level)
          for (int64_t k = y0 * W; k < y1 * W; ++k) level[k] = p3m_level(level[k], qmax);
        conn_rows(A, pred, gt, region, level, tp.get(), tg.get(), y0, y1, ap.data(), ag.data(), rows.data());
      }
    });
  } else {
    at::parallel_for(0, chunks, 1, minmax_chunks);
    init_norms();
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) { claimed_bands(); });
  }

  if (A.gradient && P.convention == kP3m) p3m_gradient_rows(A, pred, gt, region, rows.data());

  // 4. rows in order
  double* out = A.sums + b * kSums;
  for (int k = 0; k < kSums; ++k) out[k] = 0.0;
  for (int64_t y = 0; y < H; ++y)
    for (int k = 0; k < kSums; ++k) out[k] += rows[y * kSums + k];
}

}  // namespace

void metrics_cpu(const MetricsArgs& args) {
  // A batch: whole samples per thread when they share out evenly (or there are at least
  // two per thread), the parallel loops inside a sample then running inline; else one
  // sample after the other, each parallel inside. A sample's numbers do not depend on
  // the threads either way.
  const int64_t threads = at::get_num_threads();
  if (threads > 1 && args.batch > 1 && (args.batch % threads == 0 || args.batch >= 2 * threads)) {
    at::parallel_for(0, args.batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) metrics_sample(args, b);
    });
  } else {
    for (int64_t b = 0; b < args.batch; ++b) metrics_sample(args, b);
  }
}

}  // namespace metrics
}  // namespace mattingloss
