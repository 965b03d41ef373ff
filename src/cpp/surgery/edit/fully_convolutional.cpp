#include "surgery/edit/fully_convolutional.hpp"

#include <array>
#include <set>
#include <sstream>

#include "caffe/layer_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/definition/channel_gates.hpp"
#include "surgery/edit/definition_edit.hpp"
#include "surgery/edit/transpose_on_device.hpp"
#include "surgery/runtime/live_net.hpp"

namespace surgery {
namespace {

// One step of the surgery, decided before anything changes.
struct Step {
  enum Kind { kInnerProduct, kGlobalPooling } kind = kInnerProduct;
  std::string name;
  std::string passthrough;  // Flatten/Reshape to drop before it, if any
  int kernel_h = 0, kernel_w = 0;
  int channels = 0;
  std::string new_top;
};

struct Plan {
  std::vector<Step> steps;
};

[[noreturn]] void refuse(const caffe::LayerParameter& layer, const std::string& why) {
  throw Error("layer '" + layer.name() + "' (" + layer.type() + ") cannot be made convolutional: " +
              why);
}

// Surgery finds layers by name, in the definition and in the live net; a
// name used twice would convert one layer and edit or fill another.
std::set<std::string> unique_layer_names(const caffe::NetParameter& layers) {
  std::set<std::string> names;
  for (const auto& layer : layers.layer()) {
    if (!names.insert(layer.name()).second) {
      throw NetDefinitionError("two layers are named '" + layer.name() +
                               "': surgery edits layers by name; rename one of them");
    }
  }
  return names;
}

// What the steps will edit or create must be unambiguous in the whole
// definition (all phases), and the names they create must be new.
void check_names(const Net& net, const caffe::NetParameter& layers, const Plan& plan,
                 const std::optional<std::string>& suffix) {
  const auto names = unique_layer_names(layers);
  std::map<std::string, int> everywhere;
  for (const auto& layer : net.definition().layer()) everywhere[layer.name()]++;
  std::set<std::string> blobs;
  for (const auto& layer : layers.layer()) blobs.insert(layer.top().begin(), layer.top().end());
  for (const auto& step : plan.steps) {
    for (const auto* edited : {&step.name, &step.passthrough}) {
      if (!edited->empty() && everywhere[*edited] > 1) {
        throw NetDefinitionError("layer '" + *edited + "' appears " +
                                 std::to_string(everywhere[*edited]) +
                                 " times in the definition (in other phases too): surgery "
                                 "edits layers by name; rename the others");
      }
    }
    if (step.kind != Step::kInnerProduct || !suffix) continue;
    const std::string new_name = step.name + *suffix;
    if (names.count(new_name) || everywhere.count(new_name)) {
      throw NetDefinitionError("layer '" + step.name + "' would become '" + new_name +
                               "', but a layer of that name exists: pass another suffix");
    }
    if (!step.new_top.empty() && blobs.count(step.new_top)) {
      throw NetDefinitionError("layer '" + step.name + "' would write blob '" + step.new_top +
                               "', but a blob of that name exists: pass another suffix");
    }
  }
}

Plan make_plan(const Net& net, const caffe::NetParameter& layers,
               const std::optional<std::string>& suffix) {
  unique_layer_names(layers);  // before anything is looked up by name
  auto& live = net.caffe_net();
  std::map<std::string, const caffe::LayerParameter*> producer;
  std::map<std::string, int> readers;
  for (const auto& layer : layers.layer()) {
    for (const auto& b : layer.bottom()) readers[b]++;
  }
  std::set<std::string> becomes_4d;  // 2-D now, 4-D once converted upstream
  // A gate takes any input size as it is: its pooling stays global and its
  // InnerProducts see one cell whatever the input.
  const ChannelGates gates = find_channel_gates(layers);
  Plan plan;
  for (const auto& layer : layers.layer()) {
    const bool in_gate = gates.layers.count(layer.name()) > 0;
    if (!in_gate && layer.type() == "Pooling" && layer.pooling_param().global_pooling()) {
      const auto shape = live.blob_by_name(layer.bottom(0))->shape();
      if (shape.size() != 4) refuse(layer, "global pooling over a " + shape_text(shape) + " blob");
      Step step;
      step.kind = Step::kGlobalPooling;
      step.name = layer.name();
      step.kernel_h = shape[2];
      step.kernel_w = shape[3];
      step.channels = shape[1];
      plan.steps.push_back(step);
    } else if (!in_gate && layer.type() == "InnerProduct") {
      const auto& bottom = layer.bottom(0);
      auto shape = live.blob_by_name(bottom)->shape();
      const int axis = layer.inner_product_param().axis() < 0
                           ? layer.inner_product_param().axis() + static_cast<int>(shape.size())
                           : layer.inner_product_param().axis();
      if (axis != 1) {
        refuse(layer, "axis " + std::to_string(layer.inner_product_param().axis()) + " on " +
                          shape_text(shape) + " does not slide over space; only axis 1 does");
      }
      Step step;
      step.kind = Step::kInnerProduct;
      step.name = layer.name();
      step.kernel_h = 1;  // a 2-D bottom that turns 4-D upstream: 1 x 1
      step.kernel_w = 1;
      const auto* source = producer.count(bottom) ? producer[bottom] : nullptr;
      if (shape.size() == 2 && source &&
          (source->type() == "Flatten" || source->type() == "Reshape") && readers[bottom] == 1 &&
          live.blob_by_name(source->bottom(0))->num_axes() == 4) {
        step.passthrough = source->name();
        shape = live.blob_by_name(source->bottom(0))->shape();
      }
      if (shape.size() == 4) {
        step.kernel_h = shape[2];
        step.kernel_w = shape[3];
      } else if (!(shape.size() == 2 && becomes_4d.count(bottom))) {
        refuse(layer, "its bottom '" + bottom + "' is " + shape_text(shape) +
                          ", with no spatial extent to slide over");
      }
      step.channels = shape[1];
      if (suffix && layer.top(0) == layer.name()) step.new_top = layer.name() + *suffix;
      becomes_4d.insert(layer.top(0));
      plan.steps.push_back(step);
    } else if (keeps_shape(layer.type()) && layer.bottom_size() > 0 &&
               becomes_4d.count(layer.bottom(0))) {
      for (const auto& top : layer.top()) becomes_4d.insert(top);
    }
    for (const auto& top : layer.top()) producer[top] = &layer;
  }
  check_names(net, layers, plan, suffix);
  return plan;
}

// An InnerProduct with transpose: true stores K x N; a convolution needs
// N x K. The only case where the bytes change, so the only copy. Weights
// that live on the GPU are transposed there (transpose_on_device.cpp).
void transpose_in_place(caffe::Blob<float>* weights, int rows, int cols) {
  if (transpose_on_device(weights, rows, cols)) return;
  std::vector<float> copy(weights->cpu_data(), weights->cpu_data() + weights->count());
  float* out = weights->mutable_cpu_data();
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) out[c * rows + r] = copy[r * cols + c];
  }
}

