#include "surgery/files/caffemodel_reader.hpp"

#include <climits>
#include <optional>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/wire_format_lite.h>

#include "surgery/base/errors.hpp"
#include "surgery/files/caffemodel_wire.hpp"
#include "surgery/files/digested_streams.hpp"
#include "surgery/files/file_kind.hpp"
#include "surgery/files/input_file.hpp"
#include "surgery/files/weights_check.hpp"

namespace surgery {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;
using namespace wire;  // NOLINT: the field numbers read like caffe.proto

struct NeedsGeneral {};

class Reader {
 public:
  Reader(caffe::Net<float>& net, const std::string& path, DigestedInput* file,
         CodedInputStream* in)
      : net_(net), path_(path), file_(*file), in_(*in) {}

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
        case kLayerName: read_string(tag, blobs, &name); break;
        case kLayerType: read_string(tag, blobs, &type); break;
        case kLayerBlobs: {
          // Blobs before the name: unusual writer.
          if (name.empty() || !length_delimited(tag)) throw NeedsGeneral{};
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
    bool has_legacy = false, has_data = false;
    int64_t values = 0;
    while (const uint32_t tag = in_.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(tag);
      const auto wire = WireFormatLite::GetTagWireType(tag);
      if (field >= kBlobNum && field <= kBlobWidth && wire == WireFormatLite::WIRETYPE_VARINT) {
        // int32 fields: a negative value arrives sign-extended to 64 bits.
        legacy[field - kBlobNum] = read_varint();
        has_legacy = true;
      } else if (field == kBlobData && wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        // A second packed run appends to the first: left to protobuf.
        if (has_data) throw NeedsGeneral{};
        has_data = true;
        const int64_t bytes = read_length();
        if (bytes % static_cast<int64_t>(sizeof(float)) != 0) {
          std::ostringstream out;
          out << where(name) << ", param " << index << ": " << bytes
              << " bytes of float data is not a whole number of 4-byte floats";
          throw ParseError(out.str());
        }
        values = bytes / static_cast<int64_t>(sizeof(float));
        // Only exactly count() floats are written into the blob. A blob of
        // another size is skipped, so the error can name both shapes once the
        // file's shape (stored after the data) is read.
        const bool fits = values == blob.count();
        if (!(fits ? read_raw_direct(in_, file_, blob.mutable_cpu_data(), static_cast<int>(bytes))
                   : in_.Skip(static_cast<int>(bytes)))) {
          truncated();
        }
      } else if (field >= kBlobNum && field <= kBlobWidth) {
        throw NeedsGeneral{};  // a known field with another wire type: protobuf's rules
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
      } else if (length_delimited(tag)) {
        const auto limit = push_length();
        while (in_.BytesUntilLimit() > 0) add_dim(dims);
        pop(limit);
      } else if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
        add_dim(dims);
      } else {
        skip(tag);  // as protobuf treats a known field of another wire type
      }
    }
  }

  // The values are range-checked with the shape (check_blob_fits); the
  // number of axes here, so a file cannot grow this vector without bound.
  void add_dim(std::vector<int64_t>* dims) {
    if (dims->size() >= static_cast<size_t>(::kMaxBlobAxes)) {
      throw ParseError("caffemodel '" + path_ + "': a blob shape with more than " +
                       std::to_string(::kMaxBlobAxes) + " axes");
    }
    dims->push_back(read_varint());
  }

  static bool length_delimited(uint32_t tag) {
    return WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  }

  int64_t read_varint() {
    uint64_t v;
    if (!in_.ReadVarint64(&v)) truncated();
    return static_cast<int64_t>(v);
  }

  // A name after the layer's blobs would, for protobuf, rename the layer the
  // blobs already went to: left to the general reader.
  void read_string(uint32_t tag, int blobs_read, std::string* out) {
    if (!length_delimited(tag) || blobs_read > 0) throw NeedsGeneral{};
    if (!in_.ReadString(out, static_cast<int>(read_length()))) truncated();
  }

  // A length prefix, read as 64 bits and bounded by what is left of the
  // enclosing message (the whole file at the top), so that it fits an int
  // and never reaches past its parent.
  int64_t read_length() {
    uint64_t length;
    if (!in_.ReadVarint64(&length)) truncated();
    const int left = in_.BytesUntilLimit();
    if (left < 0 || length > static_cast<uint64_t>(left)) {
      std::ostringstream out;
      out << "cannot parse caffemodel '" << path_ << "': truncated or corrupt: a field claims "
          << length << " bytes where its enclosing message has " << left << " left";
      throw ParseError(out.str());
    }
    return static_cast<int64_t>(length);
  }

