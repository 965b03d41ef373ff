#include "surgery/definition/channel_gates.hpp"

#include <map>
#include <utility>
#include <vector>

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
// gate may do between its pooling and its Scale, at any input size. One
// bottom each, so the layers after two poolings never meet: the walks from
// all poolings together visit each layer at most once.
bool per_channel(const caffe::LayerParameter& layer) {
  if (layer.bottom_size() != 1) return false;
  const std::string& type = layer.type();
  if (type == "InnerProduct" || type == "Reshape" || type == "Flatten") return true;
  if (type == "Convolution") return one_by_one(layer);
  return keeps_shape(type);
}

bool global_pooling(const caffe::LayerParameter& layer) {
  return layer.type() == "Pooling" && layer.pooling_param().global_pooling();
}

// The net as values: each top is a new version of its blob (an in-place
// layer's too), read by the layers up to the blob's next version.
struct Versions {
  std::vector<std::string> blob;                          // per version
  std::vector<std::vector<std::pair<int, int>>> readers;  // per version: (layer, bottom)
  std::vector<std::vector<int>> tops;                     // per layer: the versions it makes
  // Per version: some path from it reaches a gate's Scale without passing
  // another global pooling (which answers for itself).
  std::vector<bool> reaches_gate;
};

bool passes_to_gate(const caffe::NetParameter& net, const Versions& v, int layer) {
  if (global_pooling(net.layer(layer))) return false;
  for (const int top : v.tops[layer]) {
    if (v.reaches_gate[top]) return true;
  }
  return false;
}

Versions versions_of(const caffe::NetParameter& net) {
  Versions v;
  v.tops.resize(net.layer_size());
  std::map<std::string, int> current;
  for (int i = 0; i < net.layer_size(); ++i) {
    const auto& layer = net.layer(i);
    for (int b = 0; b < layer.bottom_size(); ++b) {
      const auto it = current.find(layer.bottom(b));
      if (it != current.end()) v.readers[it->second].push_back({i, b});
    }
    for (const auto& top : layer.top()) {
      const int version = static_cast<int>(v.blob.size());
      current[top] = version;
      v.tops[i].push_back(version);
      v.blob.push_back(top);
      v.readers.emplace_back();
    }
  }
  v.reaches_gate.assign(v.blob.size(), false);
  for (int i = net.layer_size() - 1; i >= 0; --i) {  // a version's readers come after it
    for (const int version : v.tops[i]) {
      for (const auto& [j, b] : v.readers[version]) {
        if (is_gate_bottom(net.layer(j), b) || passes_to_gate(net, v, j)) {
          v.reaches_gate[version] = true;
        }
      }
    }
  }
  return v;
}

// What the paths from one pooling reach through per-channel layers, first
// seen of each kind.
struct Reach {
  std::string gate;             // a gate's Scale
  std::string other;            // the first other layer, or a net output
  bool spatial_gate = false;    // `other` leads on to a gate
  std::set<std::string> layers; // the per-channel layers on the way
};

Reach walk(const caffe::NetParameter& net, const Versions& v, int pooling) {
  Reach reach;
  std::vector<int> pending = v.tops[pooling];
  while (!pending.empty()) {
    const int version = pending.back();
    pending.pop_back();
    if (v.readers[version].empty() && reach.other.empty()) {
      reach.other = "the net output '" + v.blob[version] + "'";
    }
    for (const auto& [j, b] : v.readers[version]) {
      const auto& layer = net.layer(j);
      if (is_gate_bottom(layer, b)) {
        if (reach.gate.empty()) reach.gate = layer.name();
      } else if (per_channel(layer)) {
        reach.layers.insert(layer.name());
        pending.insert(pending.end(), v.tops[j].begin(), v.tops[j].end());
      } else {
        if (reach.other.empty()) reach.other = "layer '" + layer.name() + "' (" + layer.type() + ")";
        reach.spatial_gate = reach.spatial_gate || passes_to_gate(net, v, j);
      }
    }
  }
  return reach;
}

}  // namespace

bool keeps_shape(const std::string& type) { return kShapeKeeping.count(type) > 0; }

bool is_gate_bottom(const caffe::LayerParameter& layer, int index) {
  return layer.type() == "Scale" && layer.bottom_size() == 2 && index == 1;
}

ChannelGates find_channel_gates(const caffe::NetParameter& net) {
  ChannelGates gates;
  const Versions versions = versions_of(net);
  for (int i = 0; i < net.layer_size(); ++i) {
    const auto& layer = net.layer(i);
    if (!global_pooling(layer)) continue;
    const Reach reach = walk(net, versions, i);
    if (reach.gate.empty() && !reach.spatial_gate) continue;  // the classifier's
    if (!reach.gate.empty() && reach.other.empty()) {
      gates.poolings.insert(layer.name());
      gates.layers.insert(layer.name());
      gates.layers.insert(reach.layers.begin(), reach.layers.end());
      continue;
    }
    const std::string gate =
        reach.gate.empty() ? "a channel gate past " + reach.other
                           : "the channel gate of Scale layer '" + reach.gate + "' and also " +
                                 reach.other;
    throw NetDefinitionError(
        "global pooling '" + layer.name() + "' feeds " + gate +
        ": cannot tell a squeeze-and-excitation gate (kept global, it takes any input size) "
        "from the classifier's pooling (made a fixed window). Give each its own pooling "
        "layer, and let a gate reach its Scale through per-channel layers only "
        "(InnerProduct, 1x1 Convolution, Reshape, activations)");
  }
  return gates;
}

}  // namespace surgery
