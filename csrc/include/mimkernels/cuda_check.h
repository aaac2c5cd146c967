// Launch checks of the CUDA build: every launch is followed by MK_CHECK_LAUNCH("kernel_name"), which
// raises (RuntimeError in Python, via pybind11) with the kernel's name and CUDA's message.
#pragma once
#include <cuda_runtime.h>
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
}  // namespace mimkernels

#define MK_CHECK_LAUNCH(kernel_name) ::mimkernels::check_cuda(cudaGetLastError(), kernel_name)
