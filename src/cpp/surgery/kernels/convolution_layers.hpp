// The convolutions of one net that an engine computes instead of Caffe, by
// layer index, each checked once and kept between forwards: the opt-in
// ConvolutionAlgorithm values of surgery::Net (net.hpp).
//
// An Engine (winograd_convolution.hpp, onednn_convolution.hpp) has
//   static std::unique_ptr<Engine> for_layer(layer, bottom, top)
//       nullptr if it cannot compute this layer;
//   bool fits(layer, bottom, top) const
//       whether it computes it on these shapes (after the layer's Reshape);
//   bool forward(layer, bottom, top, weights_generation, Engine::Shared&
//                [, relu])
//       top = the layer's output (through Caffe's ReLU if `relu`); false if
//       the caller should run Caffe;
//   static constexpr bool kFusesRelu  whether forward takes `relu`;
//   struct Shared  work memory the net's layers share.
#ifndef SURGERY_CONVOLUTION_LAYERS_HPP_
#define SURGERY_CONVOLUTION_LAYERS_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/weak_ptr.hpp>

#include "caffe/common.hpp"
#include "caffe/net.hpp"

namespace surgery {

// Whether `layer` is a Convolution that the engines may take on these
// blobs: not in place, along axis 1, a 4-D bottom and top, a group that
// divides both channel counts, weights of Caffe's shape (outputs, channels
// / group, kernel height, kernel width) and, with bias_term, one bias value
// per output. Each engine then checks what it computes itself.
bool is_plain_convolution(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                          const caffe::Blob<float>& top);

// Whether layer `index` + 1 of `net` is a ReLU an engine may fuse into layer
// `index`: in place on that layer's one top, negative_slope 0.
bool fusable_relu(const caffe::Net<float>& net, int index);

template <typename Engine>
class ConvolutionLayers {
 public:
  // Runs layer `index` of `net` if the engine computes it in the current
  // Caffe mode; false if the caller should run it through Caffe. With
  // `relu` (the next layer is a ReLU the engine may fuse, fusable_relu()),
  // an engine that fuses ReLU applies it; relu_fused() says whether it did.
  bool forward(const caffe::Net<float>& net, int index, uint64_t weights_generation,
               bool relu = false) {
    ran_.resize(net.layers().size());
    fused_.resize(net.layers().size());
    fused_[index] = relu && Engine::kFusesRelu;
    ran_[index] = run(net, index, weights_generation, fused_[index]);
    fused_[index] = fused_[index] && ran_[index];
    return ran_[index];
  }
  // Whether the last forward() of layer `index` ran it; and applied the
  // ReLU after it, whose own forward the caller then skips.
  bool ran(int index) const { return index < static_cast<int>(ran_.size()) && ran_[index]; }
  bool relu_fused(int index) const {
    return index < static_cast<int>(fused_.size()) && fused_[index];
  }
  // Drops layer `index`'s engine (and its copies of the weights); the layer
  // is checked anew if run again.
  void forget(int index) {
    if (index < static_cast<int>(layers_.size())) layers_[index] = Entry{};
    if (index < static_cast<int>(ran_.size())) ran_[index] = 0;
    if (index < static_cast<int>(fused_.size())) fused_[index] = 0;
  }
  // Drops every engine's copies and the shared work memory.
  void clear() {
    layers_.clear();
    ran_.clear();
    fused_.clear();
    shared_.reset();
  }

 private:
  bool run(const caffe::Net<float>& net, int index, uint64_t weights_generation, bool relu) {
    if (caffe::Caffe::mode() != caffe::Caffe::CPU) return false;
    const auto& bottoms = net.bottom_vecs()[index];
    const auto& tops = net.top_vecs()[index];
    const auto& layer = net.layers()[index];
    layers_.resize(net.layers().size());
    Entry& entry = layers_[index];
    if (entry.layer.lock() != layer) {
      // A layer not seen before (surgery replaces layers): checked once, with
      // the shapes its Reshape gives, and remembered either way.
      entry.layer = layer;
      entry.engine.reset();
      if (bottoms.size() == 1 && tops.size() == 1 &&
          std::string(layer->type()) == "Convolution") {
        layer->Reshape(bottoms, tops);
        entry.engine = Engine::for_layer(*layer, *bottoms[0], *tops[0]);
      }
    }
    if (!entry.engine) return false;
    // As Layer::Forward does before computing: the shapes follow the bottom.
    layer->Reshape(bottoms, tops);
    if (!entry.engine->fits(*layer, *bottoms[0], *tops[0])) return false;
    if (!shared_) shared_ = std::make_unique<typename Engine::Shared>();
    if constexpr (Engine::kFusesRelu) {
      return entry.engine->forward(*layer, *bottoms[0], tops[0], weights_generation, *shared_,
                                   relu);
    } else {
      return entry.engine->forward(*layer, *bottoms[0], tops[0], weights_generation, *shared_);
    }
  }

  struct Entry {
    // The layer checked: a replaced layer is checked anew (a freed layer's
    // address may be reused, a weak pointer's not).
    boost::weak_ptr<caffe::Layer<float>> layer;
    std::unique_ptr<Engine> engine;  // null: not one it computes
  };
  std::vector<Entry> layers_;
  std::vector<char> ran_, fused_;
  std::unique_ptr<typename Engine::Shared> shared_;
};

}  // namespace surgery

#endif  // SURGERY_CONVOLUTION_LAYERS_HPP_
