// Names from a definition, checked and quoted for messages. A prototxt may
// hold any bytes in a string ("\377" parses), but every name ends up in
// Python strings and error messages, which must be valid UTF-8.
#ifndef SURGERY_NAME_TEXT_HPP_
#define SURGERY_NAME_TEXT_HPP_

#include <string>
#include <string_view>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF) without NUL.
bool is_clean_name(std::string_view name);

// `name` quoted for a message: bytes that are not well-formed UTF-8, NUL and
// other control bytes written as \xNN.
std::string quoted_name(std::string_view name);

// "'<source>', layer '<name>' (<type>)", the prefix of every message about a layer.
std::string layer_text(const std::string& source, const caffe::LayerParameter& layer);

}  // namespace surgery

#endif  // SURGERY_NAME_TEXT_HPP_
