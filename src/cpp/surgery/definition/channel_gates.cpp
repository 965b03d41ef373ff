#include "surgery/definition/channel_gates.hpp"

#include <utility>

#include "surgery/base/errors.hpp"
#include "surgery/definition/geometry.hpp"

namespace surgery {
namespace {

const std::set<std::string> kShapeKeeping = {
    "ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log",
    "Dropout", "BatchNorm", "Scale", "Bias", "Softmax", "Split", "ReLU6", "HardSigmoid",
    "HardSwish", "Swish", "Clip", "Threshold"};

bool one_by_one(const caffe::LayerParameter& layer) {
  for (int axis : {0, 1}) {
    const Window w = conv_window(layer.convolution_param(), axis);
    if (w.kernel != 1 || w.pad != 0) return false;
  }
  return true;
}

// Computes each channel of a one-cell blob from the channels alone: what a
// gate may do between its pooling and its Scale, at any input size.
bool per_channel(const caffe::LayerParameter& layer) {
  const std::string& type = layer.type();
  if (type == "InnerProduct" || type == "Reshape" || type == "Flatten") return true;
  if (type == "Convolution") return one_by_one(layer);
  return keeps_shape(type) && layer.bottom_size() == 1;
}

// What the paths from one pooling's top reach, first seen of each kind.
struct Reach {
  std::string gate;          // a gate's Scale, reached through per-channel layers only
  std::string spatial_gate;  // a gate's Scale, reached past another layer
  std::string other;         // the first other layer, or a net output
  std::set<std::string> layers;  // the per-channel layers on the way to `gate`
};

void walk(const caffe::NetParameter& net, const std::string& blob, int after, bool clean,
          Reach* reach, std::set<std::pair<std::string, bool>>* seen) {
  bool read = false;  // by a layer that is not in place (an in-place one writes `blob` again)
  for (int i = after + 1; i < net.layer_size(); ++i) {
    const auto& layer = net.layer(i);
    for (int b = 0; b < layer.bottom_size(); ++b) {
      if (layer.bottom(b) != blob) continue;
      if (is_gate_bottom(layer, b)) {
        std::string& gate = clean ? reach->gate : reach->spatial_gate;
        if (gate.empty()) gate = layer.name();
        read = true;
        break;
      }
      const bool passes = per_channel(layer);
      if (!passes && reach->other.empty()) {
        reach->other = "layer '" + layer.name() + "' (" + layer.type() + ")";
      }
      if (passes && clean) reach->layers.insert(layer.name());
      for (const auto& top : layer.top()) {
        if (top == blob) continue;
        read = true;
        if (seen->insert({top, clean && passes}).second) {
          walk(net, top, i, clean && passes, reach, seen);
        }
      }
      break;
    }
  }
  if (!read && reach->other.empty()) reach->other = "the net output '" + blob + "'";
}

}  // namespace

bool keeps_shape(const std::string& type) { return kShapeKeeping.count(type) > 0; }

bool is_gate_bottom(const caffe::LayerParameter& layer, int index) {
  return layer.type() == "Scale" && layer.bottom_size() == 2 && index == 1;
}

ChannelGates find_channel_gates(const caffe::NetParameter& net) {
  ChannelGates gates;
  for (int i = 0; i < net.layer_size(); ++i) {
    const auto& layer = net.layer(i);
    if (layer.type() != "Pooling" || !layer.pooling_param().global_pooling() ||
        layer.top_size() != 1) {
      continue;
    }
    Reach reach;
    std::set<std::pair<std::string, bool>> seen;
    walk(net, layer.top(0), i, true, &reach, &seen);
    if (reach.gate.empty() && reach.spatial_gate.empty()) continue;  // the classifier's
    if (!reach.gate.empty() && reach.other.empty()) {
      gates.poolings.insert(layer.name());
      gates.layers.insert(layer.name());
      gates.layers.insert(reach.layers.begin(), reach.layers.end());
      continue;
    }
    const std::string& gate = reach.gate.empty() ? reach.spatial_gate : reach.gate;
    throw NetDefinitionError(
        "global pooling '" + layer.name() + "' feeds the channel gate of Scale layer '" + gate +
        "' and also " + reach.other +
        ": cannot tell a squeeze-and-excitation gate (kept global, it takes any input size) "
        "from the classifier's pooling (made a fixed window). Give each its own pooling "
        "layer, and let a gate reach its Scale through per-channel layers only "
        "(InnerProduct, 1x1 Convolution, Reshape, activations)");
  }
  return gates;
}

}  // namespace surgery
