// Convolution layers computed with Winograd's minimal filtering
// (winograd_transform.hpp) instead of Caffe's im2col + GEMM: the opt-in
// ConvolutionAlgorithm::kWinograd of surgery::Net (net.hpp).
//
// Which layers: type Convolution on the CPU, one 4-D bottom and top, a
// square kernel at the same stride both ways, dilation 1, any pad, group
// and bias, where the kernel is 3x3, 5x5, 6x6 or 7x7 at stride 1, or at
// stride s one whose ceil(k / s) is (stride_phases.hpp: 11x11 at stride 4
// is 3x3 on 16 times the channels). CaffeNet at 451x451: conv1, conv2
// (5x5), conv3-5 (3x3) and fc6 turned convolution (6x6), 2.8 to 4 times
// fewer multiplications each. Everything else (1x1 layers, GPU mode) runs
// through Caffe.
//
// Results differ from Caffe's in rounding only: the sums are taken in
// another order and through the transforms. Against the exact sum, within
// 4e-5 of the output's scale at any channel count
// (tests/python/test_winograd.py); Caffe's own path within 3e-6. Each output is computed by the same code wherever it lies
// (border tiles read zeros for the padding), and with the same partial
// sums whatever the thread count, so results are repeatable.
//
// Memory: each layer keeps its weights transformed (alpha^2 / r^2 times
// their size: 4x for 3x3, 2.6x for 5x5, 1.4x for 6x6, alpha^2 s^2 / k^2
// for a strided kernel; fc6 of CaffeNet 205 MB), made at the first forward
// and again whenever they may have changed; plus at most 64 MiB of work
// buffers, which the net's layers share, and a strided layer's input laid
// out as phases (about the input's size). All of it is Caffe blob memory,
// so the memory limit refuses it as it refuses any blob.
#ifndef SURGERY_WINOGRAD_CONVOLUTION_HPP_
#define SURGERY_WINOGRAD_CONVOLUTION_HPP_

#include <cstdint>
#include <memory>
#include <vector>

#include "caffe/net.hpp"
#include "surgery/kernels/convolution_layers.hpp"
#include "surgery/kernels/stride_phases.hpp"
#include "surgery/kernels/winograd_transform.hpp"

namespace surgery {

class WinogradConvolution {
 public:
  // nullptr if this cannot compute `layer` on `bottom` (see above).
  static std::unique_ptr<WinogradConvolution> for_layer(caffe::Layer<float>& layer,
                                                         const caffe::Blob<float>& bottom,
                                                         const caffe::Blob<float>& top);

  // Whether bottom and top (after the layer's Reshape) have the shapes this
  // computes: 4-D, the layer's channels, the layer's output size.
  bool fits(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
            const caffe::Blob<float>& top) const;

  // Work buffers the net's Winograd layers share, grown as needed:
  // transformed inputs, products.
  struct Shared {
    caffe::Blob<float> phases, v, m;  // phases: a strided layer's input (stride_phases.hpp)
  };

  // Whether forward() can apply the in-place ReLU that follows the layer.
  static constexpr bool kFusesRelu = true;

  // top = the convolution of bottom by `layer` (the one for_layer was given),
  // through Caffe's ReLU if `relu`; always true. The transformed weights are made anew when
  // `weights_generation` differs from the last forward's, or when anything
  // besides the layer holds the weights' memory (a numpy view may write into
  // it at any time).
  bool forward(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
               caffe::Blob<float>* top, uint64_t weights_generation, Shared& buffers,
               bool relu);

 private:
  WinogradConvolution() = default;
  // Whether this layer's transformed weights go in panels (see
  // winograd::transform_weights) on this CPU: large enough to stream from
  // memory, and output channels by whole panels.
  bool panels_pay(caffe::Layer<float>& layer) const;
  void transform_weights(caffe::Layer<float>& layer, bool panels);
  winograd::Phases phases(const caffe::Blob<float>& bottom, const caffe::Blob<float>& top) const;

  const WinogradTransform* t_ = nullptr;
  int64_t kernel_ = 0, stride_ = 1;  // the layer's; t_ is for ceil(kernel_ / stride_)
  int64_t pad_h_ = 0, pad_w_ = 0;
  int group_ = 1;
  bool bias_ = false;
  // [group][alpha^2][out channels of the group][in channels of the group,
  // times stride^2 phases], or in panels of out channels (u_panels_)
  caffe::Blob<float> u_;
  bool u_made_ = false;
  bool u_panels_ = false;
  uint64_t u_generation_ = 0;
};

// The Winograd convolutions of one net, by layer index, made on first use.
using WinogradLayers = ConvolutionLayers<WinogradConvolution>;

}  // namespace surgery

#endif  // SURGERY_WINOGRAD_CONVOLUTION_HPP_
