// Where Caffe computes (CPU or a CUDA device) and where a blob's data lives.
#ifndef SURGERY_DEVICE_HPP_
#define SURGERY_DEVICE_HPP_

#include <string>

#include "caffe/blob.hpp"

namespace surgery {

// True when this libcaffe was built with CUDA and a device is visible.
bool gpu_available();

// Caffe's mode is per thread (caffe::Caffe is thread-local): these set it
// for the calling thread. set_mode("gpu") without a GPU build or device,
// or an unknown name, raises surgery::Error.
void set_mode(const std::string& mode);
std::string mode();
void set_device(int device);

// The head of a blob's SyncedMemory: "uninitialized", "cpu", "gpu" or
// "synced". Reading it moves nothing.
std::string head_of(const caffe::Blob<float>& blob);

}  // namespace surgery

#endif  // SURGERY_DEVICE_HPP_
