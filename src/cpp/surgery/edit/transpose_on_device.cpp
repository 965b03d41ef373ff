#include "surgery/edit/transpose_on_device.hpp"

#include "caffe/common.hpp"
#include "caffe/syncedmem.hpp"
#include "surgery/base/errors.hpp"

namespace surgery {

#ifdef CPU_ONLY

bool transpose_on_device(caffe::Blob<float>*, int, int) { return false; }

#else

bool transpose_on_device(caffe::Blob<float>* weights, int rows, int cols) {
  const auto head = weights->data()->head();
  const bool on_gpu = head == caffe::SyncedMemory::HEAD_AT_GPU ||
                      (head == caffe::SyncedMemory::SYNCED && caffe::Caffe::mode() == caffe::Caffe::GPU);
  if (!on_gpu) return false;
  const size_t bytes = sizeof(float) * weights->count();
  float* scratch = nullptr;
  if (cudaMalloc(&scratch, bytes) != cudaSuccess) {
    throw Error("not enough GPU memory to transpose " + std::to_string(bytes) + " bytes of weights");
  }
  float* data = weights->mutable_gpu_data();
  const cudaError_t copied = cudaMemcpy(scratch, data, bytes, cudaMemcpyDeviceToDevice);
  if (copied != cudaSuccess) {
    cudaFree(scratch);
    throw Error(std::string("copying weights on the GPU failed: ") + cudaGetErrorString(copied));
  }
  // Row-major rows x cols is column-major cols x rows (ld = cols); its
  // transpose, row-major cols x rows, is column-major rows x cols (ld = rows).
  const float one = 1.f, zero = 0.f;
  const cublasStatus_t status =
      cublasSgeam(caffe::Caffe::cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, rows, cols, &one,
                  scratch, cols, &zero, data, rows, data, rows);
  cudaFree(scratch);
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error("cuBLAS could not transpose the weights (status " + std::to_string(status) + ")");
  }
  return true;
}

#endif

}  // namespace surgery
