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
#include "caffe/layer_factory.hpp"
#include "caffe/util/upgrade_proto.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/files/atomic_file.hpp"
#include "surgery/files/caffemodel_reader.hpp"
#include "surgery/files/digested_streams.hpp"
#include "surgery/files/file_kind.hpp"
#include "surgery/files/input_file.hpp"

namespace surgery {
namespace {

using google::protobuf::io::CodedInputStream;

// Keeps the first problem protobuf reports, with its position.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (message_.empty()) {
      line_ = line;
      std::ostringstream out;
      // Without protobuf's full stop: the message may go on (the layer around it).
      const bool stop = !message.empty() && message.back() == '.';
      out << "line " << line + 1 << ", column " << column + 1 << ": "
          << message.substr(0, message.size() - (stop ? 1 : 0));
      message_ = out.str();
    }
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& message() const { return message_; }
  int line() const { return line_; }  // 0-based; -1 before an error

 private:
  std::string message_;
  int line_ = -1;
};

class NoErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string&) override {}
};

struct LayerBlock {
  std::string name, type;
};

// The name and type of the top-level layer block of `text` that spans
// `line` (0-based), read with protobuf's own tokenizer (comments and
// strings as TextFormat reads them); nullopt where the line is in none.
std::optional<LayerBlock> layer_block_at(const std::string& text, int line) {
  using google::protobuf::io::Tokenizer;
  google::protobuf::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  NoErrors quiet;
  Tokenizer tokens(&input, &quiet);
  tokens.set_comment_style(Tokenizer::SH_COMMENT_STYLE);
  int depth = 0, start = -1;
  std::string before_brace, field;
  LayerBlock block;
  while (tokens.Next()) {
    const Tokenizer::Token& token = tokens.current();
    if (token.text == "{") {
      if (depth++ == 0 && (before_brace == "layer" || before_brace == "layers")) {
        start = token.line;
        block = {};
      }
    } else if (token.text == "}") {
      if (--depth == 0 && start >= 0) {
        if (start <= line && line <= token.line) return block;
        start = -1;
      }
      if (depth < 0) return std::nullopt;
    } else if (start >= 0 && depth == 1 && token.text != ":") {
      std::string* value = field == "name" ? &block.name : field == "type" ? &block.type : nullptr;
      if (value && token.type == Tokenizer::TYPE_STRING) {
        value->clear();
        Tokenizer::ParseStringAppend(token.text, value);
      } else if (value && token.type == Tokenizer::TYPE_IDENTIFIER) {
        *value = token.text;  // a V1 net's type enum (CONVOLUTION)
      }
      field = value ? "" : token.text;
    }
    if (token.text != ":") before_brace = token.text;
  }
  if (start >= 0 && start <= line) return block;  // the text ends inside it
  return std::nullopt;
}

// Where in the definition a parse error is, beyond its line: the layer
// block around it, and a word on layer types and fields that exist only in
// other Caffe forks.
std::string parse_error_context(const std::string& text, const FirstError& errors) {
  const auto block = layer_block_at(text, errors.line());
  if (!block) return "";
  std::string context = "; in layer '" + block->name + "' of type '" + block->type + "'";
  const std::string fork = block->type.empty() ? "" : unknown_type_hint(block->type);
  if (!fork.empty()) return context + ", " + fork;
  if (errors.message().find("no field named") != std::string::npos) {
    return context + ": a parameter this Caffe's " + block->type + " does not have (from "
                     "another Caffe fork?)";
  }
  return context;
}

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

std::string unknown_type_hint(const std::string& type) {
  if (caffe::LayerRegistry<float>::Registry().count(type) > 0) return "";
  return "which this Caffe does not have: a custom layer of another Caffe fork (ShuffleNet's "
         "ShuffleChannel, MobileNet's ConvolutionDepthwise, ...); rewrite it with standard "
         "layers or run it in that fork";
}

caffe::NetParameter parse_net_text(const std::string& text,
                                   const std::string& source) {
  caffe::NetParameter net;
  FirstError errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &net)) {
    // Protobuf's complaint about binary ("Invalid control characters") hides the usual cause.
    if (!reads_as_text(text.substr(0, kHeadBytes))) {
      throw ParseError("cannot parse prototxt '" + source + "': it is binary, not text (a "
                       "caffemodel?): " + kSwappedHint);
    }
    throw ParseError("cannot parse prototxt '" + source + "': " + errors.message() +
                     parse_error_context(text, errors));
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
    // A caffemodel given as the definition is the usual way to get here.
    const bool swapped = std::string(what) == "prototxt" && !reads_as_text(file_head(file.fd()));
    return FileError("'" + path + "' is larger than " + std::to_string(kMaxPrototxtBytes >> 20) +
                     " MiB: too large for a net definition (weights belong in a caffemodel)" +
                     (swapped ? std::string("; it is binary: ") + kSwappedHint : ""));
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
  check_caffemodel_file(file, path);
  caffe::NetParameter net;
  std::unique_ptr<DigestThread> hash(digest ? new DigestThread : nullptr);
  DigestedInput raw(file.fd(), hash ? hash->spans() : nullptr);
  {
    CodedInputStream coded(&raw);
    // Caffe caps models at 512 MB; VGG-16's is larger. Nothing past the
    // file's size (at most protobuf's own cap, INT_MAX) is read.
    coded.SetTotalBytesLimit(static_cast<int>(file.size()));
    if (!net.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
      throw ParseError("cannot parse caffemodel '" + path +
                       "': truncated, or not a binary NetParameter");
    }
  }
  if (digest) {
    // Whatever protobuf left unread (nothing, at a clean end) is hashed too.
    const void* rest;
    int size;
    while (raw.Next(&rest, &size)) {
    }
    *digest = hash->finish();
  }
  if (net.layer_size() == 0 && net.layers_size() == 0) {
    throw ParseError("caffemodel '" + path + "' holds no layers");
  }
  upgrade(&net, path);
  return net;
}

StagedFile stage_net_text(const caffe::NetParameter& net, const std::string& path,
                          const std::string& header) {
  return StagedFile(path, [&](int fd) {
    DigestedOutput file(fd, nullptr);
    if (file.WriteAliasedRaw(header.data(), static_cast<int>(header.size())) &&
        google::protobuf::TextFormat::Print(net, &file) && file.Flush()) {
      return true;
    }
    errno = file.error();  // what StagedFile reports
    return false;
  });
}

void write_net_text(const caffe::NetParameter& net, const std::string& path,
                    const std::string& header) {
  stage_net_text(net, path, header).commit();
}

}  // namespace surgery
