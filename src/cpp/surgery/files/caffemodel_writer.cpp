#include "surgery/files/caffemodel_writer.hpp"

#include <cerrno>
#include <memory>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "surgery/files/atomic_file.hpp"
#include "surgery/files/caffemodel_wire.hpp"
#include "surgery/files/digested_streams.hpp"

namespace surgery {
namespace {

using google::protobuf::io::CodedOutputStream;
using google::protobuf::internal::WireFormatLite;
using namespace wire;  // NOLINT: the field numbers read like caffe.proto

size_t length_delimited_size(size_t payload) {
  return CodedOutputStream::VarintSize64(payload) + payload;
}

// One blob: its shape as an ordinary message, its data as a packed field
// written by hand from the blob's memory.
class BlobEncoding {
 public:
  explicit BlobEncoding(const caffe::Blob<float>& blob) : blob_(blob) {
    for (int d : blob.shape()) shape_.mutable_shape()->add_dim(d);
    data_bytes_ = sizeof(float) * static_cast<size_t>(blob.count());
  }
  size_t size() const {
    size_t n = shape_.ByteSizeLong();
    if (data_bytes_ > 0) n += 1 + length_delimited_size(data_bytes_);
    return n;
  }
  void write(CodedOutputStream* out) const {
    shape_.SerializeWithCachedSizes(out);
    if (data_bytes_ == 0) return;
    out->WriteTag(WireFormatLite::MakeTag(kBlobData, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
    out->WriteVarint64(data_bytes_);
    // Straight from the blob to the file (DigestedOutput): the net is not
    // changed while it is saved.
    out->WriteRawMaybeAliased(blob_.cpu_data(), static_cast<int>(data_bytes_));
  }

 private:
  const caffe::Blob<float>& blob_;
  caffe::BlobProto shape_;
  size_t data_bytes_ = 0;
};

void write_layer(const caffe::Layer<float>& layer,
                 const std::vector<caffe::shared_ptr<caffe::Blob<float>>>& blobs,
                 CodedOutputStream* out) {
  caffe::LayerParameter head;
  head.set_name(layer.layer_param().name());
  head.set_type(layer.type());
  std::vector<BlobEncoding> encodings;
  encodings.reserve(blobs.size());
  size_t size = head.ByteSizeLong();
  for (const auto& blob : blobs) {
    encodings.emplace_back(*blob);
    size += 1 + length_delimited_size(encodings.back().size());
  }
  out->WriteTag(WireFormatLite::MakeTag(kNetLayer, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  out->WriteVarint64(size);
  head.SerializeWithCachedSizes(out);
  for (const auto& encoding : encodings) {
    out->WriteTag(WireFormatLite::MakeTag(kLayerBlobs, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
    out->WriteVarint64(encoding.size());
    encoding.write(out);
  }
}

}  // namespace

StagedFile stage_caffemodel(const caffe::Net<float>& net, const std::string& path,
                           FileDigest* digest) {
  std::unique_ptr<DigestThread> hash(digest ? new DigestThread : nullptr);
  return StagedFile(path, [&](int fd) {
    DigestedOutput file(fd, hash ? hash->spans() : nullptr);
    {
      CodedOutputStream out(&file);
      out.EnableAliasing(true);
      WireFormatLite::WriteString(kNetName, net.name(), &out);
      for (const auto& layer : net.layers()) {
        if (!layer->blobs().empty()) write_layer(*layer, layer->blobs(), &out);
      }
    }
    if (!file.Flush()) {
      errno = file.error();  // what StagedFile reports (a full disk)
      return false;
    }
    if (digest) *digest = hash->finish();
    return true;
  });
}

void write_caffemodel(const caffe::Net<float>& net, const std::string& path) {
  stage_caffemodel(net, path, nullptr).commit();
}

}  // namespace surgery
