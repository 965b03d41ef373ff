// Shapes as users read them in messages: "4096 x 256 x 6 x 6 (37748736)".
#ifndef SURGERY_SHAPE_TEXT_HPP_
#define SURGERY_SHAPE_TEXT_HPP_

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace surgery {

template <typename Int>
std::string shape_text(const std::vector<Int>& shape) {
  std::ostringstream out;
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    out << (i ? " x " : "") << shape[i];
    count *= shape[i];
  }
  out << " (" << count << ")";
  return out.str();
}

}  // namespace surgery

#endif  // SURGERY_SHAPE_TEXT_HPP_
