// DilatedPooling: Caffe's MAX/AVE Pooling whose window taps are `dilation`
// input cells apart, as Convolution's are. Stock Caffe has no dilated pooling;
// rarefy.hpp needs it for every Pooling layer after the one whose stride it
// reduces (filter rarefaction). Registered in Caffe's layer registry by
// library_layers.hpp, so a net definition names it like any other type:
//
//   layer { name: "pool5" type: "DilatedPooling" bottom: "conv5" top: "pool5"
//           pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 0 }
//           convolution_param { dilation: 2 } }
//
// caffe.proto has no dilation field in PoolingParameter, so the dilation is
// read from convolution_param.dilation (one value, or one per axis: h, w),
// the field Convolution uses; convolution_param may hold nothing else
// (parameter_checks.cpp). Everything else is pooling_param, read as Caffe's
// Pooling reads it, with one difference: `pad` counts input cells, as
// Convolution's does (a window starts at out * stride - pad).
//
// Sizes follow Caffe's Pooling with the dilated extent d * (k - 1) + 1 in
// place of k: out = ceil((in + 2 pad - extent) / stride) + 1 (floor with
// ceil_mode: false), one less where that window would start in the padding
// only. AVE divides by the taps inside [-pad, in + pad), as Caffe's Pooling
// divides by the window clipped to the padded input. A window with no tap
// inside the input has no meaning (Caffe's Pooling gives -FLT_MAX or 0
// there): an input size that makes one is refused at reshape (ShapeError).
// Whether one exists depends on the input's size, not on the parameters
// alone: a padded window can fall between two taps only on an input
// narrower than the dilation, and an unpadded last window rounded up
// (ceil_mode) can start past an input's end when the stride exceeds the
// dilated window.
//
// Inference only: the backward pass raises (in GPU mode too: Caffe's
// Backward_gpu falls back to Backward_cpu). Both forwards compute each cell
// with dilated_pooling_cell.hpp; the GPU one (dilated_pooling.cu, built
// only against a CUDA libcaffe) keeps bottom and top on the device, where
// Caffe's fallback to Forward_cpu would copy both through the host.
#ifndef SURGERY_DILATED_POOLING_HPP_
#define SURGERY_DILATED_POOLING_HPP_

#include <cstdint>
#include <vector>

#include "caffe/layer.hpp"

namespace surgery {

constexpr const char* kDilatedPoolingType = "DilatedPooling";

// Kernel, stride, pad and dilation of one spatial axis (0 = h, 1 = w).
struct PoolingAxis {
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1;
  bool ceil = true;
};

// Read from a DilatedPooling (or Pooling: dilation 1) layer's parameters.
PoolingAxis pooling_axis(const caffe::LayerParameter& layer, int axis);

// The output size along one axis for an input of `in` cells; 0 if none.
int64_t pooled_size(int64_t in, const PoolingAxis& a);

// The first output cell along one axis whose window has no tap inside an
// input of `in` cells, or -1 if every window has one.
int64_t first_empty_window(int64_t in, const PoolingAxis& a);

class DilatedPoolingLayer : public caffe::Layer<float> {
 public:
  explicit DilatedPoolingLayer(const caffe::LayerParameter& param) : caffe::Layer<float>(param) {}
  const char* type() const override { return kDilatedPoolingType; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }
  void LayerSetUp(const std::vector<caffe::Blob<float>*>& bottom,
                  const std::vector<caffe::Blob<float>*>& top) override;
  void Reshape(const std::vector<caffe::Blob<float>*>& bottom,
               const std::vector<caffe::Blob<float>*>& top) override;

 protected:
  void Forward_cpu(const std::vector<caffe::Blob<float>*>& bottom,
                   const std::vector<caffe::Blob<float>*>& top) override;
#ifndef CPU_ONLY
  void Forward_gpu(const std::vector<caffe::Blob<float>*>& bottom,
                   const std::vector<caffe::Blob<float>*>& top) override;
#endif
  void Backward_cpu(const std::vector<caffe::Blob<float>*>& top,
                    const std::vector<bool>& propagate_down,
                    const std::vector<caffe::Blob<float>*>& bottom) override;

 private:
  // ShapeError naming the layer, the cell and what to change if an input of
  // `in` cells along this axis leaves a window without a tap.
  void refuse_empty_windows(int64_t in, const PoolingAxis& a, const char* cell,
                            const char* cells) const;

  PoolingAxis h_, w_;
};

}  // namespace surgery

#endif  // SURGERY_DILATED_POOLING_HPP_
