// Host side of a CUDA launch with a last-block reduction
// (common/cuda_reduce.cuh), written once: the scratch for the partials,
// allocated on the prediction's device through the caching allocator, the
// stream's ticket counter, and the launch on the current stream, its status
// checked. Nothing here waits for the device.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>
#include <utility>

namespace mattingloss {

// The CUDA backend tag of run_op (common/host_tensors.h): its device guard.
struct CudaBackend {
  using Guard = c10::cuda::CUDAGuard;
};

// The ticket counter of a launch on `stream`. The kernels leave it at 0
// (cuda_reduce.cuh), so each stream keeps one, zeroed once when made: ops on
// one stream run one after another and never share it at the same time, ops on
// two streams never share one. While a CUDA graph is being captured, a counter
// made then would be zeroed only when the graph runs: the captured op gets a
// zeroed counter of its own instead (its zero-fill part of the graph).
inline at::Tensor stream_ticket(const at::Tensor& like, const c10::cuda::CUDAStream& stream) {
  if (c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    return at::zeros({1}, like.options().dtype(at::kInt));
  }
  static std::mutex mutex;
  static auto* counters = new std::map<std::pair<int, int64_t>, at::Tensor>();  // never freed: outlives CUDA teardown
  const std::lock_guard<std::mutex> lock(mutex);
  at::Tensor& counter = (*counters)[{stream.device_index(), static_cast<int64_t>(stream.id())}];
  if (!counter.defined()) counter = at::zeros({1}, like.options().dtype(at::kInt));
  return counter;
}

// launch(args, Sums* scratch, unsigned int* counter, stream) -> cudaError_t,
// with room for `sums` Sums (plain structs of acc_t) in scratch.
template <typename acc_t, typename Args, typename Sums>
void launch_with_ticket(const at::Tensor& like, int64_t sums,
                        cudaError_t (*launch)(const Args&, Sums*, unsigned int*, cudaStream_t), const Args& args) {
  static_assert(sizeof(Sums) % sizeof(acc_t) == 0, "Sums: a struct of acc_t fields");
  const auto acc = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
  at::Tensor scratch = at::empty({sums * static_cast<int64_t>(sizeof(Sums) / sizeof(acc_t))}, like.options().dtype(acc));
  const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor counter = stream_ticket(like, stream);
  C10_CUDA_CHECK(launch(args, reinterpret_cast<Sums*>(scratch.mutable_data_ptr<acc_t>()),
                        reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()), stream));
}

}  // namespace mattingloss
