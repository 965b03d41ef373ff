#include "surgery/runtime/net.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <sstream>
#include <utility>

#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/definition/phase_filter.hpp"
#include "surgery/definition/skipped_fillers.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/atomic_file.hpp"
#include "surgery/files/caffemodel_reader.hpp"
#include "surgery/files/caffemodel_writer.hpp"
#include "surgery/files/early_digest.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/weights_check.hpp"
#include "surgery/layers/library_layers.hpp"
#include "surgery/runtime/device.hpp"
#include "surgery/runtime/fork_gate.hpp"

namespace surgery {
namespace {

bool ends_with(std::string name, const std::string& suffix) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The inputs' new shapes, as a message names them.
std::string shapes_text(const std::map<std::string, std::vector<int>>& shapes) {
  std::string out;
  for (const auto& [name, shape] : shapes) {
    out += (out.empty() ? "" : ", ") + name + "=" + shape_text(shape);
  }
  return out;
}

// An InnerProduct's weights fix how many values each item of its bottom
// holds: where a new input size changes that, Caffe's reshape would fail on
// a bare CHECK (K_ == new_K); this names the layer and the way out first.
void check_inner_product(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                         const std::string& name, const std::string& inputs) {
  if (std::string(layer.type()) != "InnerProduct" || layer.blobs().empty()) return;
  const auto& param = layer.layer_param().inner_product_param();
  const int axis = param.axis() < 0 ? param.axis() + bottom.num_axes() : param.axis();
  if (axis < 0 || axis >= bottom.num_axes()) return;  // Caffe's own check says it
  const auto& weights = *layer.blobs()[0];
  if (weights.num_axes() != 2) return;
  const int64_t takes = weights.shape(param.transpose() ? 0 : 1);
  if (bottom.count(axis) == takes) return;
  throw ShapeError("InnerProduct layer '" + name + "' takes " + std::to_string(takes) +
                   " values per item, but input " + inputs + " gives it a bottom of " +
                   shape_text(bottom.shape()) + ", " + std::to_string(bottom.count(axis)) +
                   " values per item: it takes only the input size it was made for; " +
                   kUnconvertedHint);
}

// Branches that shrink the input by the same factor can still disagree at
// some input sizes (pooling rounds up, convolution down: BN-Inception's
// stride-2 blocks at 336 x 336), where Caffe's Concat fails on a bare CHECK.
void check_concat(const caffe::Layer<float>& layer, const std::vector<caffe::Blob<float>*>& bottoms,
                  const std::string& name, const std::string& inputs) {
  if (std::string(layer.type()) != "Concat" || bottoms.size() < 2) return;
  const auto& param = layer.layer_param().concat_param();
  const int axes = bottoms[0]->num_axes();
  const int axis = param.has_concat_dim() ? static_cast<int>(param.concat_dim())
                                          : (param.axis() < 0 ? param.axis() + axes : param.axis());
  for (const auto* bottom : bottoms) {
    if (bottom->num_axes() != axes || axis < 0 || axis >= axes) return;  // Caffe's own check says it
    for (int j = 0; j < axes; ++j) {
      if (j == axis || bottom->shape(j) == bottoms[0]->shape(j)) continue;
      throw ShapeError("Concat layer '" + name + "' joins blobs of " +
                       shape_text(bottoms[0]->shape()) + " and " + shape_text(bottom->shape()) +
                       " at input " + inputs + ": its branches round this input's size "
                       "differently (pooling rounds up, convolution down); try an input a few "
                       "pixels larger or smaller");
    }
  }
}

// Caffe's Net::Reshape, layer by layer, with the checks above before each.
void reshape_layers(caffe::Net<float>& net, const std::string& inputs) {
  const auto& layers = net.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& bottoms = net.bottom_vecs()[i];
    const std::string& name = net.layer_names()[i];
    if (!bottoms.empty()) check_inner_product(*layers[i], *bottoms[0], name, inputs);
    check_concat(*layers[i], bottoms, name, inputs);
    layers[i]->Reshape(bottoms, net.top_vecs()[i]);
  }
}

caffe::NetState state_of(caffe::Phase phase) {
  caffe::NetState state;
  state.set_phase(phase);
  return state;
}

}  // namespace

const char* const kUnconvertedHint =
    "call fully_convolutionalize() first (or caffe-surgery convert)";

