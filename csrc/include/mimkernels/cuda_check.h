// Launch helpers of the CUDA build: grid sizes checked against gridDim.x's limit, and
// MK_CHECK_LAUNCH("kernel_name") after every launch, which raises (RuntimeError in Python, via
// pybind11) with the kernel's name and CUDA's message. Launches and copies go to the stream handle
// the caller passes (the current torch stream, never stream 0); Python sets the device (_native.cuda_call).
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace mimkernels {
inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("mimkernels CUDA error in ") + what + ": " + cudaGetErrorName(err) +
                             " (" + cudaGetErrorString(err) + ")");
  }
}
inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// gridDim.x of a 1-D launch of `blocks` blocks; raises (ValueError in Python) past 2^31 - 1 blocks
// instead of letting the cast wrap.
inline unsigned grid_x(int64_t blocks, const char* kernel_name) {
  if (blocks > INT32_MAX) {
    throw std::invalid_argument(std::string("mimkernels: ") + kernel_name + " would need " + std::to_string(blocks) +
                                " blocks, more than gridDim.x allows (2^31 - 1)");
  }
  return static_cast<unsigned>(blocks);
}

// gridDim.x for one thread per item: ceil(items / threads) blocks.
inline unsigned grid_for(int64_t items, int threads, const char* kernel_name) {
  return grid_x((items + threads - 1) / threads, kernel_name);
}
}  // namespace mimkernels

#define MK_CHECK_LAUNCH(kernel_name) ::mimkernels::check_cuda(cudaGetLastError(), kernel_name)
