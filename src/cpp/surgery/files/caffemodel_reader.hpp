// Loads a binary caffemodel into a freshly built net by streaming: each
// blob's packed floats are read from the file straight into the blob, so a
// 500 MB model never exists twice in memory (as a protobuf message and as
// blobs), and the protobuf message is never built.
#ifndef SURGERY_CAFFEMODEL_READER_HPP_
#define SURGERY_CAFFEMODEL_READER_HPP_

#include <set>
#include <string>

#include "caffe/net.hpp"
#include "surgery/files/file_digest.hpp"
#include "surgery/files/input_file.hpp"
#include "surgery/files/keyed_tag.hpp"

namespace surgery {

enum class StreamResult {
  kLoaded,       // every blob in the file went to its layer; `loaded` lists them
  kNeedsGeneral  // the file uses a form this reader leaves to the general
                 // path (V1 layers, double data, a layer renamed by surgery):
                 // the caller loads it with read_net_binary + plan_weight_copy,
                 // which rewrites whatever was streamed already
};

// Same matching and checks as plan_weight_copy, except that a blob's values
// land in the net before its shape (which protobuf stores after the data)
// has been checked: only for a net that is discarded if this throws.
// Every length prefix is bounded by what is left of its enclosing message
// (the file's size at the top) in 64-bit arithmetic; packed float data must
// be exactly 4 x the blob's count to be written into it; shapes are range-
// checked (check_blob_fits). Only regular files are read (input_file.hpp).
// If `digest` is not null it receives the size and SHA-256 of the bytes read
// (kLoaded only).
// Throws FileError, ParseError (truncated, inconsistent) or ShapeError.
StreamResult stream_caffemodel(caffe::Net<float>& net, const std::string& path,
                               std::set<std::string>* loaded, FileDigest* digest = nullptr);
// The same, `tag` receiving the size and keyed tag (keyed_tag.hpp) of the
// bytes read instead of their digest (kLoaded only): six times faster to
// take than SHA-256, for a file whose digest was taken ahead (early_digest.hpp).
StreamResult stream_caffemodel(caffe::Net<float>& net, const std::string& path,
                               std::set<std::string>* loaded, const TagKey& key, ReadTag* tag);

// The names of the layers a caffemodel gives blobs to, read from the layer
// messages' heads alone: blob data is passed over with lseek, not read. For
// planning a load, not for checking it: empty where the file is unusual
// (V1 layers, a name after its blobs) or bad (the load then says what is
// wrong); never throws.
std::set<std::string> caffemodel_layer_names(const std::string& path);

// ParseError if the open caffemodel `file` is past what protobuf can read
// (2 GiB), or is text (a prototxt given as the weights).
void check_caffemodel_file(const InputFile& file, const std::string& path);

}  // namespace surgery

#endif  // SURGERY_CAFFEMODEL_READER_HPP_