Net::DefinitionFile Net::read_definition(const std::string& prototxt) {
  const std::string text = read_text_file(prototxt);
  return {parse_net_text(text, prototxt), find_pair_record(text, prototxt),
          find_window_record(text, prototxt)};
}

Net::Net(const std::string& prototxt, const std::string& weights, caffe::Phase phase,
         const LoadPolicy& policy)
    : Net(read_definition(prototxt), prototxt, weights, state_of(phase), policy) {}

Net::Net(const std::string& prototxt, const std::string& weights, const caffe::NetState& state,
         const LoadPolicy& policy)
    : Net(read_definition(prototxt), prototxt, weights, state, policy) {}

Net::Net(DefinitionFile file, const std::string& prototxt, const std::string& weights,
         const caffe::NetState& state, const LoadPolicy& policy)
    : definition_(std::move(file.definition)), source_(prototxt), state_(state) {
  recorded_window_ = file.window;
  if (weights.empty()) {
    build(policy, {});
    return;
  }
  // Where the pair record checks the file, its digest is taken beside the
  // build rather than after it.
  std::optional<EarlyDigest> early;
  if (file.pair && record_applies(*file.pair, weights) && early_digest_pays()) {
    early.emplace(weights);
  }
  const auto unfilled = build(policy, caffemodel_layer_names(weights));
  load_paired_weights(weights, file.pair, early ? &*early : nullptr);
  if (std::includes(loaded_layers_.begin(), loaded_layers_.end(), unfilled.begin(),
                    unfilled.end())) {
    return;
  }
  // A layer built without its fillers got no weights (the file changed
  // since it was scanned): it must hold its fillers' values, as in Caffe.
  net_.reset();
  loaded_layers_.clear();
  build(policy, {});
  load_paired_weights(weights, file.pair, nullptr);
}

void Net::load_paired_weights(const std::string& weights, const std::optional<PairRecord>& record,
                              EarlyDigest* early) {
  if (!record || !record_applies(*record, weights)) {
    load_weights_file(weights, nullptr, nullptr);
    return;
  }
  FileDigest digest;
  try {
    load_weights_file(weights, &digest, early);
  } catch (const Error& error) {
    // A mixed pair can fail to load for other reasons (shapes, a truncated
    // file): the message then says both.
    const std::string mixed = pair_mismatch(*record, source_, weights, digest_file(weights));
    if (mixed.empty()) throw;
    throw ParseError(std::string(error.what()) + "; and " + mixed);
  }
  check_pair(*record, source_, weights, digest);
}

void Net::load_weights_file(const std::string& weights, FileDigest* digest, EarlyDigest* early) {
  // A fresh net may take the file's values before all of it is checked (a
  // failure discards the net), so it can stream them without a second copy.
  // The digest, if wanted, is taken from the bytes as they stream in, or,
  // with `early`, only their tag, to show they are the bytes it digested.
  std::set<std::string> loaded;
  ++weights_generation_;
  ReadTag tag;
  const StreamResult streamed =
      early ? stream_caffemodel(*net_, weights, &loaded, early->key(), &tag)
            : stream_caffemodel(*net_, weights, &loaded, digest);
  if (streamed != StreamResult::kLoaded) {
    load_weights(read_net_binary(weights, digest), weights);
    return;
  }
  loaded_layers_ = std::move(loaded);
  weights_source_ = weights;
  if (!early) return;
  if (const auto ahead = early->digest_if_same(tag)) {
    *digest = *ahead;
  } else {
    // The file changed between the two reads (or the early one failed):
    // load it again, digesting the bytes loaded.
    load_weights_file(weights, digest, nullptr);
  }
}

Net::Net(caffe::NetParameter definition, std::string source, caffe::Phase phase,
         const LoadPolicy& policy)
    : Net(std::move(definition), std::move(source), state_of(phase), policy) {}

Net::Net(caffe::NetParameter definition, std::string source, const caffe::NetState& state,
         const LoadPolicy& policy)
    : definition_(std::move(definition)), source_(std::move(source)), state_(state) {
  build(policy, {});
}

std::set<std::string> Net::build(const LoadPolicy& policy, const std::set<std::string>& filled) {
  register_library_layers();  // before the definition's types are looked up
  caffe::NetParameter param = filter_by_state(definition_, state_);
  validate_definition(param, source_, policy);
  std::set<std::string> unfilled = skip_fillers(param, filled);
  net_ = guard_caffe("building the net from '" + source_ + "'", [&] {
    return std::make_unique<LiveNet>(param);
  });
  check_memory(*net_, "net '" + source_ + "'");
  return unfilled;
}

