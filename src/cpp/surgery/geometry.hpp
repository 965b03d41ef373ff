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
  // (Deconvolution, Crop, an unconverted InnerProduct...): `why` names it.
  bool known = true;
  std::string why;
  Extent receptive_h, receptive_w;
  // Layers with pad > 0 on the way: their dense cells differ slightly from
  // running the original net on the matching crop.
  std::vector<std::string> padded_layers;
};

// Geometry of blob `blob` relative to the net's inputs, walking the
// (phase-filtered) definition in order.
Geometry compute_geometry(const caffe::NetParameter& net, const std::string& blob);

}  // namespace surgery

#endif  // SURGERY_GEOMETRY_HPP_
