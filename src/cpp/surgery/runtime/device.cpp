#include "surgery/runtime/device.hpp"

#include <algorithm>

#include "caffe/common.hpp"
#include "caffe/syncedmem.hpp"
#include "surgery/base/errors.hpp"

namespace surgery {

namespace {

// Per thread, as Caffe's cuBLAS handle is.
thread_local bool tf32_on = false;

// Why the GPU cannot be used here, or "" when it can.
std::string no_gpu_reason() {
#ifdef CPU_ONLY
  return "this libcaffe was built without CUDA: build the cuda variant "
         "(CAFFE_SURGERY_VARIANT=cuda) to use the GPU";
#else
  int count = 0;
  const bool visible = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  return visible ? "" : "no CUDA device is visible";
#endif
}

#ifndef CPU_ONLY
void apply_tf32(bool on) {
  cublasHandle_t handle = caffe::Caffe::cublas_handle();
  if (!handle) throw Error("cuBLAS is not available on this thread (no GPU driver or device)");
  const cublasStatus_t status =
      cublasSetMathMode(handle, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error("cuBLAS refused the math mode (status " + std::to_string(status) + ")");
  }
}
#endif

}  // namespace

bool gpu_available() { return no_gpu_reason().empty(); }

void set_mode(const std::string& mode) {
  if (mode == "cpu") {
    caffe::Caffe::set_mode(caffe::Caffe::CPU);
  } else if (mode == "gpu") {
    const std::string why = no_gpu_reason();
    if (!why.empty()) throw Error(why);
    caffe::Caffe::set_mode(caffe::Caffe::GPU);
  } else {
    throw Error("mode must be 'cpu' or 'gpu', not '" + mode + "'");
  }
}

std::string mode() { return caffe::Caffe::mode() == caffe::Caffe::GPU ? "gpu" : "cpu"; }

void set_device(int device) {
#ifdef CPU_ONLY
  throw Error("this libcaffe was built without CUDA: there is no device " +
              std::to_string(device));
#else
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    throw Error("no CUDA device " + std::to_string(device) + " (" + std::to_string(count) +
                " visible)");
  }
  guard_caffe("selecting a CUDA device", [&] { caffe::Caffe::SetDevice(device); });
  if (tf32_on) apply_tf32(true);
#endif
}

void set_tf32(bool on) {
  const std::string why = no_gpu_reason();
  if (!why.empty()) {
    if (on) throw Error("TF32 is a GPU setting: " + why);
    tf32_on = false;  // off is off, with or without a GPU
    return;
  }
#ifndef CPU_ONLY
  apply_tf32(on);  // throws before the choice is recorded
  tf32_on = on;
#endif
}

bool tf32() { return tf32_on; }

void upload(caffe::Blob<float>& blob, const float* host) {
#ifndef CPU_ONLY
  if (caffe::Caffe::mode() == caffe::Caffe::GPU) {
    const cudaError_t status = cudaMemcpy(blob.mutable_gpu_data(), host,
                                          sizeof(float) * blob.count(), cudaMemcpyHostToDevice);
    if (status != cudaSuccess) {
      throw Error(std::string("copying an input to the GPU failed: ") + cudaGetErrorString(status));
    }
    return;
  }
#endif
  std::copy(host, host + blob.count(), blob.mutable_cpu_data());
}

void download(const caffe::Blob<float>& blob, float* host) {
  if (blob.count() == 0) return;
#ifndef CPU_ONLY
  if (blob.data()->head() == caffe::SyncedMemory::HEAD_AT_GPU) {
    const cudaError_t status = cudaMemcpy(host, blob.gpu_data(), sizeof(float) * blob.count(),
                                          cudaMemcpyDeviceToHost);
    if (status != cudaSuccess) {
      throw Error(std::string("copying a result from the GPU failed: ") +
                  cudaGetErrorString(status));
    }
    return;
  }
#endif
  std::copy(blob.cpu_data(), blob.cpu_data() + blob.count(), host);
}

std::string head_of(const caffe::Blob<float>& blob) {
  const auto& memory = blob.data();
  if (!memory) return "uninitialized";
  switch (memory->head()) {
    case caffe::SyncedMemory::UNINITIALIZED: return "uninitialized";
    case caffe::SyncedMemory::HEAD_AT_CPU: return "cpu";
    case caffe::SyncedMemory::HEAD_AT_GPU: return "gpu";
    case caffe::SyncedMemory::SYNCED: return "synced";
  }
  return "uninitialized";
}

}  // namespace surgery
