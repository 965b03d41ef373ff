// The window a converted net's cells stand for, recorded in its prototxt.
//
// After net surgery the window is the classifier's input (CaffeNet: 227 x
// 227), which the layers alone cannot tell once the net is fully
// convolutional. Saving a converted net writes it as one comment line,
//   # caffe-surgery window: 227 227
// which Caffe's text parser skips, so stock Caffe reads the file as before,
// and loading the file again gives the same geometry. The line is separate
// from any other header line (e.g. the weights' record) and may appear
// among the comment lines at the top of the file.
#ifndef SURGERY_WINDOW_RECORD_HPP_
#define SURGERY_WINDOW_RECORD_HPP_

#include <cstdint>
#include <string>

namespace surgery {

struct RecordedWindow {
  int64_t h = 0, w = 0;  // 0 x 0: nothing recorded
  bool empty() const { return h <= 0 || w <= 0; }
};

// The line for `window`, newline included; "" for an empty window.
std::string window_record_line(const RecordedWindow& window);

// The record among the comment lines that open `text` (empty if none).
// A line that starts with the key but does not hold two integers in
// 1 .. 2^31 - 1 raises ParseError naming `source`.
RecordedWindow find_window_record(const std::string& text, const std::string& source);

}  // namespace surgery

#endif  // SURGERY_WINDOW_RECORD_HPP_
