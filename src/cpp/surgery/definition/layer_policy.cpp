#include "surgery/definition/layer_policy.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "surgery/base/errors.hpp"
#include "surgery/base/name_text.hpp"

namespace surgery {
namespace {

using A = LayerAccess;

// Every layer type of brocolli-caffe 9.0.2 and of this library, decided by
// reading its source (LayerSetUp, Reshape, Forward). Types not registered in this build
// (OpenCV's and Python's) are listed so that their refusal says why.
const std::vector<LayerVerdict>& table() {
  static const std::vector<LayerVerdict> verdicts = {
      // Vision and inner-product layers.
      {"Convolution", A::kComputes, "", {}},
      {"Deconvolution", A::kComputes, "", {}},
      {"Im2col", A::kComputes, "", {}},
      {"InnerProduct", A::kComputes, "", {}},
      {"Pooling", A::kComputes, "", {}},
      {"SPP", A::kComputes, "", {}},
      {"LRN", A::kComputes, "", {}},
      {"MVN", A::kComputes, "", {}},
      {"BatchNorm", A::kComputes, "", {}},
      {"BatchNormKyle", A::kComputes, "", {}},
      {"Normalize", A::kComputes, "", {}},
      {"Scale", A::kComputes, "", {}},
      {"Bias", A::kComputes, "", {}},
      {"Embed", A::kComputes, "", {}},
      {"Upsample", A::kComputes, "", {}},
      {"PixelShuffle", A::kComputes, "", {}},
      {"BilinearInterpolate", A::kComputes, "", {}},
      {"Resize", A::kComputes, "", {}},
      {"Pad", A::kComputes, "", {}},
      {"PSROIPooling", A::kComputes, "", {}},
      // Registered by this library (library_layers.hpp).
      {"DilatedPooling", A::kComputes, "", {}},
      // Activations (NeuronLayer: one bottom, one top, in place allowed).
      {"AbsVal", A::kComputes, "", {}},
      {"BNLL", A::kComputes, "", {}},
      {"Dropout", A::kComputes, "", {}},
      {"ELU", A::kComputes, "", {}},
      {"Exp", A::kComputes, "", {}},
      {"Log", A::kComputes, "", {}},
      {"Power", A::kComputes, "", {}},
      {"PReLU", A::kComputes, "", {}},
      {"ReLU", A::kComputes, "", {}},
      {"ReLU6", A::kComputes, "", {}},
      {"Sigmoid", A::kComputes, "", {}},
      {"TanH", A::kComputes, "", {}},
      {"Threshold", A::kComputes, "", {}},
      {"HardSigmoid", A::kComputes, "", {}},
      {"HardSwish", A::kComputes, "", {}},
      // Blob plumbing.
      {"Input", A::kComputes, "", {}},
      {"Parameter", A::kComputes, "", {}},
      {"DummyData", A::kComputes, "", {}},
      {"Split", A::kComputes, "", {}},
      {"Concat", A::kComputes, "", {}},
      {"Slice", A::kComputes, "", {}},
      {"Eltwise", A::kComputes, "", {}},
      {"Flatten", A::kComputes, "", {}},
      {"Reshape", A::kComputes, "", {}},
      {"Unsqueeze", A::kComputes, "", {}},
      {"Permute", A::kComputes, "", {}},
      {"Crop", A::kComputes, "", {}},
      {"Tile", A::kComputes, "", {}},
      {"Reduction", A::kComputes, "", {}},
      {"ArgMax", A::kComputes, "", {}},
      {"Softmax", A::kComputes, "", {}},
      {"Silence", A::kComputes, "", {}},
      {"Filter", A::kComputes, "", {}},
      {"BatchReindex", A::kComputes, "", {}},
      // Recurrent layers unroll into an internal net of fixed computing types.
      {"RNN", A::kComputes, "", {}},
      {"LSTM", A::kComputes, "", {}},
      {"LSTMUnit", A::kComputes, "", {}},
      // Losses and metrics: they read their bottoms only.
      {"Accuracy", A::kComputes, "", {}},
      {"ContrastiveLoss", A::kComputes, "", {}},
      {"EuclideanLoss", A::kComputes, "", {}},
      {"MultinomialLogisticLoss", A::kComputes, "", {}},
      {"SigmoidCrossEntropyLoss", A::kComputes, "", {}},
      {"SmoothL1Loss", A::kComputes, "", {}},
      {"SoftmaxWithLoss", A::kComputes, "", {}},
      {"MultiBoxLoss", A::kComputes, "", {}},
      {"InfogainLoss", A::kComputes, "",
       {{"infogain_loss_param.source", "reads the infogain matrix from the file it names"}}},
      // Detection (SSD, R-FCN, Faster R-CNN).
      {"PriorBox", A::kComputes, "", {}},
      {"Proposal", A::kComputes, "", {}},
      {"DetectionOutput", A::kComputes, "",
       {{"detection_output_param.save_output_param.output_directory",
         "deletes the folder it names recursively, then recreates it and writes into it"},
        {"detection_output_param.save_output_param.label_map_file",
         "reads the label map file it names"},
        {"detection_output_param.save_output_param.name_size_file",
         "reads the image list file it names"},
        {"transform_param.mean_file", "reads the mean file it names"}}},
      {"DetectionEvaluate", A::kComputes, "",
       {{"detection_evaluate_param.name_size_file", "reads the image list file it names"}}},
      // Data layers.
      {"MemoryData", A::kComputes, "",
       {{"transform_param.mean_file", "reads the mean file it names"}}},
      {"HDF5Data", A::kTouchesFiles,
       "opens the list file named by hdf5_data_param.source and the HDF5 files it lists",
       {}},
      {"HDF5Output", A::kTouchesFiles,
       "creates or truncates the file named by hdf5_output_param.file_name", {}},
      {"ImageData", A::kTouchesFiles,
       "reads the image list file named by image_data_param.source and the images it lists "
       "on a prefetch thread",
       {}},
      {"WindowData", A::kTouchesFiles,
       "reads the window file named by window_data_param.source and the images it lists on "
       "a prefetch thread",
       {}},
      {"VideoData", A::kTouchesFiles,
       "opens the video file or camera named in video_data_param on a prefetch thread", {}},
      {"Data", A::kUnavailable,
       "opens an LMDB/LevelDB database on a prefetch thread; this libcaffe is built without "
       "a database backend",
       {}},
      {"AnnotatedData", A::kUnavailable,
       "opens an LMDB/LevelDB database on a prefetch thread; this libcaffe is built without "
       "a database backend",
       {}},
      {"MaxUnPool", A::kUnchecked,
       "writes its output at positions read from its mask bottom without bounds checks",
       {}},
      {"HingeLoss", A::kUnchecked,
       "writes at positions read from its label bottom without bounds checks", {}},
      {"Python", A::kRunsCode, "runs arbitrary code (the Python module named in python_param)", {}},
  };
  return verdicts;
}

const LayerVerdict* find_verdict(const std::string& type) {
  for (const auto& verdict : table()) {
    if (verdict.type == type) return &verdict;
  }
  return nullptr;
}

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

const std::vector<LayerVerdict>& layer_verdicts() { return table(); }

void check_layer_policy(const caffe::LayerParameter& layer, const std::string& source,
                        const LoadPolicy& policy) {
  const std::string where = layer_text(source, layer);
  const LayerVerdict* verdict = find_verdict(layer.type());
  if (verdict == nullptr) {
    throw NetDefinitionError(where + ": unknown layer type; only the layer types listed in "
                             "the README's load policy are constructed");
  }
  switch (verdict->access) {
    case A::kComputes:
      if (policy.trust_io_layers) return;
      for (const auto& field : verdict->file_fields) {
        if (field_in_use(layer, field.path)) {
          throw NetDefinitionError(where + ": refused, " + field.path + " " + field.effect +
                                   "; remove " + field.path + " from the definition, or " +
                                   kOptIn);
        }
      }
      return;
    case A::kTouchesFiles:
      if (policy.trust_io_layers) return;
      throw NetDefinitionError(where + ": refused, this layer type " + verdict->reason +
                               "; remove the layer (deploy nets take their data through Input "
                               "layers), or " + kOptIn);
    case A::kUnavailable:
      throw NetDefinitionError(where + ": refused, this layer type " + verdict->reason +
                               "; deploy nets take their data through Input layers");
    case A::kUnchecked:
      throw NetDefinitionError(where + ": refused, this layer type " + verdict->reason +
                               ", so a crafted net could corrupt memory");
    case A::kRunsCode:
      if (policy.run_python_layers) return;
      throw NetDefinitionError(where + ": refused, this layer type " + verdict->reason +
                               "; a loaded model never runs code unless you trust that code "
                               "and opt in: surgery.pycaffe.set_load_policy(python_layers=True) "
                               "(C++: LoadPolicy{.run_python_layers = true})");
  }
}

}  // namespace surgery
