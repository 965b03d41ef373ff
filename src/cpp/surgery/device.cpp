#include "surgery/device.hpp"

#include "caffe/common.hpp"
#include "caffe/syncedmem.hpp"
#include "surgery/errors.hpp"

namespace surgery {

bool gpu_available() {
#ifdef CPU_ONLY
  return false;
#else
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
#endif
}

void set_mode(const std::string& mode) {
  if (mode == "cpu") {
    caffe::Caffe::set_mode(caffe::Caffe::CPU);
  } else if (mode == "gpu") {
#ifdef CPU_ONLY
    throw Error("this libcaffe was built without CUDA: build the cuda variant "
                "(CAFFE_SURGERY_VARIANT=cuda) to use the GPU");
#else
    if (!gpu_available()) throw Error("no CUDA device is visible");
    caffe::Caffe::set_mode(caffe::Caffe::GPU);
#endif
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
#endif
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