Net::~Net() = default;

void Net::load_weights(const std::string& caffemodel) {
  load_weights(read_net_binary(caffemodel), caffemodel);
}

void Net::load_weights(const caffe::NetParameter& weights, const std::string& source) {
  ++weights_generation_;
  const auto layers = copy_weights(weights, source, *net_);
  loaded_layers_.insert(layers.begin(), layers.end());
  weights_source_ = source;
}

caffe::NetParameter Net::filtered_definition() const {
  return filter_by_state(definition_, state_);
}

std::map<std::string, std::vector<int>> Net::declared_input_shapes() const {
  std::map<std::string, std::vector<int>> out;
  const caffe::NetParameter param = filtered_definition();
  for (const auto& layer : param.layer()) {
    if (layer.type() != "Input") continue;
    const auto& shapes = layer.input_param().shape();
    for (int i = 0; i < layer.top_size(); ++i) {
      const auto& dims = shapes.Get(shapes.size() == 1 ? 0 : i).dim();
      out[layer.top(i)] = std::vector<int>(dims.begin(), dims.end());
    }
  }
  return out;
}

std::vector<LayerInfo> Net::layers() const {
  std::vector<LayerInfo> out;
  const caffe::NetParameter param = filtered_definition();
  for (const auto& layer : param.layer()) {
    out.push_back({layer.name(), layer.type(),
                   {layer.bottom().begin(), layer.bottom().end()},
                   {layer.top().begin(), layer.top().end()}});
  }
  return out;
}

std::vector<std::string> Net::blob_names() const {
  // The blobs the definition names, in order: not Caffe's Split blobs, not
  // the tops of layers that surgery removed.
  std::vector<std::string> out;
  std::set<std::string> seen;
  const caffe::NetParameter param = filtered_definition();
  for (const auto& layer : param.layer()) {
    for (const auto& top : layer.top()) {
      if (seen.insert(top).second && net_->has_blob(top)) out.push_back(top);
    }
  }
  return out;
}

std::vector<std::string> Net::input_names() const {
  std::vector<std::string> out;
  for (int i : net_->input_blob_indices()) out.push_back(net_->blob_names()[i]);
  return out;
}

std::vector<std::string> Net::output_names() const {
  std::vector<std::string> out;
  for (int i : net_->output_blob_indices()) out.push_back(net_->blob_names()[i]);
  return out;
}

caffe::Blob<float>& Net::blob(const std::string& name) const {
  if (!net_->has_blob(name)) {
    throw Error("net '" + source_ + "' has no blob '" + name + "'");
  }
  return *net_->blob_by_name(name);
}

const std::vector<caffe::shared_ptr<caffe::Blob<float>>>& Net::params(
    const std::string& layer) const {
  if (!net_->has_layer(layer)) {
    throw Error("net '" + source_ + "' has no layer '" + layer + "'");
  }
  ++weights_generation_;
  return net_->layer_by_name(layer)->blobs();
}

bool Net::has_params(const std::string& layer) const {
  return net_->has_layer(layer) && !net_->layer_by_name(layer)->blobs().empty();
}

std::vector<std::pair<std::string, double>> Net::layer_times() const {
  std::vector<std::pair<std::string, double>> times;
  for (size_t i = 0; i < layer_ms_.size() && i < net_->layer_names().size(); ++i) {
    times.emplace_back(net_->layer_names()[i], layer_ms_[i]);
  }
  return times;
}

std::vector<std::string> Net::engine_layers() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < net_->layers().size(); ++i) {
    const int index = static_cast<int>(i);
    if ((algorithm_ == ConvolutionAlgorithm::kWinograd && winograd_.ran(index)) ||
        (algorithm_ == ConvolutionAlgorithm::kOneDnn && onednn_.ran(index)) ||
        (algorithm_ == ConvolutionAlgorithm::kFastest && fastest_.ran(index))) {
      names.push_back(net_->layer_names()[i]);
    }
  }
  return names;
}

void Net::set_convolution_algorithm(ConvolutionAlgorithm algorithm) {
  algorithm_ = algorithm;
  if (algorithm_ != ConvolutionAlgorithm::kWinograd) winograd_.clear();
  if (algorithm_ != ConvolutionAlgorithm::kOneDnn) onednn_.clear();
  if (algorithm_ != ConvolutionAlgorithm::kFastest) fastest_.clear();
}

