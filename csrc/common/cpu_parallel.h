// How the CPU kernels spread their chunks over threads. Each thread owns a
// contiguous share of the chunks, as at::parallel_for would give it, and runs
// it in order (a multi-pass kernel finds what its previous pass wrote in the
// same core's cache); a thread that has finished its share then takes chunks
// from the others' (work stealing), so a call no longer waits for a thread that
// runs slower (another process on its core, a busy sibling hyperthread). What
// a chunk computes depends on the chunk alone, never on the thread that runs
// it: results stay bitwise the same.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace mattingloss {

// The chunks not yet taken: one cursor per thread over its share.
class ChunkCursors {
 public:
  ChunkCursors(int64_t chunks, int64_t threads) : threads_(threads), cursor_(new Cursor[threads]) {
    for (int64_t t = 0; t < threads; ++t) {
      cursor_[t].next.store(chunks * t / threads, std::memory_order_relaxed);
      cursor_[t].end = chunks * (t + 1) / threads;
    }
  }

  // The next chunk for thread `self`: from its own share, else from the others'.
  bool next(int64_t self, int64_t& chunk) {
    for (int64_t k = 0; k < threads_; ++k) {
      Cursor& c = cursor_[(self + k) % threads_];
      if (c.next.load(std::memory_order_relaxed) >= c.end) continue;
      chunk = c.next.fetch_add(1, std::memory_order_relaxed);
      if (chunk < c.end) return true;
    }
    return false;
  }

 private:
  struct alignas(64) Cursor {  // one cache line each: no false sharing between threads
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  const int64_t threads_;
  std::unique_ptr<Cursor[]> cursor_;
};

// What a thread's loop sees: `for (int64_t chunk; queue.next(chunk);) ...`.
class ChunkQueue {
 public:
  ChunkQueue(ChunkCursors& cursors, int64_t self) : cursors_(cursors), self_(self) {}
  bool next(int64_t& chunk) { return cursors_.next(self_, chunk); }

 private:
  ChunkCursors& cursors_;
  const int64_t self_;
};

// per_thread(queue) on each of the threads: it builds its own scratch, then runs
// `for (int64_t chunk; queue.next(chunk);) ...`. min_chunks: the fewest chunks
// worth a thread of their own (small work stays on fewer threads).
template <typename PerThread>
void parallel_chunks(int64_t chunks, int64_t min_chunks, const PerThread& per_thread) {
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), (chunks + min_chunks - 1) / min_chunks);
  if (threads < 1) return;
  ChunkCursors cursors(chunks, threads);
  // One index per thread; called once with all of them where it runs inline
  // (inside another parallel region): that thread then takes every chunk.
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t) {
    ChunkQueue queue(cursors, begin);
    per_thread(queue);
  });
}

}  // namespace mattingloss
