// Where each output cell of a fully convolutional net looks in the input,
// computed from the layers (kernel, stride, pad, dilation), never assumed.
#ifndef SURGERY_GEOMETRY_HPP_
#define SURGERY_GEOMETRY_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// Along one axis, cell i of a blob depends on input pixels
// [offset + i * stride, offset + i * stride + size). offset < 0 where layers pad.
struct Extent {
  int64_t stride = 1;
  int64_t offset = 0;
  int64_t size = 1;
};

struct Geometry {
  // False when a layer on the way changes space in a way not modelled here
  // (Deconvolution, Crop, an unconverted InnerProduct...), or when the first
  // input declares no N x C x H x W shape: `why` says which.
  bool known = true;
  std::string why;
  // The first input's declared H and W: the size the original classifier
  // took, so output cell (i, j) stands for the window of this size at
  // (i * stride, j * stride). Declared, not current: the net may have run
  // on a larger image since.
  int64_t window_h = 0, window_w = 0;
  Extent receptive_h, receptive_w;
  // Layers with pad > 0 on the way: their dense cells differ slightly from
  // running the original net on the matching crop.
  std::vector<std::string> padded_layers;
};

// Geometry of blob `blob` relative to the net's inputs, walking the
// (phase-filtered) definition in order; the window is the first Input
// layer's first declared shape.
Geometry compute_geometry(const caffe::NetParameter& net, const std::string& blob);

}  // namespace surgery

#endif  // SURGERY_GEOMETRY_HPP_