caffe::shared_ptr<caffe::Layer<float>> make_layer(caffe::LayerParameter param, caffe::Phase phase) {
  param.set_phase(phase);
  return caffe::LayerRegistry<float>::CreateLayer(param);
}

// An InnerProduct's weights as they were before convert() rearranged them.
struct WeightsBefore {
  caffe::shared_ptr<caffe::Blob<float>> blob;
  std::vector<int> shape;
  bool transposed = false;
};

// Undoes convert()'s edits of the weights, last first: the same shape, and
// for transpose: true the inverse transpose (a permutation: the same bytes).
void put_back(const std::vector<WeightsBefore>& changed) {
  for (auto it = changed.rbegin(); it != changed.rend(); ++it) {
    it->blob->Reshape(it->shape);
    if (it->transposed) transpose_in_place(it->blob.get(), it->shape[1], it->shape[0]);
  }
}

ConvertedLayer convert(Net& net, LiveNet& live, const Step& step,
                       const std::optional<std::string>& suffix,
                       std::vector<WeightsBefore>* changed) {
  const int index = live.layer_index(step.name);
  auto old_layer = live.layers()[index];
  ConvertedLayer report;
  report.old_name = step.name;
  report.old_type = old_layer->type();
  report.new_name = suffix ? step.name + *suffix : step.name;
  report.kernel_h = step.kernel_h;
  report.kernel_w = step.kernel_w;
  if (step.kind == Step::kGlobalPooling) {
    auto param = fix_global_pooling(&net.mutable_definition(), step.name, step.kernel_h,
                                    step.kernel_w);
    report.new_name = step.name;  // same layer type and parameters: no reason to rename
    report.new_type = "Pooling";
    live.replace_layer(index, make_layer(param, net.phase()));
    return report;
  }
  if (!step.passthrough.empty()) {
    remove_passthrough(&net.mutable_definition(), step.passthrough);
    live.bypass_layer(live.layer_index(step.passthrough));
  }
  const auto& ip = old_layer->layer_param().inner_product_param();
  auto blobs = old_layer->blobs();
  auto& weights = *blobs.at(0);
  report.old_shape = weights.shape();
  report.num_output = static_cast<int>(ip.num_output());
  if (ip.transpose()) {
    transpose_in_place(&weights, weights.shape(0), weights.shape(1));
    report.copied = true;
  }
  changed->push_back({blobs.at(0), report.old_shape, ip.transpose()});
  weights.Reshape({report.num_output, step.channels, step.kernel_h, step.kernel_w});
  report.new_shape = weights.shape();
  report.new_type = "Convolution";
  auto param = convert_inner_product(&net.mutable_definition(), step.name, report.new_name,
                                     step.kernel_h, step.kernel_w, step.new_top);
  auto layer = make_layer(param, net.phase());
  layer->blobs() = blobs;
  const int now = live.layer_index(step.name);  // moved if a passthrough went
  if (!step.new_top.empty()) live.rename_blob(old_layer->layer_param().top(0), step.new_top);
  live.replace_layer(now, layer);
  return report;
}

