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

// Opt-in TF32: lets cuBLAS run this thread's float GEMMs (Convolution and
// InnerProduct) on tensor cores with 10-bit mantissa inputs, accumulating in
// float. Off by default; results then differ from float math by about 1e-3
// relative. set_tf32(true) without a GPU raises surgery::Error. Kept across
// set_device, which gives the thread a new cuBLAS handle.
void set_tf32(bool on);
bool tf32();

// Copies blob.count() floats from host memory into the blob, where the next
// forward reads them: in GPU mode straight to the device (one copy, where
// writing the host side would cost a second one when Caffe uploads it).
void upload(caffe::Blob<float>& blob, const float* host);

// Copies the blob's data into host memory (blob.count() floats) from
// wherever it is current, leaving the blob's head where it is: in GPU mode
// an output comes back in one copy, without a pinned host buffer.
void download(const caffe::Blob<float>& blob, float* host);

// The head of a blob's SyncedMemory: "uninitialized", "cpu", "gpu" or
// "synced". Reading it moves nothing.
std::string head_of(const caffe::Blob<float>& blob);

}  // namespace surgery

#endif  // SURGERY_DEVICE_HPP_