  CodedInputStream::Limit push_length() {
    return in_.PushLimit(static_cast<int>(read_length()));
  }

  void pop(CodedInputStream::Limit limit) {
    if (in_.BytesUntilLimit() != 0) truncated();
    in_.PopLimit(limit);
  }

  // Unknown fields: a length is checked as strictly as a known field's.
  void skip(uint32_t tag) {
    if (length_delimited(tag)) {
      if (!in_.Skip(static_cast<int>(read_length()))) truncated();
    } else if (!WireFormatLite::SkipField(&in_, tag)) {
      truncated();
    }
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
  DigestedInput& file_;
  CodedInputStream& in_;
  int layers_seen_ = 0;
};

// A layer message's name if it has blobs, "" if it has none; nullopt if it
// names itself after its blobs or is cut short.
std::optional<std::string> named_with_blobs(CodedInputStream& in) {
  std::string name;
  bool blobs = false;
  while (const uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (field == kLayerName && delimited) {
      uint32_t length;
      if (blobs || !in.ReadVarint32(&length) || length > static_cast<uint32_t>(in.BytesUntilLimit()) ||
          !in.ReadString(&name, static_cast<int>(length))) {
        return std::nullopt;
      }
    } else {
      blobs |= field == kLayerBlobs;
      if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
    }
  }
  return blobs ? name : "";
}

}  // namespace

std::set<std::string> caffemodel_layer_names(const std::string& path) {
  std::set<std::string> names;
  try {
    InputFile file(path, "caffemodel");
    if (file.size() > INT_MAX) return {};
    // Its Skip seeks: the scan reads the heads, a few KB of a 500 MB file.
    google::protobuf::io::FileInputStream raw(file.fd());
    CodedInputStream in(&raw);
    in.PushLimit(static_cast<int>(file.size()));
    while (const uint32_t tag = in.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(tag);
      if (field == kNetLayers) return {};
      if (field != kNetLayer ||
          WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        if (!WireFormatLite::SkipField(&in, tag)) return {};
        continue;
      }
      uint32_t length;
      if (!in.ReadVarint32(&length) || length > static_cast<uint32_t>(in.BytesUntilLimit())) {
        return {};
      }
      const auto limit = in.PushLimit(static_cast<int>(length));
      const auto name = named_with_blobs(in);
      if (!name || in.BytesUntilLimit() != 0) return {};
      in.PopLimit(limit);
      if (!name->empty()) names.insert(*name);
    }
  } catch (const Error&) {
    return {};
  }
  return names;
}

void check_caffemodel_file(const InputFile& file, const std::string& path) {
  if (file.size() > INT_MAX) {
    throw ParseError("caffemodel '" + path + "' is " + std::to_string(file.size()) +
                     " bytes: protobuf reads at most 2 GiB - 1");
  }
  const std::string head = file_head(file.fd());
  if (!head.empty() && reads_as_text(head)) {
    throw ParseError("caffemodel '" + path + "' is text, not binary weights (a prototxt?): " +
                     kSwappedHint);
  }
}

namespace {

// Streams `path` into `net`; `hash`, if not null, takes every byte read.
StreamResult stream_into(caffe::Net<float>& net, const std::string& path,
                         std::set<std::string>* loaded, SpanThread* hash) {
  InputFile file(path, "caffemodel");
  check_caffemodel_file(file, path);
  DigestedInput stream(file.fd(), hash);
  CodedInputStream in(&stream);
  in.SetTotalBytesLimit(INT_MAX);
  // Every length is checked against this limit (the file's size at opening).
  in.PushLimit(static_cast<int>(file.size()));
  try {
    Reader(net, path, &stream, &in).read_net(loaded);
  } catch (const NeedsGeneral&) {
    loaded->clear();
    return StreamResult::kNeedsGeneral;
  }
  return StreamResult::kLoaded;
}

}  // namespace

StreamResult stream_caffemodel(caffe::Net<float>& net, const std::string& path,
                               std::set<std::string>* loaded, FileDigest* digest) {
  std::unique_ptr<DigestThread> hash(digest ? new DigestThread : nullptr);
  const StreamResult result = stream_into(net, path, loaded, hash ? hash->spans() : nullptr);
  if (digest && result == StreamResult::kLoaded) *digest = hash->finish();
  return result;
}

StreamResult stream_caffemodel(caffe::Net<float>& net, const std::string& path,
                               std::set<std::string>* loaded, const TagKey& key, ReadTag* tag) {
  TagThread hash(key);
  const StreamResult result = stream_into(net, path, loaded, hash.spans());
  if (result == StreamResult::kLoaded) *tag = hash.finish();
  return result;
}

}  // namespace surgery
