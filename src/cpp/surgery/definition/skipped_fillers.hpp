// Fillers not run for blobs a weights file overwrites anyway. Caffe fills
// every param blob as it builds a net (Gaussian, Xavier, ... draw a random
// number per weight: seconds for a 60M-weight net) before the caffemodel
// replaces the values.
#ifndef SURGERY_SKIPPED_FILLERS_HPP_
#define SURGERY_SKIPPED_FILLERS_HPP_

#include <set>
#include <string>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// In `param` (a definition about to be built), sets every filler of the
// layers named in `filled` to constant 0, and returns the layers changed:
// each must then receive all its blobs from the weights file, or the net be
// built again from the unchanged definition. Caffe's fillers (and a data
// layer's random transformer) draw from one random stream in layer order,
// so a layer is changed only if no layer after it keeps a draw (a filler
// other than constant and bilinear, a transformer that mirrors or crops):
// every draw made is the one made in the net built whole.
std::set<std::string> skip_fillers(caffe::NetParameter& param, const std::set<std::string>& filled);

}  // namespace surgery

#endif  // SURGERY_SKIPPED_FILLERS_HPP_
