#include "surgery/pinned_memory.hpp"

#include <limits>
#include <string>

#include "caffe/common.hpp"
#include "caffe/memory_budget.hpp"
#include "surgery/device.hpp"
#include "surgery/errors.hpp"

namespace surgery {

std::shared_ptr<float> pinned_floats(size_t count) {
  if (!gpu_available()) {
    throw Error("page-locked memory speeds up copies to a GPU, and there is none: "
                "a CUDA libcaffe and a visible device are needed");
  }
#ifdef CPU_ONLY
  (void)count;
  return nullptr;  // not reached: gpu_available() is false without CUDA
#else
  if (count > std::numeric_limits<size_t>::max() / sizeof(float)) {
    throw MemoryLimitError("page-locked host memory for " + std::to_string(count) +
                           " floats is more than this machine can address");
  }
  const size_t bytes = count * sizeof(float);
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
