// Which layer types a net loaded from an untrusted file may construct.
//
// An allow-list: a layer type is constructed only if the table in
// layer_policy.cpp says it computes from its bottoms and parameters alone.
// Types that open, read, write or delete files, start threads, read
// databases or run code are refused before Caffe sees the definition, and so
// are the single fields that make an otherwise computing type touch files
// (DetectionOutput's save_output_param, InfogainLoss's source, ...). A type
// the table does not know, registered or not, is refused too.
#ifndef SURGERY_LAYER_POLICY_HPP_
#define SURGERY_LAYER_POLICY_HPP_

#include <string>
#include <vector>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// What a caller allows beyond the default (pure computation).
struct LoadPolicy {
  // Also construct the layers and fields that read or write the files their
  // definition names (HDF5Data, HDF5Output, InfogainLoss's source,
  // DetectionOutput's save_output_param, ...): for training nets whose files
  // you trust. Python layers and database-backed Data layers stay refused.
  bool trust_io_layers = false;
  // Also construct Python layers, which import and run the module their
  // python_param names: for code you trust as you trust your own (pycaffe's
  // Python layers; the bindings register the "Python" type).
  bool run_python_layers = false;
};

enum class LayerAccess {
  kComputes,     // reads only its bottoms and parameters
  kTouchesFiles, // opens, reads, writes or deletes files named in its definition
  kUnavailable,  // needs what this libcaffe lacks (a database, OpenCV) or
                 // starts a thread whose failure cannot be reported
  kUnchecked,    // writes memory at positions read from its inputs, unchecked
  kRunsCode,     // runs code named in the definition
};

// A field that makes an otherwise computing type touch files when it is in
// use (a non-empty string, a true bool, any other value set).
struct FileField {
  std::string path;    // dotted, from LayerParameter: "infogain_loss_param.source"
  std::string effect;  // what Caffe does with it
};

struct LayerVerdict {
  std::string type;
  LayerAccess access;
  std::string reason;  // what the type does; empty for kComputes
  std::vector<FileField> file_fields;
};

// Every type the table knows, in table order.
const std::vector<LayerVerdict>& layer_verdicts();

// Throws NetDefinitionError, naming `source`, the layer, the reason and what
// to do, unless `policy` allows this layer as written.
void check_layer_policy(const caffe::LayerParameter& layer, const std::string& source,
                        const LoadPolicy& policy);

}  // namespace surgery

#endif  // SURGERY_LAYER_POLICY_HPP_
