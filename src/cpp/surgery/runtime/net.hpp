// surgery::Net: a Caffe net with its definition, loaded with validation so
// bad input raises surgery::Error instead of aborting the process.
//
// Like caffe::Net, a surgery::Net is single-threaded: it takes no lock, and
// one thread at a time may use it (views handed out by blob() and params()
// included). A caller sharing a net between threads serializes every call
// itself; the Python binding does so in one place (bindings/net_guard.hpp).
#ifndef SURGERY_NET_HPP_
#define SURGERY_NET_HPP_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "caffe/net.hpp"
#include "caffe/proto/caffe.pb.h"
#include "surgery/definition/layer_policy.hpp"
#include "surgery/files/pair_record.hpp"
#include "surgery/files/window_record.hpp"
#include "surgery/kernels/fastest_convolution.hpp"
#include "surgery/kernels/onednn_convolution.hpp"
#include "surgery/kernels/winograd_convolution.hpp"
#include "surgery/runtime/live_net.hpp"

namespace surgery {

// What to do with a net that still ends in a classifier (an InnerProduct
// that takes one input size), spelled once for every message that says it.
extern const char* const kUnconvertedHint;

class EarlyDigest;  // files/early_digest.hpp

struct LayerInfo {
  std::string name;
  std::string type;
  std::vector<std::string> bottoms;
  std::vector<std::string> tops;
};

// How forward() computes Convolution layers on the CPU. kCaffe: Caffe's
// im2col + GEMM, Caffe's results bit for bit. kWinograd: the layers
// winograd_convolution.hpp computes (3x3, 5x5, 6x6, 7x7 kernels at stride
// 1) with fewer multiplications, rounding differently (about 1e-5 of the
// output's scale), the others as kCaffe. kOneDnn: the layers
// onednn_convolution.hpp computes (any 2-D convolution oneDNN has a kernel
// for), rounding differently too. kFastest: each layer by whichever of the
// three measured fastest on it (fastest_convolution.hpp). A choice of how
// to run the net, not part of its definition: save() writes the same files
// either way.
enum class ConvolutionAlgorithm { kCaffe, kWinograd, kOneDnn, kFastest };

// A borrowed, contiguous float tensor handed to forward().
struct InputView {
  std::vector<int> shape;
  const float* data;
};

class Net {
 public:
  // Loads a text prototxt and, if `weights` is not empty, a caffemodel.
  // `policy` says which layer types may be constructed (layer_policy.hpp). If
  // the prototxt was saved by save() together with a caffemodel of the same
  // file name as `weights`, that file's size and SHA-256 must match what
  // the prototxt records (pair_record.hpp), else ParseError names both.
  Net(const std::string& prototxt, const std::string& weights = "",
      caffe::Phase phase = caffe::TEST, const LoadPolicy& policy = {});
  // Builds from a parsed definition; `source` names it in messages.
  Net(caffe::NetParameter definition, std::string source,
      caffe::Phase phase = caffe::TEST, const LoadPolicy& policy = {});
  // The same for a whole state: the layers whose include/exclude rules
  // match its phase, level and stages (pycaffe's Net(..., level=, stages=)).
  Net(const std::string& prototxt, const std::string& weights, const caffe::NetState& state,
      const LoadPolicy& policy);
  Net(caffe::NetParameter definition, std::string source, const caffe::NetState& state,
      const LoadPolicy& policy);
  ~Net();
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;

  // Copies trained weights, matched to layers by name as Caffe does (layers
  // the file lacks keep their values). Everything is checked before the
  // first byte is copied: a mismatch raises ShapeError naming the layer and
  // both shapes, and the net is left as it was.
  void load_weights(const std::string& caffemodel);
  void load_weights(const caffe::NetParameter& weights, const std::string& source);

  // Layers that received weights from a file, and the last such file ("" if none).
  const std::set<std::string>& loaded_layers() const { return loaded_layers_; }
  const std::string& weights_source() const { return weights_source_; }

  std::vector<LayerInfo> layers() const;
  std::vector<std::string> blob_names() const;
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
  // Lookups by name; an unknown name raises surgery::Error. params() hands
  // out the weights to write into: each call counts as a change of the
  // layer's weights (kWinograd transforms them again at the next forward),
  // as do load_weights(), live_net() and caffe_net().
  caffe::Blob<float>& blob(const std::string& name) const;
  const std::vector<caffe::shared_ptr<caffe::Blob<float>>>& params(
      const std::string& layer) const;
  bool has_params(const std::string& layer) const;

  // kCaffe unless set; also drops the copies of the weights the other
  // algorithms keep (Winograd's transformed, oneDNN's packed weights).
  void set_convolution_algorithm(ConvolutionAlgorithm algorithm);
  ConvolutionAlgorithm convolution_algorithm() const { return algorithm_; }
  // The layers the last forward computed with the algorithm's own engine
  // rather than Caffe's path, in net order (none for kCaffe).
  std::vector<std::string> engine_layers() const;