bool Net::forward_by_engine(int layer, bool relu) {
  switch (algorithm_) {
    case ConvolutionAlgorithm::kWinograd:
      return winograd_.forward(*net_, layer, weights_generation_, relu);
    case ConvolutionAlgorithm::kOneDnn:
      return onednn_.forward(*net_, layer, weights_generation_, relu);
    case ConvolutionAlgorithm::kFastest:
      return fastest_.forward(*net_, layer, weights_generation_, relu);
    case ConvolutionAlgorithm::kCaffe:
      break;
  }
  return false;
}

bool Net::relu_fused(int layer) const {
  switch (algorithm_) {
    case ConvolutionAlgorithm::kWinograd:
      return winograd_.relu_fused(layer);
    case ConvolutionAlgorithm::kOneDnn:
      return onednn_.relu_fused(layer);
    case ConvolutionAlgorithm::kFastest:
      return fastest_.relu_fused(layer);
    case ConvolutionAlgorithm::kCaffe:
      break;
  }
  return false;
}

std::vector<int> Net::shape_of(const std::string& name) const {
  return net_->blob_by_name(name)->shape();
}

void Net::reshape(const std::map<std::string, std::vector<int>>& shapes) {
  const auto inputs = input_names();
  std::map<std::string, std::vector<int>> old_shapes;
  for (const auto& [name, shape] : shapes) {
    if (std::find(inputs.begin(), inputs.end(), name) == inputs.end()) {
      throw Error("'" + name + "' is not an input of '" + source_ + "'");
    }
    for (int dim : shape) {
      if (dim <= 0) {
        throw ShapeError("input '" + name + "' cannot take shape " + shape_text(shape) +
                         ": every dimension must be positive");
      }
    }
    check_channels(name, shape);
    old_shapes[name] = shape_of(name);
  }
  auto apply = [&](const std::map<std::string, std::vector<int>>& target) {
    for (const auto& [name, shape] : target) net_->blob_by_name(name)->Reshape(shape);
    reshape_layers(*net_, shapes_text(target));
  };
  // A refused shape leaves the old one, holding no more memory than before.
  auto restore = [&] {
    apply(old_shapes);
    release_excess_memory(*net_);
  };
  const std::string what = "net '" + source_ + "' at the new input shape";
  try {
    apply(shapes);
    check_memory(*net_, what);
  } catch (const ShapeError&) {
    restore();
    throw;
  } catch (const std::bad_alloc& e) {
    restore();
    throw MemoryLimitError(what + ": " + e.what() + " (surgery.set_memory_limit)");
  } catch (const caffe_check::CheckFailure& e) {
    restore();
    std::ostringstream out;
    out << "net '" << source_ << "' cannot take input shape";
    for (const auto& [name, shape] : shapes) out << " " << name << "=" << shape_text(shape);
    out << ": " << e.what();
    throw ShapeError(out.str());
  }
}

void Net::check_channels(const std::string& input, const std::vector<int>& shape) const {
  const auto declared = declared_input_shapes();
  const auto it = declared.find(input);
  if (it == declared.end() || it->second.size() != 4 || shape.size() != 4 ||
      shape[1] == it->second[1]) {
    return;
  }
  throw ShapeError("input '" + input + "' has " + std::to_string(shape[1]) +
                   " channels where '" + source_ + "' declares " +
                   std::to_string(it->second[1]) + ": its shape is " + shape_text(shape) +
                   ", the declared one " + shape_text(it->second) +
                   "; HWC? transpose to CHW (image.transpose(2, 0, 1))");
}

