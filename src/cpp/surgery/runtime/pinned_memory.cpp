#include "surgery/runtime/pinned_memory.hpp"

#include <string>

#include "caffe/common.hpp"
#include "caffe/memory_budget.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/runtime/device.hpp"

namespace surgery {

std::shared_ptr<float> pinned_floats(const std::vector<int>& shape) {
  if (!gpu_available()) {
    throw Error("page-locked memory speeds up copies to a GPU, and there is none: "
                "a CUDA libcaffe and a visible device are needed");
  }
  size_t bytes = sizeof(float);
  for (const int extent : shape) {
    if (extent < 0) {
      throw ShapeError("page-locked host memory: extent " + std::to_string(extent) +
                       " is negative");
    }
    if (__builtin_mul_overflow(bytes, static_cast<size_t>(extent), &bytes)) {
      throw MemoryLimitError("page-locked host memory: a shape of more bytes than this "
                             "machine can address");
    }
  }
#ifdef CPU_ONLY
  return nullptr;  // not reached: gpu_available() is false without CUDA
#else
  guard_caffe("page-locked host memory",
              [&] { caffe::MemoryBudget::Reserve(/*device=*/false, bytes); });
  void* data = nullptr;
  // Portable: usable from every thread's CUDA context.
  const cudaError_t status = cudaHostAlloc(&data, bytes, cudaHostAllocPortable);
  if (status != cudaSuccess) {
    caffe::MemoryBudget::Release(false, bytes);
    throw MemoryLimitError("page-locked host memory of " + std::to_string(bytes) +
                           " bytes: the driver refused it (" + cudaGetErrorString(status) +
                           "); use ordinary memory, or a smaller input");
  }
  return std::shared_ptr<float>(static_cast<float*>(data), [bytes](float* p) {
    cudaFreeHost(p);
    caffe::MemoryBudget::Release(false, bytes);
  });
#endif
}

bool is_pinned(const void* data) {
#ifdef CPU_ONLY
  (void)data;
  return false;
#else
  if (!gpu_available()) return false;
  cudaPointerAttributes attributes;
  if (cudaPointerGetAttributes(&attributes, data) != cudaSuccess) {
    cudaGetLastError();  // older runtimes flag an unregistered pointer as an error
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
#endif
}

}  // namespace surgery
