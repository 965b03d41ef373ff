// Matching a caffemodel's blobs to a live net's params, all checked before
// anything is copied, so a bad file never leaves a half-loaded net.
#ifndef SURGERY_WEIGHTS_CHECK_HPP_
#define SURGERY_WEIGHTS_CHECK_HPP_

#include <set>
#include <string>
#include <vector>

#include "caffe/net.hpp"
#include "caffe/proto/caffe.pb.h"

namespace surgery {

struct BlobCopy {
  const caffe::BlobProto* source;
  caffe::Blob<float>* target;
  std::string layer;  // the net's layer that receives it
};

// Pairs each source blob with its target: layers matched by name (layers
// missing on either side are skipped, as Caffe does), blobs by position.
// An InnerProduct also finds its converted Convolution (fc6 -> fc6-conv),
// so original weights load into a converted definition.
// A blob whose shape differs is accepted when Caffe would accept it (legacy
// 4-D shapes padded with ones), or when an InnerProduct's weights meet a
// Convolution of equal element count: the bytes are the same. Anything
// else raises ShapeError naming the file, layer and both shapes; values
// that disagree with their own shape raise ParseError.
std::vector<BlobCopy> plan_weight_copy(const caffe::Net<float>& net,
                                       const caffe::NetParameter& weights,
                                       const std::string& source);

// ShapeError unless a layer's blob counts agree (file vs. net).
void check_blob_count(const std::string& where, int in_file, int in_net);

// The rule plan_weight_copy applies to each blob, for other readers: throws
// ParseError if the shape is out of range (a dimension negative or past
// INT_MAX, more than kMaxBlobAxes axes, a product past INT_MAX, all in
// 64-bit arithmetic) or `values` disagrees with it, ShapeError if the blob does
// not fit `target`. `where` starts the message ("weights 'f', layer 'l'").
void check_blob_fits(const std::string& where, int index, const std::vector<int64_t>& shape,
                     int64_t values, bool ip_to_conv, const caffe::Blob<float>& target);

// check_blob_fits for a blob as the file holds it (its shape and values).
void check_blob_proto_fits(const std::string& where, int index, const caffe::BlobProto& blob,
                           const caffe::Blob<float>& target);

// Copies float or double data from the proto into the blob's host memory.
void copy_blob_data(const caffe::BlobProto& source, caffe::Blob<float>* target);

// plan_weight_copy, then the copies: all checked before the first byte is
// written. Returns the layers that received weights.
std::set<std::string> copy_weights(const caffe::NetParameter& weights, const std::string& source,
                                   caffe::Net<float>& net);

}  // namespace surgery

#endif  // SURGERY_WEIGHTS_CHECK_HPP_
