#include "surgery/definition/parameter_checks.hpp"

#include <algorithm>

#include "surgery/base/errors.hpp"
#include "surgery/base/name_text.hpp"
#include "surgery/definition/parameter_rules.hpp"

namespace surgery {
namespace {

std::string count_text(Counts counts, const char* what) {
  const std::string min = std::to_string(counts.min);
  if (counts.min == counts.max) return min + " " + what;
  if (counts.max == kAnyCount) return "at least " + min + " " + what;
  return min + " to " + std::to_string(counts.max) + " " + what;
}

// `count` bottoms or tops (`what`) within what the type takes.
void require_count(ParameterChecker& c, int count, Counts counts, const char* what) {
  c.require(count >= counts.min && (counts.max == kAnyCount || count <= counts.max),
            "it has " + std::to_string(count) + " " + what + ", this type takes " +
                count_text(counts, what));
}

// Top `i`'s axes as an Input, Parameter or DummyData layer declares them
// (one shape for all tops, or one per top, as Caffe reads them).
int declared_axes(const caffe::LayerParameter& layer, int i) {
  const auto pick = [i](const auto& shapes) {
    return shapes.empty() ? kUnknownAxes
                          : shapes[std::min(i, shapes.size() - 1)].dim_size();
  };
  if (layer.type() == "Input") return pick(layer.input_param().shape());
  if (layer.type() == "Parameter") return layer.parameter_param().shape().dim_size();
  // DummyData without shapes takes the legacy num, channels, height, width.
  const auto& shapes = layer.dummy_data_param().shape();
  return shapes.empty() ? 4 : pick(shapes);
}

}  // namespace

std::vector<int> check_layer_parameters(const caffe::LayerParameter& layer,
                                        const std::string& source,
                                        const std::vector<int>& bottom_axes) {
  const LayerRow* row = find_layer_row(layer.type());
  if (row == nullptr || !row->parameters) {
    // The load policy refuses types without rules; trusted I/O types get
    // Caffe's own checks.
    return std::vector<int>(layer.top_size(), kUnknownAxes);
  }
  const ParameterRules& rule = *row->parameters;
  ParameterChecker c(layer, bottom_axes);
  // A layer's blobs in the definition become its weights without the shape
  // checks a caffemodel goes through (Layer's constructor copies them, and
  // InnerProduct, BatchNorm and others then skip initialising and checking
  // them); a forward would read past them.
  c.require(layer.blobs_size() == 0,
            "it carries weights (blobs) in the definition, which Caffe uses without checking "
            "their shapes; keep weights in a caffemodel");
  const int bottoms = layer.bottom_size(), tops = layer.top_size();
  require_count(c, bottoms, rule.bottoms, "bottoms");
  require_count(c, tops, rule.tops, "tops");
  // Rules read bottom_axes[0] and the params only once the counts hold.
  if (c.problem().empty() && rule.check != nullptr) rule.check(c);
  if (!c.problem().empty()) {
    throw NetDefinitionError(layer_text(source, layer) + ": " + c.problem() +
                             "; fix the definition");
  }
  std::vector<int> top_axes(tops, kUnknownAxes);
  for (int i = 0; i < tops; ++i) {
    if (rule.top_axes == TopAxes::kSame) top_axes[i] = c.axes();
    if (rule.top_axes == TopAxes::kDeclared) top_axes[i] = declared_axes(layer, i);
  }
  return top_axes;
}

}  // namespace surgery
