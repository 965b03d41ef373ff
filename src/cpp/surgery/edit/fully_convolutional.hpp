// Net surgery: makes a classification net fully convolutional, in place.
#ifndef SURGERY_FULLY_CONVOLUTIONAL_HPP_
#define SURGERY_FULLY_CONVOLUTIONAL_HPP_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "surgery/runtime/net.hpp"

namespace surgery {

struct SurgeryOptions {
  // Appended to each converted layer's name (and to its top, where the top
  // is named after the layer) so stock Caffe never loads the old shapes into
  // it. std::nullopt keeps the names.
  std::optional<std::string> suffix = std::string("-conv");
  // Input shapes at which kernels are measured; by default the net's own.
  std::map<std::string, std::vector<int>> input_shapes;
};

struct ConvertedLayer {
  std::string old_name, old_type, new_name, new_type;
  std::vector<int> old_shape;  // the weights' shape before (empty for pooling)
  std::vector<int> new_shape;  // after
  int kernel_h = 0, kernel_w = 0;
  int num_output = 0;          // 0 for pooling
  bool copied = false;         // weights had to be rearranged (transpose: true)
};

struct SurgeryReport {
  std::vector<ConvertedLayer> layers;     // in net order; empty if nothing to do
  std::vector<std::string> removed;       // Flatten/Reshape layers dropped
};

// Every InnerProduct becomes a Convolution whose kernel covers its bottom
// blob at the declared input size; a Flatten or Reshape feeding one is
// removed; a global pooling on the way to the classifier becomes a fixed
// window of the size it pooled, stride 1. Squeeze-and-excitation gates stay
// as they are (channel_gates.hpp: they take any input size). The weights
// stay in the same memory (reshaped in place), except for transpose: true,
// where they are rearranged. The definition is edited
// to match. Everything is checked before the net is touched: a layer that
// cannot be converted raises surgery::Error naming it, and the net is
// unchanged. So does a converted net that Caffe refuses to reshape: the
// edits are undone before the error is raised.
SurgeryReport fully_convolutionalize(Net& net, const SurgeryOptions& options = {});

}  // namespace surgery

#endif  // SURGERY_FULLY_CONVOLUTIONAL_HPP_
