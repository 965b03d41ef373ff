#include "surgery/layers/dilated_pooling.hpp"

#include <algorithm>

#include "surgery/base/errors.hpp"
#include "surgery/layers/dilated_pooling_cell.hpp"

namespace surgery {
namespace {

int64_t pick(const google::protobuf::RepeatedField<uint32_t>& values, int axis, int64_t fallback) {
  if (values.empty()) return fallback;
  return values.Get(values.size() == 1 ? 0 : axis);
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

int64_t extent(const PoolingAxis& a) { return a.dilation * (a.kernel - 1) + 1; }

}  // namespace

PoolingAxis pooling_axis(const caffe::LayerParameter& layer, int axis) {
  const auto& p = layer.pooling_param();
  PoolingAxis a;
  const bool h = axis == 0;
  a.kernel = h ? (p.has_kernel_h() ? p.kernel_h() : p.kernel_size())
               : (p.has_kernel_w() ? p.kernel_w() : p.kernel_size());
  a.stride = h ? (p.has_stride_h() ? p.stride_h() : p.stride())
               : (p.has_stride_w() ? p.stride_w() : p.stride());
  a.pad = h ? (p.has_pad_h() ? p.pad_h() : p.pad()) : (p.has_pad_w() ? p.pad_w() : p.pad());
  a.ceil = p.ceil_mode();
  if (layer.type() == kDilatedPoolingType) {
    a.dilation = pick(layer.convolution_param().dilation(), axis, 1);
  }
  return a;
}

int64_t pooled_size(int64_t in, const PoolingAxis& a) {
  if (in < 1 || a.stride < 1) return 0;
  const int64_t span = in + 2 * a.pad - extent(a);
  int64_t out = (a.ceil ? ceil_div(span, a.stride) : floor_div(span, a.stride)) + 1;
  if (a.pad > 0 && (out - 1) * a.stride >= in + a.pad) --out;
  return std::max<int64_t>(out, 0);
}

int64_t first_empty_window(int64_t in, const PoolingAxis& a) {
  const int64_t out = pooled_size(in, a);
  if (out < 1) return -1;
  // A window starting in the left padding reaches the input at its first tap
  // at or past 0, which lies below the dilation: only an input narrower than
  // the dilation can fall between two taps. The starts' remainders modulo
  // the dilation repeat with a period, so if the first in + 1 such windows
  // all reach the input (in + 1 remainders below `in`: two are equal) the
  // later ones repeat them.
  if (in < a.dilation) {
    const int64_t left = std::min(out, ceil_div(a.pad, a.stride));  // windows with start < 0
    for (int64_t o = 0; o < std::min(left, in + 1); ++o) {
      const int64_t start = o * a.stride - a.pad;
      const int64_t before = ceil_div(-start, a.dilation);  // taps left of the input
      if (before > a.kernel - 1 || start + before * a.dilation >= in) return o;
    }
  }
  // Caffe's rule above keeps a padded last window starting inside the input;
  // unpadded, rounding up can start it past the end.
  if ((out - 1) * a.stride - a.pad >= in) return out - 1;
  return -1;
}

void DilatedPoolingLayer::LayerSetUp(const std::vector<caffe::Blob<float>*>&,
                                     const std::vector<caffe::Blob<float>*>&) {
  // The parameters were checked on load (parameter_checks.cpp).
  h_ = pooling_axis(this->layer_param_, 0);
  w_ = pooling_axis(this->layer_param_, 1);
}

void DilatedPoolingLayer::Reshape(const std::vector<caffe::Blob<float>*>& bottom,
                                  const std::vector<caffe::Blob<float>*>& top) {
  const auto& in = *bottom[0];
  if (in.num_axes() != 4) {
    throw ShapeError("layer '" + this->layer_param_.name() +
                     "' (DilatedPooling) takes a 4-axis (N, C, H, W) bottom");
  }
  const int64_t out_h = pooled_size(in.height(), h_), out_w = pooled_size(in.width(), w_);
  if (out_h < 1 || out_w < 1) {
    throw ShapeError("layer '" + this->layer_param_.name() + "' (DilatedPooling): an input of " +
                     std::to_string(in.height()) + " x " + std::to_string(in.width()) +
                     " is smaller than its dilated window; give a larger input");
  }
  refuse_empty_windows(in.height(), h_, "row", "rows");
  refuse_empty_windows(in.width(), w_, "column", "columns");
  top[0]->Reshape({in.num(), in.channels(), static_cast<int>(out_h), static_cast<int>(out_w)});
}

void DilatedPoolingLayer::refuse_empty_windows(int64_t in, const PoolingAxis& a,
                                               const char* cell, const char* cells) const {
  const int64_t empty = first_empty_window(in, a);
  if (empty < 0) return;
  const int64_t start = empty * a.stride - a.pad;
  std::string text = "layer '" + this->layer_param_.name() + "' (DilatedPooling): on an input of " +
                     std::to_string(in) + " " + cells + ", output " + cell + " " +
                     std::to_string(empty) + " pools a window from " + std::to_string(start) +
                     " whose taps, " + std::to_string(a.dilation) + " apart, all miss the input";
  text += start < 0 ? "; give an input of at least " + std::to_string(a.dilation) + " " + cells +
                          " (the dilation), or less pad"
                    : "; set ceil_mode: false, or a stride of at most " +
                          std::to_string(extent(a)) + " (the dilated window)";
  throw ShapeError(text);
}

void DilatedPoolingLayer::Forward_cpu(const std::vector<caffe::Blob<float>*>& bottom,
                                      const std::vector<caffe::Blob<float>*>& top) {
  const int H = bottom[0]->height(), W = bottom[0]->width();
  const int OH = top[0]->height(), OW = top[0]->width();
  const int planes = bottom[0]->num() * bottom[0]->channels();
  const bool max = this->layer_param_.pooling_param().pool() == caffe::PoolingParameter::MAX;
  const float* in = bottom[0]->cpu_data();
  float* out = top[0]->mutable_cpu_data();
  for (int plane = 0; plane < planes; ++plane, in += H * W, out += OH * OW) {
    for (int oh = 0; oh < OH; ++oh) {
      for (int ow = 0; ow < OW; ++ow) {
        out[oh * OW + ow] = dilated_pooling_cell(in, H, W, h_, w_, oh, ow, max);
      }
    }
  }
}

void DilatedPoolingLayer::Backward_cpu(const std::vector<caffe::Blob<float>*>&,
                                       const std::vector<bool>&,
                                       const std::vector<caffe::Blob<float>*>&) {
  throw Error("layer '" + this->layer_param_.name() +
              "' (DilatedPooling) is for inference: it has no backward pass");
}

}  // namespace surgery
