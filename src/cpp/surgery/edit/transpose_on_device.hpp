// Transposing weights where they live when that is a CUDA device, so that
// surgery on a GPU-resident net never copies its weights to the host.
#ifndef SURGERY_TRANSPOSE_ON_DEVICE_HPP_
#define SURGERY_TRANSPOSE_ON_DEVICE_HPP_

#include "caffe/blob.hpp"

namespace surgery {

// If the blob's data is current on the GPU (head "gpu" or "synced" in GPU
// mode), replaces its rows x cols row-major matrix by the cols x rows
// transpose on the device and returns true; otherwise (a CPU build, host
// data) does nothing and returns false.
bool transpose_on_device(caffe::Blob<float>* weights, int rows, int cols);

}  // namespace surgery

#endif  // SURGERY_TRANSPOSE_ON_DEVICE_HPP_
