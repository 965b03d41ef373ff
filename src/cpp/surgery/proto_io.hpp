// Reading and writing Caffe's two file formats, with errors that name the
// file and the place, instead of Caffe's CHECK-and-abort readers.
#ifndef SURGERY_PROTO_IO_HPP_
#define SURGERY_PROTO_IO_HPP_

#include <string>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// A file's bytes; FileError if it cannot be read.
std::string read_text_file(const std::string& path);

// A text prototxt, upgraded from V0/V1 and legacy `input:` fields as Caffe
// does. FileError if unreadable, ParseError with line and column if invalid.
caffe::NetParameter read_net_text(const std::string& path);

// The same from text held in memory; `source` names it in messages.
caffe::NetParameter parse_net_text(const std::string& text,
                                   const std::string& source);

// A binary caffemodel (any size protobuf allows), upgraded likewise.
// ParseError if truncated, not a NetParameter, or holding no layer.
caffe::NetParameter read_net_binary(const std::string& path);

// Writes `net` as a text prototxt, atomically (atomic_file.hpp), after
// `header` (comment lines, e.g. window_record.hpp's).
void write_net_text(const caffe::NetParameter& net, const std::string& path,
                    const std::string& header = "");

}  // namespace surgery

#endif  // SURGERY_PROTO_IO_HPP_
