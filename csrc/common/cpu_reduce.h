// The CPU side of every chunked loss's reduction, written once: a pass over
// fixed-size chunks of each sample on the threads (cpu_parallel.h), each chunk
// summing its terms in kLanes lanes (cpu_lanes.h), and the ordered sums of the
// chunks' partials per sample and over the batch. Chunk and lane layout depend
// on the shape alone, so every sum is bitwise the same with 1 or N threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "cpu_lanes.h"
#include "cpu_parallel.h"

namespace mattingloss {
namespace {

// K sums, each in kLanes lanes: element i of a block adds to lane i % kLanes.
template <typename acc_t, int K>
struct LaneSums {
  acc_t v[K][kLanes] = {};

  void add(int k, const acc_t* x, int64_t n) { add_to_lanes(x, n, v[k]); }

  // The lanes summed in lane order, as the loss's Sums {sum 0, ..., sum K-1}.
  template <typename Sums>
  Sums total() const {
    return total<Sums>(std::make_integer_sequence<int, K>{});
  }

 private:
  template <typename Sums, int... I>
  Sums total(std::integer_sequence<int, I...>) const {
    acc_t t[K] = {};
    for (int64_t l = 0; l < kLanes; ++l)
      for (int k = 0; k < K; ++k) t[k] = t[k] + v[k][l];
    return Sums{t[I]...};
  }
};

// Runs per_chunk(scratch, sample, begin, end) -> Sums over the chunks
// [begin, end) of `chunk` elements of every sample of `elements`, each thread
// with one scratch from make_scratch(); returns the partials in chunk order
// (sample by sample).
template <typename Sums, typename MakeScratch, typename PerChunk>
std::vector<Sums> chunk_partials(int64_t batch, int64_t elements, int64_t chunk, const MakeScratch& make_scratch,
                                 const PerChunk& per_chunk) {
  const int64_t per_sample = (elements + chunk - 1) / chunk;
  std::vector<Sums> partial(batch * per_sample);
  parallel_chunks(static_cast<int64_t>(partial.size()), 1, [&](ChunkQueue& queue) {
    auto scratch = make_scratch();
    for (int64_t c; queue.next(c);) {
      const int64_t sample = c / per_sample;
      const int64_t begin = (c % per_sample) * chunk;
      partial[c] = per_chunk(scratch, sample, begin, std::min(begin + chunk, elements));
    }
  });
  return partial;
}

// Per sample, the sum of its chunks' partials in chunk order into
// sample_sums[s]; returns the sum over samples, in sample order, of
// contribution(sample_sums[s]) (which may first adjust the sample's sums).
template <typename Sums, typename Contribution>
Sums sum_samples(const std::vector<Sums>& partial, std::vector<Sums>& sample_sums, const Contribution& contribution) {
  const int64_t batch = static_cast<int64_t>(sample_sums.size());
  const int64_t per_sample = static_cast<int64_t>(partial.size()) / batch;
  Sums total{};
  for (int64_t s = 0; s < batch; ++s) {
    Sums sum{};
    for (int64_t c = 0; c < per_sample; ++c) sum = sum + partial[s * per_sample + c];
    sample_sums[s] = sum;
    total = total + contribution(sample_sums[s]);
  }
  return total;
}

// The pointwise losses' pass: chunk_partials, then sum_samples, then the
// loss's end of the pass (the same object, its policy in <loss>.h, as the
// CUDA backend's gpu::finish_per_sample): end.fix(sample) adjusts a sample's sums,
// end.contribution(sample) is what it adds to the batch total,
// end.finish(total) writes the loss and end.scale(sample, total) each
// sample's backward scale into end.scale_out.
template <typename Sums, typename End, typename MakeScratch, typename PerChunk>
void reduce_chunks(const End& end, int64_t batch, int64_t pixels, int64_t chunk, const MakeScratch& make_scratch,
                   const PerChunk& per_chunk) {
  std::vector<Sums> sample_sums(batch);
  Sums total = sum_samples(chunk_partials<Sums>(batch, pixels, chunk, make_scratch, per_chunk), sample_sums,
                           [&](Sums& s) {
                             end.fix(s);
                             return end.contribution(s);
                           });
  end.finish(total);
  for (int64_t s = 0; s < batch; ++s) end.scale_out[s] = end.scale(sample_sums[s], total);
}

}  // namespace
}  // namespace mattingloss
