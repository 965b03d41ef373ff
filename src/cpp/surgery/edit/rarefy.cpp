#include "surgery/edit/rarefy.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>

#include "caffe/layer_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/definition/parameter_checks.hpp"
#include "surgery/layers/dilated_pooling.hpp"
#include "surgery/layers/library_layers.hpp"

namespace surgery {
namespace {

using Pair = std::array<int64_t, 2>;  // (h, w)
constexpr Pair kOne = {1, 1};

Pair times(const Pair& a, const Pair& b) { return {a[0] * b[0], a[1] * b[1]}; }

// Layers that compute each output cell from the same cell of their bottoms
// alone: a finer map passes through them unchanged.
const std::set<std::string> kCellwise = {
    "ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log",
    "Dropout", "BatchNorm", "Split", "ReLU6", "HardSigmoid", "HardSwish", "Threshold",
    "Eltwise", "Silence"};

bool pools_globally(const caffe::LayerParameter& layer) {
  return layer.type() == "Pooling" && layer.pooling_param().global_pooling();
}

bool strided_type(const caffe::LayerParameter& layer) {
  return (layer.type() == "Convolution" || layer.type() == "Pooling" ||
          layer.type() == kDilatedPoolingType) &&
         !pools_globally(layer);
}

int64_t pick(const google::protobuf::RepeatedField<uint32_t>& values, int axis, int64_t fallback) {
  if (values.empty()) return fallback;
  return values.Get(values.size() == 1 ? 0 : axis);
}

// Stride, pad and dilation of a Convolution, Pooling or DilatedPooling.
struct Window {
  Pair stride = kOne, pad = {0, 0}, dilation = kOne;
};

Window window_of(const caffe::LayerParameter& layer) {
  Window w;
  for (int axis = 0; axis < 2; ++axis) {
    if (layer.type() == "Convolution") {
      const auto& p = layer.convolution_param();
      const bool h = axis == 0;
      w.stride[axis] = (h ? p.has_stride_h() : p.has_stride_w())
                           ? (h ? p.stride_h() : p.stride_w())
                           : pick(p.stride(), axis, 1);
      w.pad[axis] = (h ? p.has_pad_h() : p.has_pad_w()) ? (h ? p.pad_h() : p.pad_w())
                                                         : pick(p.pad(), axis, 0);
      w.dilation[axis] = pick(p.dilation(), axis, 1);
    } else {
      const PoolingAxis a = pooling_axis(layer, axis);
      w.stride[axis] = a.stride;
      w.pad[axis] = a.pad;
      w.dilation[axis] = a.dilation;
    }
  }
  return w;
}

// A repeated per-axis field: one value if both agree, none for the default.
void set_pair(google::protobuf::RepeatedField<uint32_t>* field, const Pair& v, int64_t fallback) {
  field->Clear();
  if (v[0] == v[1] && v[0] == fallback) return;
  field->Add(static_cast<uint32_t>(v[0]));
  if (v[1] != v[0]) field->Add(static_cast<uint32_t>(v[1]));
}

void set_window(caffe::LayerParameter* layer, const Window& w) {
  if (layer->type() == "Convolution") {
    auto* p = layer->mutable_convolution_param();
    if (p->has_stride_h() || p->has_stride_w()) {
      p->set_stride_h(static_cast<uint32_t>(w.stride[0]));
      p->set_stride_w(static_cast<uint32_t>(w.stride[1]));
    } else {
      set_pair(p->mutable_stride(), w.stride, 1);
    }
    if (p->has_pad_h() || p->has_pad_w()) {
      p->set_pad_h(static_cast<uint32_t>(w.pad[0]));
      p->set_pad_w(static_cast<uint32_t>(w.pad[1]));
    } else {
      set_pair(p->mutable_pad(), w.pad, 0);
    }
    set_pair(p->mutable_dilation(), w.dilation, 1);
    return;
  }
  auto* p = layer->mutable_pooling_param();
  p->clear_stride();
  p->clear_stride_h();
  p->clear_stride_w();
  p->clear_pad();
  p->clear_pad_h();
  p->clear_pad_w();
  if (w.stride[0] == w.stride[1]) {
    if (w.stride[0] != 1) p->set_stride(static_cast<uint32_t>(w.stride[0]));
  } else {
    p->set_stride_h(static_cast<uint32_t>(w.stride[0]));
    p->set_stride_w(static_cast<uint32_t>(w.stride[1]));
  }
  if (w.pad[0] == w.pad[1]) {
    if (w.pad[0] != 0) p->set_pad(static_cast<uint32_t>(w.pad[0]));
  } else {
    p->set_pad_h(static_cast<uint32_t>(w.pad[0]));
    p->set_pad_w(static_cast<uint32_t>(w.pad[1]));
  }
  if (w.dilation != kOne) {
    layer->set_type(kDilatedPoolingType);
    set_pair(layer->mutable_convolution_param()->mutable_dilation(), w.dilation, 1);
  }
}

[[noreturn]] void cannot(const caffe::LayerParameter& layer, const std::string& why) {
  throw NetDefinitionError("layer '" + layer.name() + "' (" + layer.type() +
                           ") cannot be rarefied: " + why);
}

// Whether a layer after a reduced one passes a finer map through as it is.
void check_cellwise(const caffe::LayerParameter& layer) {
  const std::string& type = layer.type();
  if (kCellwise.count(type)) return;
  if (pools_globally(layer)) {
    cannot(layer, "it pools globally, so on a finer map it would average other cells; "
                  "fully_convolutionalize first (it fixes the window)");
  }
  if (type == "InnerProduct") {
    cannot(layer, "it is not convolutional; fully_convolutionalize first");
  }
  if (type == "LRN" && layer.lrn_param().norm_region() == caffe::LRNParameter::ACROSS_CHANNELS) {
    return;
  }
  if ((type == "Scale" || type == "Bias") && layer.bottom_size() == 1) return;
  if (type == "Softmax" && layer.softmax_param().axis() == 1) return;
  if (type == "Concat" && !layer.concat_param().has_concat_dim() &&
      layer.concat_param().axis() == 1) {
    return;
  }
  if (type == "Slice" && !layer.slice_param().has_slice_dim() && layer.slice_param().axis() == 1) {
    return;
  }
  cannot(layer, "it follows a layer whose stride is reduced, and only Convolution, Pooling "
                "and layers that compute each cell from that cell alone can be rewritten there");
}

struct Strided {
  const caffe::LayerParameter* layer;
  int64_t stride;
};

// The strided layers along one axis, from the output back.
std::vector<Strided> strided_from_output(const caffe::NetParameter& layers, int axis) {
  std::vector<Strided> out;
  for (int i = layers.layer_size() - 1; i >= 0; --i) {
    const auto& layer = layers.layer(i);
    if (!strided_type(layer)) continue;
    const int64_t s = window_of(layer).stride[axis];
    if (s > 1) out.push_back({&layer, s});
  }
  return out;
}

std::vector<int64_t> factors_along(const std::vector<Strided>& strided) {
  std::vector<int64_t> out;
  int64_t product = 1;
  for (const auto& s : strided) {
    for (int64_t r = 2; r <= s.stride; ++r) {
      if (s.stride % r == 0 && product * r <= INT32_MAX) out.push_back(product * r);
    }
    product *= s.stride;
    if (product > INT32_MAX) break;
  }
  return out;
}

std::vector<int64_t> common_factors(const caffe::NetParameter& layers) {
  const auto h = factors_along(strided_from_output(layers, 0));
  const auto w = factors_along(strided_from_output(layers, 1));
  std::vector<int64_t> both;
  std::set_intersection(h.begin(), h.end(), w.begin(), w.end(), std::back_inserter(both));
  return both;
}

[[noreturn]] void refuse_factor(const Net& net, const caffe::NetParameter& layers, int factor,
                                const std::string& why) {
  std::string text = "cannot rarefy '" + net.source() + "' by " + std::to_string(factor) + ": " +
                     why + "; the strides from the output back are";
  const auto strided = strided_from_output(layers, 0);
  if (strided.empty()) text += " none";
  for (size_t i = 0; i < strided.size(); ++i) {
    text += (i ? ", " : " ") + std::to_string(strided[i].stride) + " (" +
            strided[i].layer->name() + ")";
  }
  const auto factors = common_factors(layers);
  text += factors.empty() ? "; it takes no factor" : "; it takes";
  for (size_t i = 0; i < factors.size(); ++i) {
    text += (i ? ", " : " ") + std::to_string(factors[i]);
  }
  throw ShapeError(text);
}

// How much each reduced layer's stride shrinks, per axis.
std::map<std::string, Pair> reductions(const Net& net, const caffe::NetParameter& layers,
                                       int factor) {
  std::map<std::string, Pair> out;
  for (int axis = 0; axis < 2; ++axis) {
    int64_t remaining = factor;
    for (const auto& s : strided_from_output(layers, axis)) {
      if (remaining == 1) break;
      int64_t r = 0;
      if (remaining % s.stride == 0) {
        r = s.stride;  // the whole stride
      } else if (s.stride % remaining == 0) {
        r = remaining;  // part of it, and done
      } else {
        refuse_factor(net, layers, factor,
                      "the stride " + std::to_string(s.stride) + " of layer '" + s.layer->name() +
                          "' and the " + std::to_string(remaining) + " left to remove do not "
                          "divide one another");
      }
      out.emplace(s.layer->name(), kOne).first->second[axis] = r;
      remaining /= r;
    }
    if (remaining > 1) refuse_factor(net, layers, factor, "the strides multiply to less");
  }
  return out;
}

struct Change {
  caffe::LayerParameter before;  // as in the phase-filtered definition
  Window window;                 // after
  RarefiedLayer report;
};

// Each layer's new window, and the check that every layer after a reduced
// one can be rewritten; nothing is changed yet.
std::vector<Change> plan(const Net& net, const caffe::NetParameter& layers, int factor) {
  std::set<std::string> names;
  for (const auto& layer : layers.layer()) {
    if (!names.insert(layer.name()).second) {
      throw NetDefinitionError("two layers are named '" + layer.name() +
                               "': surgery edits layers by name; rename one of them");
    }
  }
  const auto reduced = reductions(net, layers, factor);
  std::map<std::string, Pair> fine;  // each blob's density against the original (1: as before)
  std::vector<Change> changes;
  for (const auto& layer : layers.layer()) {
    Pair in = kOne;
    for (int i = 0; i < layer.bottom_size(); ++i) {
      const auto it = fine.find(layer.bottom(i));
      const Pair f = it == fine.end() ? kOne : it->second;
      if (i == 0) in = f;
      if (f != in) {
        cannot(layer, "it joins blobs that rarefaction makes of different densities ('" +
                          layer.bottom(0) + "' and '" + layer.bottom(i) +
                          "'); a layer on one branch only would need reducing");
      }
    }
    const auto r_it = reduced.find(layer.name());
    const Pair r = r_it == reduced.end() ? kOne : r_it->second;
    for (const auto& top : layer.top()) fine[top] = times(in, r);
    if (in == kOne && r == kOne) continue;
    if (!strided_type(layer)) {
      check_cellwise(layer);
      continue;
    }
    const auto& shape = net.blob(layer.bottom(0)).shape();
    if (shape.size() != 4 ||
        (layer.type() == "Convolution" && layer.convolution_param().axis() != 1)) {
      cannot(layer, "only 2-D windows over (N, C, H, W) blobs are rewritten");
    }
    Change change;
    change.before = layer;
    const Window old = window_of(layer);
    Window& w = change.window;
    for (int axis = 0; axis < 2; ++axis) {
      w.stride[axis] = old.stride[axis] / r[axis];
      w.pad[axis] = old.pad[axis] * in[axis];
      w.dilation[axis] = old.dilation[axis] * in[axis];
    }
    auto& report = change.report;
    report.name = layer.name();
    report.old_type = layer.type();
    report.new_type = layer.type() == "Pooling" && in != kOne ? kDilatedPoolingType : layer.type();
    report.old_stride_h = static_cast<int>(old.stride[0]);
    report.old_stride_w = static_cast<int>(old.stride[1]);
    report.stride_h = static_cast<int>(w.stride[0]);
    report.stride_w = static_cast<int>(w.stride[1]);
    report.dilation_h = static_cast<int>(w.dilation[0]);
    report.dilation_w = static_cast<int>(w.dilation[1]);
    report.reduced = r != kOne;
    changes.push_back(change);
  }
  return changes;
}

caffe::LayerParameter* find_in_definition(caffe::NetParameter* definition,
                                          const std::string& name) {
  caffe::LayerParameter* found = nullptr;
  for (auto& layer : *definition->mutable_layer()) {
    if (layer.name() != name) continue;
    if (found) {
      throw NetDefinitionError("layer '" + name + "' appears more than once in the definition "
                               "(in other phases too): surgery edits layers by name; rename the "
                               "others");
    }
    found = &layer;
  }
  if (!found) throw Error("the definition has no layer '" + name + "'");
  return found;
}

}  // namespace

std::vector<int> rarefy_factors(const Net& net) {
  const auto factors = common_factors(net.filtered_definition());
  return std::vector<int>(factors.begin(), factors.end());
}

RarefyReport rarefy(Net& net, int factor) {
  RarefyReport report;
  report.factor = factor;
  const caffe::NetParameter layers = net.filtered_definition();
  if (factor < 1) refuse_factor(net, layers, factor, "a factor is at least 1");
  if (factor == 1) return report;
  register_library_layers();
  const auto changes = plan(net, layers, factor);
  // The edited definition, checked whole before the live net changes.
  caffe::NetParameter definition = net.definition();
  std::vector<caffe::LayerParameter> params;
  for (const auto& change : changes) {
    auto* layer = find_in_definition(&definition, change.report.name);
    set_window(layer, change.window);
    caffe::LayerParameter param = change.before;
    set_window(&param, change.window);
    check_layer_parameters(param, net.source(), std::vector<int>(param.bottom_size(), 4));
    params.push_back(param);
  }
  auto& live = net.live_net();
  std::vector<std::pair<int, caffe::shared_ptr<caffe::Layer<float>>>> replaced;
  try {
    guard_caffe("rarefying '" + net.source() + "'", [&] {
      for (size_t i = 0; i < changes.size(); ++i) {
        const int index = live.layer_index(changes[i].report.name);
        auto old = live.layers()[index];
        params[i].set_phase(net.phase());
        auto layer = caffe::LayerRegistry<float>::CreateLayer(params[i]);
        layer->blobs() = old->blobs();  // same weights, same memory
        replaced.emplace_back(index, old);
        live.replace_layer(index, layer);
        live.Reshape();
      }
    });
  } catch (const Error&) {
    // An input too small for the dilated windows: put the old layers back.
    for (auto it = replaced.rbegin(); it != replaced.rend(); ++it) {
      live.replace_layer(it->first, it->second);
    }
    live.Reshape();
    throw;
  }
  net.mutable_definition() = std::move(definition);
  for (const auto& change : changes) report.layers.push_back(change.report);
  return report;
}

}  // namespace surgery
