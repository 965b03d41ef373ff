#include "surgery/definition/layer_table.hpp"

#include <utility>

#include "surgery/definition/parameter_rules.hpp"

namespace surgery {
namespace {

using A = LayerAccess;
using X = TopAxes;

// A computing type: bottoms {min, max}, tops {min, max}, how its tops' axes
// follow, its parameter rule, and the fields that would make it touch files.
LayerRow computes(const char* type, Counts bottoms, Counts tops, TopAxes top_axes,
                  ParameterRule check, std::vector<FileField> file_fields = {}) {
  return {type, A::kComputes, "", std::move(file_fields),
          ParameterRules{bottoms, tops, top_axes, check}};
}

// A type refused by default (kTouchesFiles: unless the caller trusts the
// files), and what it does that gets it refused.
LayerRow refused(const char* type, LayerAccess access, const char* reason) {
  return {type, access, reason, {}, std::nullopt};
}

}  // namespace

// Every layer type of brocolli-caffe 9.0.2 and of this library, decided by
// reading its source (LayerSetUp, Reshape, Forward). Types not registered in
// this build (OpenCV's and Python's) are listed so that their refusal says why.
const std::vector<LayerRow>& layer_table() {
  static const std::vector<LayerRow> rows = {
      // Vision and inner-product layers.
      computes("Convolution", {1, kAnyCount}, {1, kAnyCount}, X::kSame, check_convolution),
      computes("Deconvolution", {1, kAnyCount}, {1, kAnyCount}, X::kSame, check_convolution),
      computes("Im2col", {1, 1}, {1, 1}, X::kSame, check_convolution),
      computes("InnerProduct", {1, 1}, {1, 1}, X::kUnknown, check_inner_product),
      computes("Pooling", {1, 1}, {1, 2}, X::kSame, check_pooling),
      computes("SPP", {1, 1}, {1, 1}, X::kUnknown, check_spp),
      computes("LRN", {1, 1}, {1, 1}, X::kSame, check_lrn),
      computes("MVN", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("BatchNorm", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("BatchNormKyle", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Normalize", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Scale", {1, 2}, {1, 1}, X::kSame, check_scale),
      computes("Bias", {1, 2}, {1, 1}, X::kSame, check_bias),
      computes("Embed", {1, 1}, {1, 1}, X::kUnknown, check_embed),
      computes("Upsample", {1, 1}, {1, 1}, X::kSame, check_upsample),
      computes("PixelShuffle", {1, 1}, {1, 1}, X::kSame, check_pixel_shuffle),
      computes("BilinearInterpolate", {1, 1}, {1, 1}, X::kSame, check_bilinear_interpolate),
      computes("Resize", {1, 1}, {1, 1}, X::kSame, check_resize),
      computes("Pad", {1, 1}, {1, 1}, X::kSame, check_pad),
      computes("PSROIPooling", {2, 2}, {1, 1}, X::kUnknown, check_psroi_pooling),
      // Registered by this library (library_layers.hpp).
      computes("DilatedPooling", {1, 1}, {1, 1}, X::kSame, check_dilated_pooling),
      // Activations (NeuronLayer: one bottom, one top, in place allowed).
      computes("AbsVal", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("BNLL", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Dropout", {1, 1}, {1, 1}, X::kSame, check_dropout),
      computes("ELU", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Exp", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Log", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Power", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("PReLU", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("ReLU", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("ReLU6", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Sigmoid", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("TanH", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("Threshold", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("HardSigmoid", {1, 1}, {1, 1}, X::kSame, nullptr),
      computes("HardSwish", {1, 1}, {1, 1}, X::kSame, nullptr),
      // Blob plumbing.
      computes("Input", {0, 0}, {1, kAnyCount}, X::kDeclared, nullptr),
      computes("Parameter", {0, 0}, {1, 1}, X::kDeclared, check_parameter),
      computes("DummyData", {0, 0}, {1, kAnyCount}, X::kDeclared, check_dummy_data),
      computes("Split", {1, 1}, {1, kAnyCount}, X::kSame, nullptr),
      computes("Concat", {1, kAnyCount}, {1, 1}, X::kSame, check_concat),
      computes("Slice", {1, 1}, {1, kAnyCount}, X::kSame, check_slice),
      computes("Eltwise", {2, kAnyCount}, {1, 1}, X::kSame, check_eltwise),
      computes("Flatten", {1, 1}, {1, 1}, X::kUnknown, check_flatten),
      computes("Reshape", {1, 1}, {1, 1}, X::kUnknown, check_reshape),
      computes("Unsqueeze", {1, 1}, {1, 1}, X::kUnknown, check_unsqueeze),
      computes("Permute", {1, 1}, {1, 1}, X::kSame, check_permute),
      computes("Crop", {2, 2}, {1, 1}, X::kSame, check_crop),
      computes("Tile", {1, 1}, {1, 1}, X::kSame, check_tile),
      computes("Reduction", {1, 1}, {1, 1}, X::kUnknown, check_reduction),
      computes("ArgMax", {1, 1}, {1, 1}, X::kUnknown, check_argmax),
      computes("Softmax", {1, 1}, {1, 1}, X::kSame, check_softmax),
      computes("Silence", {1, kAnyCount}, {0, 0}, X::kUnknown, nullptr),
      computes("Filter", {2, kAnyCount}, {1, kAnyCount}, X::kUnknown, nullptr),
      computes("BatchReindex", {2, 2}, {1, 1}, X::kUnknown, nullptr),
      // Recurrent layers unroll into an internal net of fixed computing types.
      computes("RNN", {2, kAnyCount}, {1, kAnyCount}, X::kUnknown, check_recurrent),
      computes("LSTM", {2, kAnyCount}, {1, kAnyCount}, X::kUnknown, check_recurrent),
      computes("LSTMUnit", {3, 3}, {2, 2}, X::kUnknown, nullptr),
      // Losses and metrics: they read their bottoms only.
      computes("Accuracy", {2, 2}, {1, 2}, X::kUnknown, check_accuracy),
      computes("ContrastiveLoss", {3, 3}, {0, 1}, X::kUnknown, nullptr),
      computes("EuclideanLoss", {2, 2}, {0, 1}, X::kUnknown, nullptr),
      computes("MultinomialLogisticLoss", {2, 2}, {0, 1}, X::kUnknown, nullptr),
      computes("SigmoidCrossEntropyLoss", {2, 2}, {0, 1}, X::kUnknown, nullptr),
      computes("SmoothL1Loss", {2, 2}, {0, 1}, X::kUnknown, nullptr),
      computes("SoftmaxWithLoss", {2, 2}, {0, 2}, X::kUnknown, check_softmax),
      computes("MultiBoxLoss", {4, 4}, {0, 1}, X::kUnknown, nullptr),
      computes("InfogainLoss", {2, 3}, {0, 2}, X::kUnknown, nullptr,
               {{"infogain_loss_param.source",
                 "reads the infogain matrix from the file it names"}}),
      // Detection (SSD, R-FCN, Faster R-CNN).
      computes("PriorBox", {2, 2}, {1, 1}, X::kUnknown, nullptr),
      computes("Proposal", {3, 3}, {1, 2}, X::kUnknown, check_proposal),
      computes("DetectionOutput", {3, 4}, {1, 1}, X::kUnknown, check_detection_output,
               {{"detection_output_param.save_output_param.output_directory",
                 "deletes the folder it names recursively, then recreates it and writes into it"},
                {"detection_output_param.save_output_param.label_map_file",
                 "reads the label map file it names"},
                {"detection_output_param.save_output_param.name_size_file",
                 "reads the image list file it names"},
                {"transform_param.mean_file", "reads the mean file it names"}}),
      computes("DetectionEvaluate", {2, 2}, {1, 1}, X::kUnknown, check_detection_evaluate,
               {{"detection_evaluate_param.name_size_file", "reads the image list file it names"}}),
      // Data layers.
      computes("MemoryData", {0, 0}, {2, 2}, X::kUnknown, check_memory_data,
               {{"transform_param.mean_file", "reads the mean file it names"}}),
      refused("HDF5Data", A::kTouchesFiles,
              "opens the list file named by hdf5_data_param.source and the HDF5 files it lists"),
      refused("HDF5Output", A::kTouchesFiles,
              "creates or truncates the file named by hdf5_output_param.file_name"),
      refused("ImageData", A::kTouchesFiles,
              "reads the image list file named by image_data_param.source and the images it lists "
              "on a prefetch thread"),
      refused("WindowData", A::kTouchesFiles,
              "reads the window file named by window_data_param.source and the images it lists on "
              "a prefetch thread"),
      refused("VideoData", A::kTouchesFiles,
              "opens the video file or camera named in video_data_param on a prefetch thread"),
      refused("Data", A::kUnavailable,
              "opens an LMDB/LevelDB database on a prefetch thread; this libcaffe is built without "
              "a database backend"),
      refused("AnnotatedData", A::kUnavailable,
              "opens an LMDB/LevelDB database on a prefetch thread; this libcaffe is built without "
              "a database backend"),
      refused("MaxUnPool", A::kUnchecked,
              "writes its output at positions read from its mask bottom without bounds checks"),
      refused("HingeLoss", A::kUnchecked,
              "writes at positions read from its label bottom without bounds checks"),
      refused("Python", A::kRunsCode,
              "runs arbitrary code (the Python module named in python_param)"),
  };
  return rows;
}

const LayerRow* find_layer_row(const std::string& type) {
  for (const auto& row : layer_table()) {
    if (row.type == type) return &row;
  }
  return nullptr;
}

}  // namespace surgery