void Net::forward(const std::map<std::string, InputView>& inputs,
                  const std::function<bool()>& interrupted) {
  const auto names = input_names();
  std::map<std::string, std::vector<int>> new_shapes, old_shapes;
  for (const auto& [name, view] : inputs) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      throw Error("'" + name + "' is not an input of '" + source_ + "'");
    }
    if (shape_of(name) != view.shape) {
      new_shapes[name] = view.shape;
      old_shapes[name] = shape_of(name);
    }
  }
  if (!new_shapes.empty()) reshape(new_shapes);
  ++forwards_;
  for (const auto& [name, view] : inputs) upload(*net_->blob_by_name(name), view.data);
  // Layer by layer (as Net::Forward does it, without the loss sum) so a
  // caller can stop a long pass between layers.
  const int layers = static_cast<int>(net_->layers().size());
  try {
    guard_caffe("forward through '" + source_ + "'", [&] {
      const CaffeSection section;
      layer_ms_.assign(layers, 0.0);
      bool applied = false;  // layer i is a ReLU the layer before applied
      for (int i = 0; i < layers; ++i) {
        // Before interrupted(), which may wait for the GIL that a forking
        // thread holds while fork() waits for this section.
        let_fork_through();
        if (interrupted && interrupted()) {
          throw Interrupted("forward through '" + source_ + "' interrupted before layer '" +
                            net_->layer_names()[i] + "'");
        }
        // The engine applied this in-place ReLU as it wrote the layer
        // before: its own pass would change nothing (its time stays 0).
        if (std::exchange(applied, false)) continue;
        const auto start = std::chrono::steady_clock::now();
        // Only an engine fuses a ReLU: the default mode asks nothing more per layer.
        const bool relu = algorithm_ != ConvolutionAlgorithm::kCaffe && fusable_relu(*net_, i);
        if (!forward_by_engine(i, relu)) net_->ForwardFromTo(i, i);
        layer_ms_[i] = std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - start).count();
        applied = relu && relu_fused(i);
      }
    });
  } catch (const MemoryLimitError&) {
    // The allocator refused a blob midway (memory other nets hold counts
    // too): like a refused reshape, go back to the old shapes and give back
    // what this forward took, so a smaller batch can be tried next.
    if (!old_shapes.empty()) {
      guard_caffe("restoring '" + source_ + "' after a refused forward", [&] {
        for (const auto& [name, shape] : old_shapes) net_->blob_by_name(name)->Reshape(shape);
        net_->Reshape();
      });
    }
    release_excess_memory(*net_);
    winograd_.clear();
    onednn_.clear();
    fastest_.clear();
    throw;
  }
}

void Net::check_save_targets(const std::string& prototxt, const std::string& caffemodel,
                             bool overwrite) const {
  if (prototxt.empty() && caffemodel.empty()) {
    throw Error("save() was given no file: pass a prototxt path, a weights path, or both");
  }
  const char* swapped = " (swapped arguments?): pass save(prototxt='net.prototxt', "
                        "weights='net.caffemodel')";
  for (const char* text_suffix : {".prototxt", ".pbtxt", ".txt"}) {
    if (!caffemodel.empty() && ends_with(caffemodel, text_suffix)) {
      throw Error("the weights target '" + caffemodel + "' is named like a text prototxt, "
                  "but weights are written as a binary caffemodel" + swapped);
    }
  }
  if (!prototxt.empty() && ends_with(prototxt, ".caffemodel")) {
    throw Error("the prototxt target '" + prototxt + "' is named like a binary caffemodel, "
                "but the definition is written as text" + swapped);
  }
  if (!prototxt.empty() && !caffemodel.empty() && same_file(prototxt, caffemodel)) {
    throw FileError("save() was given the same file '" + prototxt +
                    "' for the prototxt and the weights: one would replace the other");
  }
  if (overwrite) return;
  for (const auto* target : {&prototxt, &caffemodel}) {
    if (target->empty()) continue;
    for (const auto* input : {&source_, &weights_source_}) {
      if (!input->empty() && same_file(*target, *input)) {
        throw FileError("refusing to overwrite '" + *target + "', which this net was loaded "
                        "from (" + (input == &source_ ? "its comments and formatting would "
                        "be lost" : "the original weights would be lost") +
                        "): save under another name, or pass overwrite=True");
      }
    }
  }
}

void Net::save(const std::string& prototxt, const std::string& caffemodel,
               bool overwrite) const {
  check_save_targets(prototxt, caffemodel, overwrite);
  // The window record (window_record.hpp) travels with the definition.
  const std::string window = window_record_line(recorded_window_);
  if (caffemodel.empty()) {
    write_net_text(definition_, prototxt, window);
    return;
  }
  if (prototxt.empty()) {
    write_caffemodel(*net_, caffemodel);
    return;
  }
  // Both staged before either is renamed; the prototxt goes first, so a kill
  // between the renames leaves a record naming the new weights beside the
  // old ones: a pair that refuses to load (pair_record.hpp).
  FileDigest digest;
  StagedFile weights = stage_caffemodel(*net_, caffemodel, &digest);
  StagedFile text =
      stage_net_text(definition_, prototxt, pair_record_line(caffemodel, digest) + window);
  text.commit();
  weights.commit();
}

}  // namespace surgery
