#include "surgery/files/file_kind.hpp"

#include <unistd.h>


namespace surgery {

const char* const kSwappedHint =
    "swapped arguments? the prototxt (text) comes first, then the caffemodel (binary)";

namespace {

bool control(unsigned char byte) {
  const bool whitespace = byte == '\t' || byte == '\n' || byte == '\v' || byte == '\f' ||
                          byte == '\r';
  return (byte < 0x20 && !whitespace) || byte == 0x7f;
}

// Bytes that follow a UTF-8 lead byte; 0 for one that cannot lead.
std::size_t continuations(unsigned char lead) {
  if (lead >= 0xc2 && lead <= 0xdf) return 1;
  if (lead >= 0xe0 && lead <= 0xef) return 2;
  if (lead >= 0xf0 && lead <= 0xf4) return 3;
  return 0;
}

}  // namespace

bool reads_as_text(const std::string& head) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    const auto byte = static_cast<unsigned char>(head[i]);
    if (byte < 0x80) {
      if (control(byte)) return false;
      continue;
    }
    const std::size_t more = continuations(byte);
    if (more == 0) return false;
    // A character cut by the end of the head still counts as text.
    for (std::size_t k = 1; k <= more && i + k < head.size(); ++k) {
      if ((static_cast<unsigned char>(head[i + k]) & 0xc0) != 0x80) return false;
    }
    i += more;
  }
  return true;
}

std::string file_head(int fd) {
  std::string head(kHeadBytes, '\0');
  const ssize_t n = pread(fd, head.data(), head.size(), 0);
  head.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return head;
}

}  // namespace surgery
