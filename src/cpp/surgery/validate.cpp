#include "surgery/validate.hpp"

#include <climits>
#include <set>
#include <sstream>

#include "caffe/layer_factory.hpp"
#include "surgery/errors.hpp"

namespace surgery {
namespace {

std::string where(const std::string& source, const caffe::LayerParameter& layer) {
  return "'" + source + "', layer '" + layer.name() + "' (" + layer.type() + ")";
}

void check_type(const caffe::LayerParameter& layer, const std::string& source) {
  if (layer.type() == "Python") {
    throw NetDefinitionError(where(source, layer) +
                             ": Python layers run arbitrary code and are refused");
  }
  // Their constructors open a database on a prefetch thread, where a failure
  // cannot be turned into an exception; this libcaffe has no database backend.
  if (layer.type() == "Data" || layer.type() == "AnnotatedData") {
    throw NetDefinitionError(where(source, layer) +
                             ": reads an LMDB/LevelDB database, which this libcaffe is built "
                             "without; deploy nets take their data through Input layers");
  }
  const auto& registry = caffe::LayerRegistry<float>::Registry();
  if (registry.count(layer.type()) == 0) {
    throw NetDefinitionError(where(source, layer) + ": unknown layer type '" +
                             layer.type() + "'");
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
    double count = 1;
    for (auto dim : shape.dim()) count *= static_cast<double>(dim);
    if (count > INT32_MAX) {
      std::ostringstream out;
      out << where(source, layer) << ": an input of " << count
          << " values is more than a Caffe blob can hold (2^31 - 1)";
      throw ShapeError(out.str());
    }
    for (auto dim : shape.dim()) {
      if (dim <= 0 || dim > INT32_MAX) {
        std::ostringstream out;
        out << where(source, layer) << ": input dimension " << dim
            << " is not a positive 32-bit size";
        throw ShapeError(out.str());
      }
    }
  }
}

}  // namespace

void validate_definition(const caffe::NetParameter& net, const std::string& source) {
  std::set<std::string> available;
  for (const auto& layer : net.layer()) {
    check_type(layer, source);
    check_input_shapes(layer, source);
    for (const auto& bottom : layer.bottom()) {
      if (available.count(bottom) == 0) {
        throw NetDefinitionError(where(source, layer) + ": bottom '" + bottom +
                                 "' is not produced by any earlier layer");
      }
    }
    for (int i = 0; i < layer.top_size(); ++i) {
      const auto& top = layer.top(i);
      const bool in_place = i < layer.bottom_size() && layer.bottom(i) == top;
      if (!in_place && available.count(top) != 0) {
        throw NetDefinitionError(where(source, layer) + ": top '" + top +
                                 "' is already produced by an earlier layer");
      }
      available.insert(top);
    }
  }
}

}  // namespace surgery
