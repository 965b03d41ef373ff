#include "surgery/proto_io.hpp"

#include <fcntl.h>
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
#include "surgery/atomic_file.hpp"
#include "surgery/errors.hpp"

namespace surgery {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::FileInputStream;
using google::protobuf::io::FileOutputStream;

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

class OpenFile {
 public:
  explicit OpenFile(const std::string& path) : fd_(open(path.c_str(), O_RDONLY)) {
    if (fd_ < 0) {
      throw FileError("cannot open '" + path + "': " + std::strerror(errno));
    }
  }
  ~OpenFile() { close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

void upgrade(caffe::NetParameter* net, const std::string& source) {
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

std::string read_text_file(const std::string& path) {
  OpenFile file(path);
  std::string text;
  char chunk[1 << 16];
  ssize_t n;
  while ((n = read(file.fd(), chunk, sizeof chunk)) > 0) text.append(chunk, n);
  if (n < 0) throw FileError("cannot read '" + path + "': " + std::strerror(errno));
  return text;
}

caffe::NetParameter read_net_text(const std::string& path) {
  return parse_net_text(read_text_file(path), path);
}

caffe::NetParameter read_net_binary(const std::string& path) {
  OpenFile file(path);
  caffe::NetParameter net;
  {
    FileInputStream raw(file.fd());
    CodedInputStream coded(&raw);
    // Caffe caps models at 512 MB; VGG-16's is larger. INT_MAX is protobuf's own cap.
    coded.SetTotalBytesLimit(INT_MAX);
    if (!net.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
      throw ParseError("cannot parse caffemodel '" + path +
                       "': truncated, or not a binary NetParameter");
    }
  }
  if (net.layer_size() == 0 && net.layers_size() == 0) {
    throw ParseError("caffemodel '" + path + "' holds no layers");
  }
  upgrade(&net, path);
  return net;
}

void write_net_text(const caffe::NetParameter& net, const std::string& path,
                    const std::string& header) {
  write_file_atomically(path, [&](int fd) {
    FileOutputStream out(fd);
    if (!header.empty()) {
      void* buffer = nullptr;
      int size = 0;
      std::size_t done = 0;
      while (done < header.size()) {
        if (!out.Next(&buffer, &size)) return false;
        const std::size_t n = std::min<std::size_t>(size, header.size() - done);
        std::memcpy(buffer, header.data() + done, n);
        done += n;
        if (n < static_cast<std::size_t>(size)) out.BackUp(size - static_cast<int>(n));
      }
    }
    return google::protobuf::TextFormat::Print(net, &out) && out.Flush();
  });
}

}  // namespace surgery
