// Where each output cell of a fully convolutional net looks in the input,
// computed from the layers (kernel, stride, pad, dilation), never assumed.
#ifndef SURGERY_GEOMETRY_HPP_
#define SURGERY_GEOMETRY_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "caffe/proto/caffe.pb.h"
#include "surgery/files/window_record.hpp"

namespace surgery {

// Along one axis, cell i of a blob depends on input pixels
// [offset + i * stride, offset + i * stride + size). offset < 0 where layers pad.
// Kernel, stride, pad and dilation along one spatial axis (0 = h, 1 = w).
struct Window {
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1;
  bool pooling = false, ceil = true;  // pooling rounds its output size up unless ceil_mode: false
};

// A Convolution's (or Deconvolution's) window along one axis, read as Caffe
// reads convolution_param: kernel_h/kernel_w over kernel_size, one value
// for both axes or one per axis.
Window conv_window(const caffe::ConvolutionParameter& p, int axis);

struct Extent {
  int64_t stride = 1;
  int64_t offset = 0;
  int64_t size = 1;
};

struct Geometry {
  // False when a layer on the way changes space in a way not modelled here
  // (Deconvolution, Crop, an unconverted InnerProduct...): `why` says which.
  bool known = true;
  std::string why;
  // The window output cell (i, j) stands for: the input region of this size
  // at (i * stride, j * stride). Chosen by the first rule that applies:
  //  1. "recorded": the window our surgery recorded (the classifier's input),
  //     passed in by the caller (window_record.hpp);
  //  2. "declared": the first input's declared H x W, if at that size the
  //     blob is one cell (a classifier's deploy input, converted or not);
  //  3. "exact fit": walking back from one cell, the size at which every
  //     layer's windows fit its input exactly (no cut-off, no rounding):
  //     receptive size + 2 * offset, i.e. the receptive field less the
  //     padding. Full-conv CaffeNet 227, VGG-16 224, LeNet 28. Where a
  //     classifier relied on Caffe rounding pooled sizes up (GoogLeNet,
  //     ResNet), this is not the size it was trained at: record or pass it.
  // 0 x 0 with an empty rule when none gives a window of at least one pixel.
  int64_t window_h = 0, window_w = 0;
  std::string window_rule;
  // The smallest input H and W (each side on its own) for which every layer
  // gets an input it accepts and the blob has at least one cell, by Caffe's
  // own size arithmetic (pooling rounds up unless ceil_mode: false). 0 when
  // no size up to 2^31 - 1 works.
  int64_t min_input_h = 0, min_input_w = 0;
  Extent receptive_h, receptive_w;
  // Layers with pad > 0 on the way: their dense cells differ slightly from
  // running the original net on the matching crop.
  std::vector<std::string> padded_layers;
  // Global poolings of squeeze-and-excitation gates (channel_gates.hpp):
  // each cell's channels are scaled by what the gate saw of the whole input,
  // so cells differ from running the original net on the matching crop.
  std::vector<std::string> gate_poolings;
};

// Geometry of blob `blob` relative to the net's inputs, walking the
// (phase-filtered) definition in order. `recorded` (if not empty) is the
// window our surgery recorded for this net.
Geometry compute_geometry(const caffe::NetParameter& net, const std::string& blob,
                          const RecordedWindow& recorded = {});

// The blob's size along one axis (0 = H, 1 = W) when the first input is `n`
// pixels along it, by Caffe's arithmetic; 0 when a layer on the way would
// get no output or is not modelled.
int64_t output_size(const caffe::NetParameter& net, const std::string& blob, int axis,
                    int64_t n);

}  // namespace surgery

#endif  // SURGERY_GEOMETRY_HPP_
