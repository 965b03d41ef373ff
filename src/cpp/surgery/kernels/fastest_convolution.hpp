// ConvolutionAlgorithm::kFastest of surgery::Net (net.hpp): each
// convolution layer by whichever of Caffe's path, Winograd
// (winograd_convolution.hpp) and oneDNN (onednn_convolution.hpp) took the
// least time on it, measured when the layer first runs on an input shape:
// each engine that computes the layer runs once to make its copies, then
// three times timed, the engines in turns; the fastest of each engine's
// three counts. The first forward of a shape thus costs about ten times
// the layers' time (0.6 s for CaffeNet at 451x451). The others' copies
// of the weights are dropped; an engine whose copies the memory limit
// refuses is not a candidate. Results are within the chosen engines'
// bounds of Caffe's (Winograd's 4e-5 of each layer's output scale is the
// widest), and which engine a layer gets may differ between processes where
// two are close: the choice is a measurement.
#ifndef SURGERY_FASTEST_CONVOLUTION_HPP_
#define SURGERY_FASTEST_CONVOLUTION_HPP_

#include <cstdint>
#include <vector>

#include "caffe/net.hpp"
#include "surgery/kernels/onednn_convolution.hpp"
#include "surgery/kernels/winograd_convolution.hpp"

namespace surgery {

class FastestLayers {
 public:
  // Runs layer `index` of `net` by its fastest engine, choosing it first if
  // this input shape is new; false if that is Caffe's path, for the caller
  // to run (the layer's output is then not yet computed). `relu`: as
  // ConvolutionLayers::forward (the engines are timed without it).
  bool forward(const caffe::Net<float>& net, int index, uint64_t weights_generation,
               bool relu = false);
  // Whether the last forward() of layer `index` ran it by Winograd or oneDNN;
  // and applied the ReLU after it.
  bool ran(int index) const { return winograd_.ran(index) || onednn_.ran(index); }
  bool relu_fused(int index) const { return winograd_.relu_fused(index); }
  void clear() {
    winograd_.clear();
    onednn_.clear();
    choices_.clear();
  }

 private:
  enum class Engine { kCaffe, kWinograd, kOneDnn };
  struct Choice {
    std::vector<int> shape;  // the layer's bottom shape it was made for
    Engine engine = Engine::kCaffe;
  };
  bool run(Engine engine, const caffe::Net<float>& net, int index, uint64_t weights_generation,
           bool relu = false);
  Engine choose(const caffe::Net<float>& net, int index, uint64_t weights_generation);

  WinogradLayers winograd_;
  OneDnnLayers onednn_;
  std::vector<Choice> choices_;
};

}  // namespace surgery

#endif  // SURGERY_FASTEST_CONVOLUTION_HPP_
