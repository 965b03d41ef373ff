// Telling a text prototxt from a binary caffemodel by their first bytes, so
// a caffemodel given as the definition (or a prototxt as the weights) is
// named for what it is, not for the parser's first complaint about it.
#ifndef SURGERY_FILE_KIND_HPP_
#define SURGERY_FILE_KIND_HPP_

#include <cstddef>
#include <string>

namespace surgery {

// What a message adds when a file is of the other kind.
extern const char* const kSwappedHint;

// How many first bytes are judged: a caffemodel writes a length or a tag
// (control characters) within its first few bytes.
constexpr std::size_t kHeadBytes = 512;

// Whether `head` reads as text: UTF-8 (a prototxt's comments may be in any
// language) with no control characters but whitespace.
bool reads_as_text(const std::string& head);

// The first kHeadBytes of the open file `fd` (fewer if it is shorter),
// read without moving its offset.
std::string file_head(int fd);

}  // namespace surgery

#endif  // SURGERY_FILE_KIND_HPP_