  // Gives the named inputs new shapes and reshapes every layer. If Caffe
  // refuses the new shapes, the old ones are restored and ShapeError raised;
  // so they are, before Caffe sees them, where an input's channels differ
  // from the declared ones (an HWC image), an InnerProduct would get
  // another number of values than its weights take (kUnconvertedHint), or
  // a Concat's branches would disagree in size.
  void reshape(const std::map<std::string, std::vector<int>>& shapes);
  // Copies the inputs in (reshaping first where shapes differ), then runs
  // the layers in order. Between two layers it asks `interrupted` (if
  // given); a true answer stops the pass with surgery::Interrupted, leaving
  // the net usable (its blobs hold a partial pass until the next forward).
  void forward(const std::map<std::string, InputView>& inputs,
               const std::function<bool()>& interrupted = {});
  // Milliseconds each layer of the running net (Caffe's Split layers
  // included) took in the last forward, in order (wall clock; in GPU mode
  // the host's time to launch it, the device running behind). Layers an
  // interrupted pass did not reach read 0; empty before the first forward.
  std::vector<std::pair<std::string, double>> layer_times() const;
  // How many forwards have run (or begun): views of blobs taken before the
  // last one may hold other data now.
  uint64_t forward_count() const { return forwards_; }

  // Writes the definition as text and the weights as binary, each atomically
  // (atomic_file.hpp: regular files only, symlinks followed, modes kept,
  // read-only files refused). Either path may be empty to skip that file,
  // not both. Saving both makes a pair: the weights and the prototxt are
  // staged, then the prototxt (whose first line records the weights' size
  // and SHA-256) is renamed into place, then the weights; a kill between the
  // two renames leaves a pair that refuses to load, never a silent mix.
  // Refused before anything is written (Error, FileError): the same file for
  // both, a weights name with a text suffix (.prototxt, .pbtxt, .txt) or a
  // prototxt named .caffemodel (swapped arguments), and, unless `overwrite`,
  // either file this net was loaded from.
  void save(const std::string& prototxt, const std::string& caffemodel,
            bool overwrite = false) const;

  // Shapes of the inputs as the definition declares them.
  std::map<std::string, std::vector<int>> declared_input_shapes() const;

  const caffe::NetParameter& definition() const { return definition_; }
  // The definition with only this state's layers, as Caffe builds it.
  caffe::NetParameter filtered_definition() const;
  const std::string& source() const { return source_; }
  // The window our surgery recorded (the classifier's input), read from the
  // prototxt's header and written back by save() (window_record.hpp).
  const RecordedWindow& recorded_window() const { return recorded_window_; }
  void set_recorded_window(const RecordedWindow& window) { recorded_window_ = window; }
  caffe::Phase phase() const { return state_.phase(); }
  const caffe::NetState& state() const { return state_; }
  caffe::Net<float>& caffe_net() const {
    ++weights_generation_;
    return *net_;
  }

  // For net surgery (fully_convolutional.hpp), which edits both in step.
  caffe::NetParameter& mutable_definition() { return definition_; }
  LiveNet& live_net() {
    ++weights_generation_;
    return *net_;
  }

 private:
  // What a prototxt file holds: the definition and the records in its
  // opening comment lines (pair_record.hpp, window_record.hpp).
  struct DefinitionFile {
    caffe::NetParameter definition;
    std::optional<PairRecord> pair;
    RecordedWindow window;
  };
  static DefinitionFile read_definition(const std::string& prototxt);
  Net(DefinitionFile file, const std::string& prototxt, const std::string& weights,
      const caffe::NetState& state, const LoadPolicy& policy);
  // Builds net_ from the definition; the fillers of the layers in `filled`
  // (those a weights file about to be loaded holds) are skipped where that
  // changes no other layer's values (skipped_fillers.hpp). Returns the
  // layers built without their fillers.
  std::set<std::string> build(const LoadPolicy& policy, const std::set<std::string>& filled);
  // Loads a weights file into a fresh net, checked against the pair record
  // of the prototxt it was loaded with, if it applies; `early`, if not null,
  // has been digesting the file since before the net was built.
  void load_paired_weights(const std::string& weights, const std::optional<PairRecord>& record,
                           EarlyDigest* early);
  // `digest`, if not null, receives the size and SHA-256 of the bytes loaded
  // (taken by `early` where it is not null: then `digest` must not be).
  void load_weights_file(const std::string& weights, FileDigest* digest, EarlyDigest* early);
  void check_save_targets(const std::string& prototxt, const std::string& caffemodel,
                          bool overwrite) const;
  std::vector<int> shape_of(const std::string& blob) const;
  // ShapeError where `shape` gives `input` other channels than declared.
  void check_channels(const std::string& input, const std::vector<int>& shape) const;
  // Layer `layer` by the algorithm's engine, applying the ReLU after it if
  // `relu` (fusable_relu) and the engine fuses ReLU; false if Caffe should
  // run it. relu_fused: whether the last forward_by_engine applied it.
  bool forward_by_engine(int layer, bool relu);
  bool relu_fused(int layer) const;

  caffe::NetParameter definition_;
  std::string source_;
  caffe::NetState state_;
  std::unique_ptr<LiveNet> net_;
  std::set<std::string> loaded_layers_;
  uint64_t forwards_ = 0;
  std::string weights_source_;
  RecordedWindow recorded_window_;
  std::vector<double> layer_ms_;
  ConvolutionAlgorithm algorithm_ = ConvolutionAlgorithm::kCaffe;
  WinogradLayers winograd_;
  OneDnnLayers onednn_;
  FastestLayers fastest_;
  // Counts the ways the weights may have been written (see params()).
  mutable uint64_t weights_generation_ = 0;
};

}  // namespace surgery

#endif  // SURGERY_NET_HPP_
