#include "harness.hpp"

#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include "caffe/common.hpp"
#include "caffe/layer_factory.hpp"
#include "surgery/base/logging.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/files/proto_io.hpp"

namespace fuzz {
namespace {

std::string scratch;

// Caffe's layer registry is a static local of an inline function, and gcc
// and clang mangle its name differently (the [abi:cxx11] tag), so with
// libcaffe built by gcc (SURGERY_FUZZ_CAFFE=plain) this code and libcaffe
// would each see a registry of their own, this one empty. Emitting the
// registry's entry points here (exported: --export-dynamic) makes
// libcaffe's registrations and look-ups, which go through the PLT, use
// this side's. With the clang-built libcaffe both names agree anyway.
[[maybe_unused]] __attribute__((used)) void* const kRegistryEntryPoints[] = {
    reinterpret_cast<void*>(&caffe::LayerRegistry<float>::AddCreator),
    reinterpret_cast<void*>(&caffe::LayerRegistry<float>::CreateLayer),
    reinterpret_cast<void*>(&caffe::LayerRegistry<double>::AddCreator),
    reinterpret_cast<void*>(&caffe::LayerRegistry<double>::CreateLayer)};

// Layer types that open, read, write or delete files, or run code.
const std::set<std::string> kFileLayers = {
    "AnnotatedData", "Data", "DetectionEvaluate", "DetectionOutput", "HDF5Data",
    "HDF5Output", "ImageData", "InfogainLoss", "MemoryData", "Python",
    "VideoData", "WindowData"};

// String fields of caffe.proto that name a file, a folder or code, whatever
// layer carries them (a mutated definition may put them anywhere).
const std::set<std::string> kFileFields = {
    "source", "mean_file", "meanfile", "label_map_file", "name_size_file",
    "output_directory", "output_name_prefix", "save_file", "root_folder",
    "video_file", "file_name", "module", "layer", "param_str"};

bool names_a_file(const google::protobuf::Message& message) {
  const auto* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const auto* field : fields) {
    using Field = google::protobuf::FieldDescriptor;
    if (field->cpp_type() == Field::CPPTYPE_STRING && kFileFields.count(field->name())) {
      return true;
    }
    if (field->cpp_type() != Field::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        if (names_a_file(reflection->GetRepeatedMessage(message, field, i))) return true;
      }
    } else if (names_a_file(reflection->GetMessage(message, field))) {
      return true;
    }
  }
  return false;
}

}  // namespace

void init() {
  surgery::set_memory_limit(kMemoryLimit);
  surgery::set_caffe_log_level(3);
  caffe::Caffe::set_mode(caffe::Caffe::CPU);
  char folder[] = "/tmp/surgery-fuzz.XXXXXX";
  if (!mkdtemp(folder)) {
    throw std::runtime_error("cannot make the fuzzer's private folder");
  }
  scratch = folder;
  std::atexit([] { std::filesystem::remove_all(scratch); });
}

std::string scratch_path(const std::string& name) { return scratch + "/" + name; }

bool touches_files(const caffe::NetParameter& net) {
  for (const auto& layer : net.layer()) {
    if (kFileLayers.count(layer.type())) return true;
  }
  return names_a_file(net);
}

std::optional<caffe::NetParameter> parse(const uint8_t* data, size_t size) {
  std::optional<caffe::NetParameter> net;
  expect_typed_errors([&] {
    net = surgery::parse_net_text(std::string(reinterpret_cast<const char*>(data), size),
                                  "fuzz.prototxt");
  });
  return net;
}

}  // namespace fuzz
