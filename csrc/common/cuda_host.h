// Host side of a CUDA launch with a last-block reduction
// (common/cuda_reduce.cuh), written once: the scratch for the partials and
// the zeroed ticket counter, allocated on the prediction's device through the
// caching allocator, and the launch on the current stream, its status checked.
// Nothing here waits for the device.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <type_traits>

namespace mattingloss {

// What a CUDA backend of a templated host op (<loss>_host.h) gives besides
// its run<acc_t>.
struct CudaBackend {
  using Guard = c10::cuda::CUDAGuard;
};

// launch(args, Sums* scratch, unsigned int* counter, stream) -> cudaError_t,
// with room for `sums` Sums (plain structs of acc_t) in scratch.
template <typename acc_t, typename Args, typename Sums>
void launch_with_ticket(const at::Tensor& like, int64_t sums,
                        cudaError_t (*launch)(const Args&, Sums*, unsigned int*, cudaStream_t), const Args& args) {
  static_assert(sizeof(Sums) % sizeof(acc_t) == 0, "Sums: a struct of acc_t fields");
  const auto acc = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
  at::Tensor scratch = at::empty({sums * static_cast<int64_t>(sizeof(Sums) / sizeof(acc_t))}, like.options().dtype(acc));
  at::Tensor counter = at::zeros({1}, like.options().dtype(at::kInt));
  C10_CUDA_CHECK(launch(args, reinterpret_cast<Sums*>(scratch.mutable_data_ptr<acc_t>()),
                        reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()),
                        c10::cuda::getCurrentCUDAStream()));
}

}  // namespace mattingloss
