#include "surgery/base/name_text.hpp"

#include <cstdio>

namespace surgery {
namespace {

// Length of the well-formed UTF-8 sequence starting at name[i], or 0.
size_t sequence_length(std::string_view name, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(name[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // range of the first continuation byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > name.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

bool is_clean_name(std::string_view name) {
  for (size_t i = 0; i < name.size();) {
    const size_t length = sequence_length(name, i);
    if (length == 0 || name[i] == '\0') return false;
    i += length;
  }
  return true;
}

std::string quoted_name(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size();) {
    const size_t length = sequence_length(name, i);
    const auto lead = static_cast<unsigned char>(name[i]);
    if (length == 0 || lead < 0x20 || lead == 0x7F) {
      char escape[5];
      std::snprintf(escape, sizeof escape, "\\x%02X", lead);
      out += escape;
      i += 1;
    } else {
      out.append(name.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::string layer_text(const std::string& source, const caffe::LayerParameter& layer) {
  return "'" + source + "', layer '" + quoted_name(layer.name()) + "' (" +
         quoted_name(layer.type()) + ")";
}

}  // namespace surgery
