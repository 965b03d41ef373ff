// What the streaming caffemodel reader and writer both rely on: caffe.proto's
// field numbers, and packed floats that are the machine's own bytes.
#ifndef SURGERY_CAFFEMODEL_WIRE_HPP_
#define SURGERY_CAFFEMODEL_WIRE_HPP_

namespace surgery::wire {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "packed floats are copied as raw little-endian bytes");

enum : int {
  kNetName = 1,
  kNetLayers = 2,  // V1LayerParameter: left to the general reader
  kNetLayer = 100,
  kLayerName = 1,
  kLayerType = 2,
  kLayerBlobs = 7,
  kBlobNum = 1,
  kBlobChannels = 2,
  kBlobHeight = 3,
  kBlobWidth = 4,
  kBlobData = 5,
  kBlobShape = 7,
  kBlobDoubleData = 8,
  kShapeDim = 1,
};

}  // namespace surgery::wire

#endif  // SURGERY_CAFFEMODEL_WIRE_HPP_
