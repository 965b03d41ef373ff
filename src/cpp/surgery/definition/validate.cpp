#include "surgery/definition/validate.hpp"

#include <climits>
#include <map>
#include <set>
#include <sstream>

#include "caffe/layer_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/name_text.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/definition/parameter_checks.hpp"

namespace surgery {
namespace {

std::string where(const std::string& source, const caffe::LayerParameter& layer) {
  return layer_text(source, layer);
}

// Names reach Python as str and messages as text: refuse what cannot be.
void check_name(const std::string& name, const std::string& what, const std::string& context) {
  if (!is_clean_name(name)) {
    throw NetDefinitionError(context + ": " + what + " '" + quoted_name(name) +
                             "' is not valid UTF-8 or holds a NUL byte; rename it");
  }
}

void check_names(const caffe::LayerParameter& layer, const std::string& source) {
  const std::string context = where(source, layer);
  check_name(layer.name(), "the layer name", context);
  check_name(layer.type(), "the layer type", context);
  for (const auto& bottom : layer.bottom()) check_name(bottom, "bottom", context);
  for (const auto& top : layer.top()) check_name(top, "top", context);
  for (const auto& param : layer.param()) check_name(param.name(), "param name", context);
}

void check_registered(const caffe::LayerParameter& layer, const std::string& source) {
  const auto& registry = caffe::LayerRegistry<float>::Registry();
  if (registry.count(layer.type()) == 0) {
    throw NetDefinitionError(where(source, layer) +
                             ": this layer type is not built into this libcaffe");
  }
}

void check_input_shapes(const caffe::LayerParameter& layer, const std::string& source) {
  if (layer.type() != "Input") return;
  const auto& shapes = layer.input_param().shape();
  if (shapes.empty() ||
      (shapes.size() != 1 && shapes.size() != layer.top_size())) {
    throw NetDefinitionError(where(source, layer) +
                             ": needs one input shape, or one per top");
  }
  for (const auto& shape : shapes) {
    for (auto dim : shape.dim()) {
      if (dim <= 0 || dim > INT32_MAX) {
        std::ostringstream out;
        out << where(source, layer) << ": input dimension " << dim
            << " is not a positive 32-bit size";
        throw ShapeError(out.str());
      }
    }
    const auto count = element_count(shape.dim());
    if (!count || *count > INT32_MAX) {
      throw ShapeError(where(source, layer) + ": an input of shape " + shape_text(shape.dim()) +
                       " is more than a Caffe blob can hold (2^31 - 1 values)");
    }
  }
}

// Whether Caffe gives the layer param blobs (weights, biases, statistics):
// the types of the allow-list (layer_policy.cpp) whose LayerSetUp creates
// them. Scale and Bias take theirs from a second bottom when they have one.
bool holds_parameters(const caffe::LayerParameter& layer) {
  static const std::set<std::string> kAlways = {
      "Convolution", "Deconvolution", "InnerProduct", "Embed", "BatchNorm", "BatchNormKyle",
      "Normalize", "PReLU", "Parameter", "RNN", "LSTM"};
  const std::string& type = layer.type();
  if (kAlways.count(type)) return true;
  if (type == "Scale") return layer.bottom_size() == 1 || layer.scale_param().bias_term();
  if (type == "Bias") return layer.bottom_size() == 1;
  return layer.blobs_size() > 0;
}

// Caffe copies weights by layer name (CopyTrainedLayersFrom, as does
// plan_weight_copy): of two layers of one net that share a name, one would
// take both layers' weights and the other keep its random start, and a
// saved file would reload swapped. `net` is one phase's layers, so a name
// repeated across phases (train and test data layers) is not a clash.
void check_parameter_names(const caffe::NetParameter& net, const std::string& source) {
  std::map<std::string, int> first;  // name -> index of its first layer with parameters
  for (int i = 0; i < net.layer_size(); ++i) {
    const auto& layer = net.layer(i);
    if (!holds_parameters(layer)) continue;
    const auto [it, fresh] = first.emplace(layer.name(), i);
    if (fresh) continue;
    const auto& other = net.layer(it->second);
    throw NetDefinitionError(
        "'" + source + "': layers " + std::to_string(it->second) + " (" + quoted_name(other.type()) +
        ") and " + std::to_string(i) + " (" + quoted_name(layer.type()) + ") are both named '" +
        quoted_name(layer.name()) + "' and both hold weights; Caffe copies weights by layer "
        "name, so one would get the other's: rename one of them");
  }
}

}  // namespace

void validate_definition(const caffe::NetParameter& net, const std::string& source,
                         const LoadPolicy& policy) {
  check_name(net.name(), "the net name", "'" + source + "'");
  // Each blob produced so far, with its number of axes where known.
  std::map<std::string, int> available;
  for (const auto& layer : net.layer()) {
    check_names(layer, source);
    check_layer_policy(layer, source, policy);
    check_registered(layer, source);
    check_input_shapes(layer, source);
    std::vector<int> bottom_axes;
    for (const auto& bottom : layer.bottom()) {
      const auto found = available.find(bottom);
      if (found == available.end()) {
        throw NetDefinitionError(where(source, layer) + ": bottom '" + bottom +
                                 "' is not produced by any earlier layer");
      }
      bottom_axes.push_back(found->second);
    }
    const std::vector<int> top_axes = check_layer_parameters(layer, source, bottom_axes);
    for (int i = 0; i < layer.top_size(); ++i) {
      const auto& top = layer.top(i);
      const bool in_place = i < layer.bottom_size() && layer.bottom(i) == top;
      if (!in_place && available.count(top) != 0) {
        throw NetDefinitionError(where(source, layer) + ": top '" + top +
                                 "' is already produced by an earlier layer");
      }
      available[top] = top_axes[i];
    }
  }
  check_parameter_names(net, source);
}

}  // namespace surgery
