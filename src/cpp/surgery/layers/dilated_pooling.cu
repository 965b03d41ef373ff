// DilatedPooling's forward on the GPU: one thread per output cell, each
// computing the CPU forward's cell (dilated_pooling_cell.hpp), launched as
// Caffe's own pooling_layer.cu launches its kernels (same grid, default
// stream). Compiled only against a CUDA libcaffe (CMakeLists.txt).
#include "surgery/layers/dilated_pooling.hpp"

#include <cstdint>
#include <vector>

#include "caffe/util/device_alternate.hpp"  // CUDA_KERNEL_LOOP, CAFFE_GET_BLOCKS (after glog)
#include "surgery/layers/dilated_pooling_cell.hpp"

namespace surgery {
namespace {

// `cells` = N * C * OH * OW, the top's count, in its (N, C, OH, OW) order.
__global__ void dilated_pooling_forward(int cells, const float* bottom, int H, int W, int OH,
                                        int OW, PoolingAxis h, PoolingAxis w, bool max,
                                        float* top) {
  CUDA_KERNEL_LOOP(index, cells) {
    const int plane = index / (OH * OW), cell = index % (OH * OW);
    top[index] = dilated_pooling_cell(bottom + static_cast<int64_t>(plane) * H * W, H, W, h, w,
                                      cell / OW, cell % OW, max);
  }
}

}  // namespace

void DilatedPoolingLayer::Forward_gpu(const std::vector<caffe::Blob<float>*>& bottom,
                                      const std::vector<caffe::Blob<float>*>& top) {
  const int cells = top[0]->count();
  const bool max = this->layer_param_.pooling_param().pool() == caffe::PoolingParameter::MAX;
  dilated_pooling_forward<<<caffe::CAFFE_GET_BLOCKS(cells), caffe::CAFFE_CUDA_NUM_THREADS>>>(
      cells, bottom[0]->gpu_data(), bottom[0]->height(), bottom[0]->width(), top[0]->height(),
      top[0]->width(), h_, w_, max, top[0]->mutable_gpu_data());
  CUDA_POST_KERNEL_CHECK;
}

}  // namespace surgery
