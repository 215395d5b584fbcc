// How the CPU kernels spread their chunks over threads: every thread takes the
// next chunk from a shared counter (dynamic scheduling), so a thread that runs
// slower (another process on its core, a busy sibling hyperthread) hands its
// share to the others instead of being waited for; at::parallel_for's static
// split made every call wait for its slowest thread. What a chunk computes
// depends on the chunk alone, never on the thread: results stay bitwise the same.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace mattingloss {

// The chunks not yet taken, shared by the threads.
class ChunkQueue {
 public:
  explicit ChunkQueue(int64_t chunks) : chunks_(chunks) {}

  // Takes the next chunk into `chunk`; false when none is left.
  bool next(int64_t& chunk) {
    chunk = next_.fetch_add(1, std::memory_order_relaxed);
    return chunk < chunks_;
  }

 private:
  std::atomic<int64_t> next_{0};
  const int64_t chunks_;
};

// per_thread(queue) on each of the threads: it builds its own scratch, then runs
// `for (int64_t chunk; queue.next(chunk);) ...`. min_chunks: the fewest chunks
// worth a thread of their own (small work stays on fewer threads).
template <typename PerThread>
void parallel_chunks(int64_t chunks, int64_t min_chunks, const PerThread& per_thread) {
  ChunkQueue queue(chunks);
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), (chunks + min_chunks - 1) / min_chunks);
  if (threads < 1) return;
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) { per_thread(queue); });
}

}  // namespace mattingloss
