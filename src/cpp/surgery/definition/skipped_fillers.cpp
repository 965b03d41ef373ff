#include "surgery/definition/skipped_fillers.hpp"

#include <functional>
#include <vector>

#include <google/protobuf/message.h>

namespace surgery {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Calls `visit` on every FillerParameter set in `message`, at any depth
// (weight_filler, bias_filler, a PReLU's filler, a recurrent layer's ...),
// found by reflection so that no list of layer types can miss one.
void for_each_filler(Message& message, const std::function<void(caffe::FillerParameter&)>& visit) {
  const auto* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const auto* field : fields) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      Message& child = field->is_repeated() ? *reflection->MutableRepeatedMessage(&message, field, i)
                                            : *reflection->MutableMessage(&message, field);
      if (child.GetDescriptor() == caffe::FillerParameter::descriptor()) {
        visit(static_cast<caffe::FillerParameter&>(child));
      } else {
        for_each_filler(child, visit);
      }
    }
  }
}

bool draws(const caffe::FillerParameter& filler) {
  return filler.type() != "constant" && filler.type() != "bilinear";
}

// Whether building `layer` draws from Caffe's random stream: its fillers,
// or the one number a data layer's transformer takes to seed its own
// (DataTransformer::InitRand, when it mirrors or crops at random).
bool draws(caffe::LayerParameter& layer) {
  bool draw = false;
  for_each_filler(layer, [&](caffe::FillerParameter& filler) { draw |= draws(filler); });
  return draw || layer.transform_param().mirror() || layer.transform_param().crop_size() > 0;
}

}  // namespace

std::set<std::string> skip_fillers(caffe::NetParameter& param, const std::set<std::string>& filled) {
  std::set<std::string> changed;
  for (int i = param.layer_size() - 1; i >= 0; --i) {
    caffe::LayerParameter& layer = *param.mutable_layer(i);
    if (filled.count(layer.name())) {
      for_each_filler(layer, [&](caffe::FillerParameter& filler) {
        filler.Clear();  // constant 0
        changed.insert(layer.name());
      });
      continue;
    }
    if (draws(layer)) break;
  }
  return changed;
}

}  // namespace surgery
