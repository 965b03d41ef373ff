// Squeeze-and-excitation gates: a global pooling whose output only scales
// the channels of another blob. Such a gate is defined for any input size
// (it pools whatever it is given down to one value per channel), so surgery
// leaves it global; only the poolings on the way to the classifier become
// fixed windows.
#ifndef SURGERY_CHANNEL_GATES_HPP_
#define SURGERY_CHANNEL_GATES_HPP_

#include <set>
#include <string>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// Layer types whose top has their (first) bottom's shape.
bool keeps_shape(const std::string& type);

// True when bottom `index` of `layer` is a per-channel gate: the second
// bottom of a two-bottom Scale (the first is the blob it scales).
bool is_gate_bottom(const caffe::LayerParameter& layer, int index);

struct ChannelGates {
  std::set<std::string> poolings;  // global poolings that only feed gates
  std::set<std::string> layers;    // the layers from such a pooling to its gates, it included
};

// Sorts the global poolings of `net` (one phase's layers): one whose every
// path reaches a gate through per-channel layers (InnerProduct, 1 x 1
// Convolution, Reshape, Flatten, activations, one-bottom Scale...) is a
// gate; one that reaches no gate is the classifier's. One that reaches a
// gate and also something else (another layer type, a net output), or a
// gate past a layer that is not per-channel (and not another global
// pooling, which is sorted on its own), cannot be sorted: NetDefinitionError
// naming the pooling, the gate and the other layer. Linear in the layers.
ChannelGates find_channel_gates(const caffe::NetParameter& net);

}  // namespace surgery

#endif  // SURGERY_CHANNEL_GATES_HPP_
