#include "surgery/definition/layer_policy.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "surgery/base/errors.hpp"
#include "surgery/base/name_text.hpp"
#include "surgery/definition/layer_table.hpp"
#include "surgery/files/proto_io.hpp"

namespace surgery {
namespace {

using A = LayerAccess;

// Whether the field at `path` (dotted, from `message`) is in use: every
// message on the way is present and the last field is a non-empty string, a
// true bool, a non-empty repeated field or any other value that is set.
bool field_in_use(const google::protobuf::Message& message, const std::string& path) {
  const auto dot = path.find('.');
  const std::string name = path.substr(0, dot);
  const auto* field = message.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr) throw Error("layer policy: no field '" + path + "'");
  const auto* reflection = message.GetReflection();
  if (field->is_repeated()) return reflection->FieldSize(message, field) > 0;
  if (!reflection->HasField(message, field)) return false;
  if (dot != std::string::npos) {
    return field_in_use(reflection->GetMessage(message, field), path.substr(dot + 1));
  }
  using FD = google::protobuf::FieldDescriptor;
  switch (field->cpp_type()) {
    case FD::CPPTYPE_STRING: return !reflection->GetString(message, field).empty();
    case FD::CPPTYPE_BOOL: return reflection->GetBool(message, field);
    default: return true;
  }
}

constexpr const char* kOptIn =
    "if you trust every file this definition names, load it with trust_io_layers=True "
    "(C++: LoadPolicy{.trust_io_layers = true})";

}  // namespace

void check_layer_policy(const caffe::LayerParameter& layer, const std::string& source,
                        const LoadPolicy& policy) {
  const std::string where = layer_text(source, layer);
  const LayerRow* row = find_layer_row(layer.type());
  if (row == nullptr) {
    const std::string fork = unknown_type_hint(layer.type());
    throw NetDefinitionError(where + ": unknown layer type" + (fork.empty() ? "" : ", " + fork) +
                             "; only the layer types listed in docs/untrusted.md (What a "
                             "definition may construct) are "
                             "constructed");
  }
  switch (row->access) {
    case A::kComputes:
      if (policy.trust_io_layers) return;
      for (const auto& field : row->file_fields) {
        if (field_in_use(layer, field.path)) {
          throw NetDefinitionError(where + ": refused, " + field.path + " " + field.effect +
                                   "; remove " + field.path + " from the definition, or " +
                                   kOptIn);
        }
      }
      return;
    case A::kTouchesFiles:
      if (policy.trust_io_layers) return;
      throw NetDefinitionError(where + ": refused, this layer type " + row->reason +
                               "; remove the layer (deploy nets take their data through Input "
                               "layers), or " + kOptIn);
    case A::kUnavailable:
      throw NetDefinitionError(where + ": refused, this layer type " + row->reason +
                               "; deploy nets take their data through Input layers");
    case A::kUnchecked:
      throw NetDefinitionError(where + ": refused, this layer type " + row->reason +
                               ", so a crafted net could corrupt memory");
    case A::kRunsCode:
      if (policy.run_python_layers) return;
      throw NetDefinitionError(where + ": refused, this layer type " + row->reason +
                               "; a loaded model never runs code unless you trust that code "
                               "and opt in: surgery.pycaffe.set_load_policy(python_layers=True) "
                               "(C++: LoadPolicy{.run_python_layers = true})");
  }
}

}  // namespace surgery
