// Shapes as users read them in messages: "4096 x 256 x 6 x 6 (37748736)",
// and the element count every check and message computes, with overflow
// checks: a shape read from a file may say anything.
#ifndef SURGERY_SHAPE_TEXT_HPP_
#define SURGERY_SHAPE_TEXT_HPP_

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

namespace surgery {

// The product of `dims` (any range of integers), or std::nullopt where it
// leaves int64_t. __builtin_mul_overflow multiplies the mathematical values,
// whatever the integer types, so no dimension is narrowed on the way.
template <typename Range>
std::optional<int64_t> element_count(const Range& dims) {
  int64_t count = 1;
  for (const auto d : dims) {
    if (__builtin_mul_overflow(count, d, &count)) return std::nullopt;
  }
  return count;
}

template <typename Range>
std::string shape_text(const Range& shape) {
  std::ostringstream out;
  const char* separator = "";
  for (const auto d : shape) {
    out << separator << d;
    separator = " x ";
  }
  const auto count = element_count(shape);
  if (count) {
    out << " (" << *count << ")";
  } else {
    out << " (more values than 64 bits count)";
  }
  return out.str();
}

}  // namespace surgery

#endif  // SURGERY_SHAPE_TEXT_HPP_
