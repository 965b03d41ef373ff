#include "surgery/files/weights_check.hpp"

#include <algorithm>
#include <climits>
#include <set>
#include <sstream>

#include "surgery/base/errors.hpp"
#include "surgery/base/shape_text.hpp"

namespace surgery {
namespace {

// Caffe's Blob::FromProto: any legacy field makes the legacy 4-D shape count.
std::vector<int64_t> proto_shape(const caffe::BlobProto& blob) {
  if (blob.has_num() || blob.has_channels() || blob.has_height() || blob.has_width()) {
    return {blob.num(), blob.channels(), blob.height(), blob.width()};
  }
  return {blob.shape().dim().begin(), blob.shape().dim().end()};
}

// The element count of a shape from a file, which may say anything: each
// dimension within 0..INT_MAX, at most kMaxBlobAxes of them, and a product
// that fits Caffe's int count, or ParseError.
int64_t checked_count(const std::string& where, int index, const std::vector<int64_t>& shape) {
  if (shape.size() > static_cast<size_t>(::kMaxBlobAxes)) {
    throw ParseError(where + ", param " + std::to_string(index) + ": a shape of " +
                     std::to_string(shape.size()) + " axes (Caffe allows " +
                     std::to_string(::kMaxBlobAxes) + ")");
  }
  auto refuse = [&](const std::string& why) {
    std::ostringstream out;
    out << where << ", param " << index << ": shape " << shape_text(shape) << " " << why;
    throw ParseError(out.str());
  };
  for (auto d : shape) {
    if (d < 0 || d > INT_MAX) refuse("has a dimension outside 0..2147483647");
  }
  const auto n = element_count(shape);
  if (!n || *n > INT_MAX) refuse("has more than 2147483647 elements");
  return *n;
}

// Caffe's Blob::ShapeEquals: a legacy 4-D shape equals a shorter one padded
// on the left with ones.
bool caffe_accepts(const std::vector<int64_t>& source, const std::vector<int>& target) {
  if (source.size() == target.size()) {
    return std::equal(source.begin(), source.end(), target.begin());
  }
  if (source.size() != 4 || target.size() > 4) return false;
  const size_t pad = 4 - target.size();
  for (size_t i = 0; i < pad; ++i) {
    if (source[i] != 1) return false;
  }
  return std::equal(source.begin() + pad, source.end(), target.begin());
}

// The net's layer that takes `layer`'s weights: the one of the same name, or,
// for a net converted by surgery (fc6 -> fc6-conv), the one Convolution whose
// name extends it and which the file does not name itself.
const caffe::Layer<float>* target_of(const caffe::Net<float>& net,
                                     const caffe::LayerParameter& layer,
                                     const std::set<std::string>& in_file) {
  if (net.has_layer(layer.name())) return net.layer_by_name(layer.name()).get();
  if (layer.type() != "InnerProduct") return nullptr;
  const caffe::Layer<float>* found = nullptr;
  for (const auto& candidate : net.layers()) {
    const auto& name = candidate->layer_param().name();
    if (name.size() > layer.name().size() && name.compare(0, layer.name().size(), layer.name()) == 0 &&
        std::string(candidate->type()) == "Convolution" && in_file.count(name) == 0) {
      if (found) return nullptr;  // ambiguous: leave it, as Caffe would
      found = candidate.get();
    }
  }
  return found;
}

}  // namespace

void check_blob_count(const std::string& where, int in_file, int in_net) {
  if (in_file == in_net) return;
  std::ostringstream out;
  out << where << ": the file has " << in_file << " parameter blobs, the net's layer has "
      << in_net;
  throw ShapeError(out.str());
}

void check_blob_fits(const std::string& where, int index, const std::vector<int64_t>& shape,
                     int64_t values, bool ip_to_conv, const caffe::Blob<float>& target) {
  const int64_t count = checked_count(where, index, shape);
  if (values != count) {
    std::ostringstream out;
    out << where << ", param " << index << ": holds " << values << " values but its shape says "
        << shape_text(shape);
    throw ParseError(out.str());
  }
  const bool same_bytes = ip_to_conv && count == target.count();
  if (!caffe_accepts(shape, target.shape()) && !same_bytes) {
    std::ostringstream out;
    out << where << ", param " << index << ": shape " << shape_text(shape) << " in the file, but "
        << shape_text(target.shape()) << " in the net";
    throw ShapeError(out.str());
  }
}

std::vector<BlobCopy> plan_weight_copy(const caffe::Net<float>& net,
                                       const caffe::NetParameter& weights,
                                       const std::string& source) {
  std::vector<BlobCopy> plan;
  std::set<std::string> in_file;
  for (const auto& layer : weights.layer()) in_file.insert(layer.name());
  for (const auto& layer : weights.layer()) {
    if (layer.blobs_size() == 0) continue;
    const auto* found = target_of(net, layer, in_file);
    if (!found) continue;
    auto& target_layer = const_cast<caffe::Layer<float>&>(*found);
    const auto& targets = target_layer.blobs();
    const std::string where = "weights '" + source + "', layer '" + layer.name() + "'";
    check_blob_count(where, layer.blobs_size(), static_cast<int>(targets.size()));
    const bool ip_to_conv = layer.type() == "InnerProduct" &&
                            std::string(target_layer.type()) == "Convolution";
    for (int i = 0; i < layer.blobs_size(); ++i) {
      const auto& blob = layer.blobs(i);
      const auto shape = proto_shape(blob);
      const int64_t values = blob.data_size() > 0 ? blob.data_size() : blob.double_data_size();
      auto& target = *targets[i];
      check_blob_fits(where, i, shape, values, ip_to_conv, target);
      plan.push_back({&blob, &target, target_layer.layer_param().name()});
    }
  }
  return plan;
}

void check_blob_proto_fits(const std::string& where, int index, const caffe::BlobProto& blob,
                           const caffe::Blob<float>& target) {
  const int64_t values = blob.data_size() > 0 ? blob.data_size() : blob.double_data_size();
  check_blob_fits(where, index, proto_shape(blob), values, false, target);
}

void copy_blob_data(const caffe::BlobProto& source, caffe::Blob<float>* target) {
  float* out = target->mutable_cpu_data();
  if (source.data_size() > 0) {
    std::copy(source.data().begin(), source.data().end(), out);
  } else {
    std::transform(source.double_data().begin(), source.double_data().end(), out,
                   [](double v) { return static_cast<float>(v); });
  }
}

std::set<std::string> copy_weights(const caffe::NetParameter& weights, const std::string& source,
                                   caffe::Net<float>& net) {
  std::set<std::string> layers;
  for (const auto& copy : plan_weight_copy(net, weights, source)) {
    copy_blob_data(*copy.source, copy.target);
    layers.insert(copy.layer);
  }
  return layers;
}

}  // namespace surgery