void check_weights(const Net& net, const Plan& plan) {
  for (const auto& step : plan.steps) {
    if (step.kind != Step::kInnerProduct) continue;
    // A transplant that silently missed a layer gives all-zero outputs (FCN's FAQ).
    if (!net.weights_source().empty() && net.loaded_layers().count(step.name) == 0) {
      throw Error("layer '" + step.name + "' got no weights from '" + net.weights_source() +
                  "': converting it would give a net with untrained filters");
    }
    const auto& blobs = net.params(step.name);
    const auto& ip = net.caffe_net().layer_by_name(step.name)->layer_param().inner_product_param();
    const auto expected = element_count(std::array<int64_t, 4>{
        ip.num_output(), step.channels, step.kernel_h, step.kernel_w});
    const int64_t rows = ip.transpose() ? blobs[0]->shape(1) : blobs[0]->shape(0);
    if (!expected || blobs[0]->count() != *expected ||
        rows != static_cast<int64_t>(ip.num_output())) {
      std::ostringstream out;
      out << "layer '" << step.name << "': weights " << shape_text(blobs[0]->shape())
          << " do not fill " << ip.num_output() << " filters of " << step.channels << " x "
          << step.kernel_h << " x " << step.kernel_w;
      throw ShapeError(out.str());
    }
  }
}

}  // namespace

SurgeryReport fully_convolutionalize(Net& net, const SurgeryOptions& options) {
  std::map<std::string, std::vector<int>> current;
  for (const auto& input : net.input_names()) current[input] = net.blob(input).shape();
  auto shapes = net.declared_input_shapes();
  for (const auto& [name, shape] : options.input_shapes) shapes[name] = shape;
  net.reshape(shapes);
  Plan plan;
  try {
    plan = make_plan(net, net.filtered_definition(), options.suffix);
    check_weights(net, plan);
  } catch (const Error&) {
    net.reshape(current);  // a refusal leaves the net at the shapes it had
    throw;
  }
  SurgeryReport report;
  auto& live = net.live_net();
  // Caffe may still refuse the converted net when it reshapes it (a 4-D
  // blob into a Concat with a 2-D one): then every edit is undone, and the
  // net is the one the caller had, definition, layers and weight bytes.
  const caffe::NetParameter definition = net.definition();
  const LiveNet::Structure structure = live.structure();
  std::vector<WeightsBefore> changed;
  try {
    guard_caffe("net surgery on '" + net.source() + "'", [&] {
      for (const auto& step : plan.steps) {
        if (!step.passthrough.empty()) report.removed.push_back(step.passthrough);
        report.layers.push_back(convert(net, live, step, options.suffix, &changed));
        live.Reshape();
      }
    });
  } catch (...) {
    live.restore(structure);
    put_back(changed);
    net.mutable_definition() = definition;
    net.reshape(current);
    throw;
  }
  // The converted net's cells each stand for one input of the classifier:
  // record it, since the layers alone no longer tell (window_record.hpp).
  const auto inputs = net.input_names();
  if (!report.layers.empty() && !inputs.empty()) {
    const auto& shape = shapes[inputs.front()];
    if (shape.size() == 4) net.set_recorded_window({shape[2], shape[3]});
  }
  return report;
}

}  // namespace surgery
