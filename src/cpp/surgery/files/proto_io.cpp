#include "surgery/files/proto_io.hpp"

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <cstring>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/text_format.h>

#include "caffe/common.hpp"
#include "caffe/util/upgrade_proto.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/files/atomic_file.hpp"
#include "surgery/files/caffemodel_reader.hpp"
#include "surgery/files/input_file.hpp"

namespace surgery {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CopyingInputStreamAdaptor;
using google::protobuf::io::CopyingOutputStreamAdaptor;

// Keeps the first problem protobuf reports, with its position.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (message_.empty()) {
      std::ostringstream out;
      out << "line " << line + 1 << ", column " << column + 1 << ": " << message;
      message_ = out.str();
    }
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// Caffe's UpgradeNetInput turns the legacy `input` fields into an Input
// layer, reading one `input_shape` (or four `input_dim`) per input without
// checking that they exist: a short list read past its end (fuzzing found it).
// Each list must fit on its own: the V0 upgrade that runs first keeps
// input_dim and drops input_shape, so a net of V0 layers reads input_dim
// even where it also has shapes (found by the instrumented fuzz campaign).
void check_legacy_inputs(const caffe::NetParameter& net, const std::string& source) {
  const long inputs = net.input_size();
  const long shapes = net.input_shape_size(), dims = net.input_dim_size();
  const bool fits = (shapes == 0 || shapes == inputs) && (dims == 0 || dims == 4 * inputs);
  if (!fits) {
    throw ParseError("'" + source + "' declares " + std::to_string(inputs) +
                     " legacy input(s) with " + std::to_string(shapes) + " input_shape and " +
                     std::to_string(dims) + " input_dim entries: give one input_shape (or four "
                     "input_dim values) per input, or use an Input layer");
  }
}

void upgrade(caffe::NetParameter* net, const std::string& source) {
  check_legacy_inputs(*net, source);
  const bool ok = guard_caffe("upgrading '" + source + "'", [&] {
    return caffe::UpgradeNetAsNeeded(source, net);
  });
  if (!ok) {
    throw ParseError("'" + source + "' uses an old format that Caffe cannot upgrade");
  }
}

}  // namespace

caffe::NetParameter parse_net_text(const std::string& text,
                                   const std::string& source) {
  caffe::NetParameter net;
  FirstError errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &net)) {
    throw ParseError("cannot parse prototxt '" + source + "': " + errors.message());
  }
  upgrade(&net, source);
  return net;
}

caffe::SolverParameter parse_solver_text(const std::string& text, const std::string& source) {
  caffe::SolverParameter solver;
  FirstError errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &solver)) {
    throw ParseError("cannot parse solver prototxt '" + source + "': " + errors.message());
  }
  guard_caffe("upgrading '" + source + "'", [&] { caffe::UpgradeSolverAsNeeded(source, &solver); });
  return solver;
}

std::string read_text_file(const std::string& path, const char* what) {
  InputFile file(path, what);
  auto too_large = [&] {
    return FileError("'" + path + "' is larger than " + std::to_string(kMaxPrototxtBytes >> 20) +
                     " MiB: too large for a net definition (weights belong in a caffemodel)");
  };
  if (file.size() > kMaxPrototxtBytes) throw too_large();
  std::string text;
  char chunk[1 << 16];
  ssize_t n;
  while ((n = read(file.fd(), chunk, sizeof chunk)) > 0) {
    text.append(chunk, n);
    if (static_cast<int64_t>(text.size()) > kMaxPrototxtBytes) throw too_large();  // it grew
  }
  if (n < 0) throw FileError("cannot read '" + path + "': " + std::strerror(errno));
  return text;
}

caffe::NetParameter read_net_text(const std::string& path, std::optional<PairRecord>* pair) {
  const std::string text = read_text_file(path);
  if (pair) *pair = find_pair_record(text, path);
  return parse_net_text(text, path);
}

caffe::NetParameter read_net_binary(const std::string& path, FileDigest* digest) {
  InputFile file(path, "caffemodel");
  check_caffemodel_size(file.size(), path);
  caffe::NetParameter net;
  {
    std::unique_ptr<Sha256> hash(digest ? new Sha256 : nullptr);
    DigestingInput input(file.fd(), hash.get());
    CopyingInputStreamAdaptor raw(&input, 1 << 20);
    CodedInputStream coded(&raw);
    // Caffe caps models at 512 MB; VGG-16's is larger. Nothing past the
    // file's size (at most protobuf's own cap, INT_MAX) is read.
    coded.SetTotalBytesLimit(static_cast<int>(file.size()));
    if (!net.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
      throw ParseError("cannot parse caffemodel '" + path +
                       "': truncated, or not a binary NetParameter");
    }
    if (digest) {
      // Whatever protobuf left unread (nothing, at a clean end) is hashed too.
      char rest[1 << 16];
      while (input.Read(rest, sizeof rest) > 0) {
      }
      *digest = hash->finish();
    }
  }
  if (net.layer_size() == 0 && net.layers_size() == 0) {
    throw ParseError("caffemodel '" + path + "' holds no layers");
  }
  upgrade(&net, path);
  return net;
}

caffe::SolverState read_solver_state(const std::string& path) {
  InputFile file(path, "solver state");
  check_caffemodel_size(file.size(), path);
  caffe::SolverState state;
  DigestingInput input(file.fd(), nullptr);
  CopyingInputStreamAdaptor raw(&input, 1 << 20);
  CodedInputStream coded(&raw);
  coded.SetTotalBytesLimit(static_cast<int>(file.size()));
  if (!state.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
    throw ParseError("cannot parse solver state '" + path +
                     "': truncated, or not a binary SolverState");
  }
  return state;
}

StagedFile stage_net_text(const caffe::NetParameter& net, const std::string& path,
                          const std::string& header) {
  return StagedFile(path, [&](int fd) {
    DigestingOutput file(fd, nullptr);
    if (!file.Write(header.data(), static_cast<int>(header.size()))) return false;
    CopyingOutputStreamAdaptor out(&file);
    return google::protobuf::TextFormat::Print(net, &out) && out.Flush();
  });
}

void write_net_text(const caffe::NetParameter& net, const std::string& path,
                    const std::string& header) {
  stage_net_text(net, path, header).commit();
}

}  // namespace surgery
