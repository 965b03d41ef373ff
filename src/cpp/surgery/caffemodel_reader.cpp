#include "surgery/caffemodel_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/wire_format_lite.h>

#include "surgery/caffemodel_wire.hpp"
#include "surgery/errors.hpp"
#include "surgery/weights_check.hpp"

namespace surgery {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;
using namespace wire;  // NOLINT: the field numbers read like caffe.proto

struct NeedsGeneral {};

class Reader {
 public:
  Reader(caffe::Net<float>& net, const std::string& path, CodedInputStream* in)
      : net_(net), path_(path), in_(*in) {}

  void read_net(std::set<std::string>* loaded) {
    while (const uint32_t tag = in_.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(tag);
      if (field == kNetLayers) throw NeedsGeneral{};
      if (field == kNetLayer && WireFormatLite::GetTagWireType(tag) ==
                                    WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        const auto limit = push_length();
        read_layer(loaded);
        pop(limit);
      } else {
        skip(tag);
      }
    }
    if (!in_.ConsumedEntireMessage()) truncated();
    if (layers_seen_ == 0) throw ParseError("caffemodel '" + path_ + "' holds no layers");
  }

 private:
  void read_layer(std::set<std::string>* loaded) {
    ++layers_seen_;
    std::string name, type;
    caffe::Layer<float>* target = nullptr;
    int blobs = 0;
    while (const uint32_t tag = in_.ReadTag()) {
      switch (WireFormatLite::GetTagFieldNumber(tag)) {
        case kLayerName: read_string(&name); break;
        case kLayerType: read_string(&type); break;
        case kLayerBlobs: {
          if (name.empty()) throw NeedsGeneral{};  // blobs before the name: unusual writer
          if (blobs == 0) target = find(name, type);
          const auto limit = push_length();
          if (target) {
            read_blob(*target, name, type, blobs);
          } else if (!in_.Skip(in_.BytesUntilLimit())) {
            truncated();
          }
          pop(limit);
          ++blobs;
          break;
        }
        default: skip(tag);
      }
    }
    if (!target) return;
    check_blob_count(where(name), blobs, static_cast<int>(target->blobs().size()));
    loaded->insert(name);
  }

  caffe::Layer<float>* find(const std::string& name, const std::string& type) {
    if (net_.has_layer(name)) return net_.layer_by_name(name).get();
    // Possibly renamed by surgery (fc6 -> fc6-conv): plan_weight_copy knows how.
    if (type == "InnerProduct") throw NeedsGeneral{};
    return nullptr;
  }

  void read_blob(caffe::Layer<float>& layer, const std::string& name, const std::string& type,
                 int index) {
    if (index >= static_cast<int>(layer.blobs().size())) {
      std::ostringstream out;
      out << where(name) << ": the file has more parameter blobs than the net's layer ("
          << layer.blobs().size() << ")";
      throw ShapeError(out.str());
    }
    caffe::Blob<float>& blob = *layer.blobs()[index];
    std::vector<int64_t> shape, legacy(4, 0);
    bool has_legacy = false;
    int64_t values = 0;
    while (const uint32_t tag = in_.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(tag);
      const auto wire = WireFormatLite::GetTagWireType(tag);
      if (field >= kBlobNum && field <= kBlobWidth) {
        uint64_t v;
        if (!in_.ReadVarint64(&v)) truncated();
        legacy[field - kBlobNum] = static_cast<int64_t>(v);
        has_legacy = true;
      } else if (field == kBlobData && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        uint32_t bytes;
        if (!in_.ReadVarint32(&bytes)) truncated();
        values = bytes / sizeof(float);
        // A blob of another size is skipped, so the error can name both
        // shapes once the file's shape (stored after the data) is read.
        const bool fits = values == blob.count();
        if (!(fits ? in_.ReadRaw(blob.mutable_cpu_data(), static_cast<int>(bytes))
                   : in_.Skip(static_cast<int>(bytes)))) {
          truncated();
        }
      } else if (field == kBlobShape && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        const auto limit = push_length();
        read_dims(&shape);
        pop(limit);
      } else if (field == kBlobDoubleData || field == kBlobData) {
        throw NeedsGeneral{};  // doubles, or floats not packed
      } else {
        skip(tag);
      }
    }
    if (has_legacy) shape = legacy;
    const bool ip_to_conv = type == "InnerProduct" && std::string(layer.type()) == "Convolution";
    check_blob_fits(where(name), index, shape, values, ip_to_conv, blob);
  }

  void read_dims(std::vector<int64_t>* dims) {
    while (const uint32_t tag = in_.ReadTag()) {
      if (WireFormatLite::GetTagFieldNumber(tag) != kShapeDim) {
        skip(tag);
      } else if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        const auto limit = push_length();
        while (in_.BytesUntilLimit() > 0) dims->push_back(read_varint());
        pop(limit);
      } else {
        dims->push_back(read_varint());
      }
    }
  }

  int64_t read_varint() {
    uint64_t v;
    if (!in_.ReadVarint64(&v)) truncated();
    return static_cast<int64_t>(v);
  }

  void read_string(std::string* out) {
    uint32_t length;
    if (!in_.ReadVarint32(&length) || !in_.ReadString(out, static_cast<int>(length))) truncated();
  }

  CodedInputStream::Limit push_length() {
    uint32_t length;
    if (!in_.ReadVarint32(&length)) truncated();
    return in_.PushLimit(static_cast<int>(length));
  }

  void pop(CodedInputStream::Limit limit) {
    if (in_.BytesUntilLimit() != 0) truncated();
    in_.PopLimit(limit);
  }

  void skip(uint32_t tag) {
    if (!WireFormatLite::SkipField(&in_, tag)) truncated();
  }

  [[noreturn]] void truncated() {
    throw ParseError("cannot parse caffemodel '" + path_ +
                     "': truncated, or not a binary NetParameter");
  }

  std::string where(const std::string& layer) const {
    return "weights '" + path_ + "', layer '" + layer + "'";
  }

  caffe::Net<float>& net_;
  const std::string& path_;
  CodedInputStream& in_;
  int layers_seen_ = 0;
};

}  // namespace

StreamResult stream_caffemodel(caffe::Net<float>& net, const std::string& path,
                               std::set<std::string>* loaded) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) throw FileError("cannot open '" + path + "': " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  google::protobuf::io::FileInputStream file(fd, 1 << 20);
  CodedInputStream in(&file);
  in.SetTotalBytesLimit(INT_MAX);
  try {
    Reader(net, path, &in).read_net(loaded);
  } catch (const NeedsGeneral&) {
    loaded->clear();
    return StreamResult::kNeedsGeneral;
  }
  return StreamResult::kLoaded;
}

}  // namespace surgery
