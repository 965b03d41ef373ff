// Reading and writing Caffe's two file formats, with errors that name the
// file and the place, instead of Caffe's CHECK-and-abort readers.
#ifndef SURGERY_PROTO_IO_HPP_
#define SURGERY_PROTO_IO_HPP_

#include <cstdint>
#include <optional>
#include <string>

#include "caffe/proto/caffe.pb.h"
#include "surgery/files/atomic_file.hpp"
#include "surgery/files/file_digest.hpp"
#include "surgery/files/pair_record.hpp"

namespace surgery {

// The largest prototxt read: real definitions are kilobytes (a 1000-layer
// net is under 1 MB); text this large is an error or an attack, refused
// before it is read into memory.
constexpr int64_t kMaxPrototxtBytes = int64_t{64} << 20;

// A regular file's bytes (a prototxt, or a small binary such as a mean file),
// at most kMaxPrototxtBytes; FileError otherwise, naming the file as `what`.
std::string read_text_file(const std::string& path, const char* what = "prototxt");

// A text prototxt, upgraded from V0/V1 and legacy `input:` fields as Caffe
// does. FileError if not a regular file (input_file.hpp), unreadable or over
// kMaxPrototxtBytes, ParseError with line and column if invalid. If `pair` is
// given it receives the pair record of the first line (pair_record.hpp).
caffe::NetParameter read_net_text(const std::string& path,
                                  std::optional<PairRecord>* pair = nullptr);

// The same from text held in memory; `source` names it in messages.
caffe::NetParameter parse_net_text(const std::string& text,
                                   const std::string& source);

// What a message says of a layer type that this libcaffe does not register
// (most often a custom layer of another Caffe fork); empty for a registered
// one. Types surgery registers itself count once they are registered.
std::string unknown_type_hint(const std::string& type);

// A text SolverParameter held in memory (its legacy solver_type upgraded to
// `type` as Caffe does); ParseError with line and column, naming `source`.
caffe::SolverParameter parse_solver_text(const std::string& text, const std::string& source);

// A binary caffemodel (any size protobuf allows), upgraded likewise.
// FileError if not a regular file, ParseError if truncated, not a
// NetParameter, or holding no layer. If `digest` is given it receives the
// size and SHA-256 of the file's bytes.
caffe::NetParameter read_net_binary(const std::string& path, FileDigest* digest = nullptr);

// Writes `net` as a text prototxt, atomically (atomic_file.hpp), after
// `header`: comment lines (pair_record.hpp's first, window_record.hpp's).
// The staged form is committed by the caller (pairs commit two files).
StagedFile stage_net_text(const caffe::NetParameter& net, const std::string& path,
                          const std::string& header);
void write_net_text(const caffe::NetParameter& net, const std::string& path,
                    const std::string& header = "");

}  // namespace surgery

#endif  // SURGERY_PROTO_IO_HPP_
