// Convolution layers computed by oneDNN (Debian's libdnnl, Intel's deep
// learning kernels) instead of Caffe's im2col + GEMM: the opt-in
// ConvolutionAlgorithm::kOneDnn of surgery::Net (net.hpp).
//
// Which layers: type Convolution on the CPU, one 4-D bottom and top, any 2-D
// kernel, stride, pad, dilation, group and bias. Two ways, by the size of the
// weights:
//   - fully connected convolutions (one group, 4M weights or more: CaffeNet's
//     fc6-fc8 turned convolutions) are a product of the gathered input
//     windows by the weights (oneDNN's inner product), the weights packed
//     once into its layout;
//   - the others are oneDNN's direct convolution in its blocked layouts
//     (nChw16c), the input and output reordered on the way in and out.
// Results differ from Caffe's in rounding only (the sums run in another
// order), within 1e-5 of the output's scale (tests/cpp/test_onednn.cpp,
// tests/python/test_convolution_engines.py).
//
// Memory: each layer keeps its weights in oneDNN's layout (their size
// again), made at the first forward and again whenever they may have
// changed; its primitive's work memory and the blocked copies of its input
// and output are the net's to share. All of it is Caffe blob memory, so the
// memory limit refuses it as it refuses any blob.
//
// Threads and signals: each forward runs in libcaffe's OnednnSection (our
// recipe's patch 0020, which gives Caffe's own convolutions oneDNN's sgemm):
// as many OpenMP threads as libcaffe's own pool has (surgery.set_num_threads),
// one in a process forked after oneDNN ran (GNU OpenMP's threads do not
// survive a fork), and asynchronous signals blocked while oneDNN runs (its
// JIT GEMM kernels would let a signal's frame overwrite the heap).
#ifndef SURGERY_ONEDNN_CONVOLUTION_HPP_
#define SURGERY_ONEDNN_CONVOLUTION_HPP_

#include <cstdint>
#include <memory>
#include <vector>

#include "caffe/net.hpp"
#include "surgery/definition/geometry.hpp"
#include "surgery/kernels/convolution_layers.hpp"

namespace surgery {

class OneDnnConvolution {
 public:
  // Work memory the net's oneDNN layers share: the primitives' scratchpad,
  // the input and output in oneDNN's layouts.
  struct Shared {
    caffe::Blob<float> scratch, src, dst;
  };

  // nullptr if this cannot compute `layer` on `bottom` (see above).
  static std::unique_ptr<OneDnnConvolution> for_layer(caffe::Layer<float>& layer,
                                                      const caffe::Blob<float>& bottom,
                                                      const caffe::Blob<float>& top);
  ~OneDnnConvolution();

  // Whether bottom and top (after the layer's Reshape) have the shapes this
  // computes: 4-D, the layer's channels, Caffe's output size.
  bool fits(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
            const caffe::Blob<float>& top) const;

  // The ReLU after a layer stays Caffe's (a oneDNN post-op would round
  // NaN and -0 otherwise than Caffe's ReLU).
  static constexpr bool kFusesRelu = false;

  // top = the convolution of bottom by `layer`; false (top untouched) where
  // oneDNN has no kernel for these shapes, for Caffe to compute. The packed
  // weights are made anew for a new input shape, when `weights_generation`
  // differs from the last forward's, or when anything besides the layer
  // holds the weights' memory (a numpy view may write into it at any time).
  bool forward(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
               caffe::Blob<float>* top, uint64_t weights_generation, Shared& shared);

 private:
  struct Plan;  // oneDNN's objects for one input shape
  OneDnnConvolution() = default;
  bool plan(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
            const caffe::Blob<float>& top);
  void pack_weights(caffe::Layer<float>& layer);

  Window h_, w_;
  int group_ = 1;
  bool bias_ = false;
  bool fully_connected_ = false;
  std::unique_ptr<Plan> plan_;
  std::vector<int> planned_for_;  // the bottom shape plan_ was made for
  int planned_threads_ = 0;       // and the thread count
  bool unplannable_ = false;      // oneDNN had no kernel for planned_for_
  caffe::Blob<float> packed_;     // the weights in the primitive's layout
  bool packed_made_ = false;
  uint64_t packed_generation_ = 0;
};

using OneDnnLayers = ConvolutionLayers<OneDnnConvolution>;

}  // namespace surgery

#endif  // SURGERY_ONEDNN_CONVOLUTION_HPP_
