// The parameters of each allowed layer type, checked before Caffe sees them.
//
// Caffe CHECKs some parameters, but divides by others first (stride_h: 0,
// group: 0, PixelShuffle's factor), indexes bottom[0] of a layer given none
// (Upsample, PixelShuffle), reads uninitialised sizes (BilinearInterpolate
// with neither a size nor a factor) or casts unsigned values above 2^31 to
// negative ints. One table in parameter_checks.cpp states, per type, the
// bottom and top counts and the rule its parameters follow.
//
// Shape checks that need the bottoms' sizes belong in libcaffe's Reshape (the
// recipe's patches); here only the number of axes is used, where the
// definition declares it (Input layers, and the types that keep it).
#ifndef SURGERY_PARAMETER_CHECKS_HPP_
#define SURGERY_PARAMETER_CHECKS_HPP_

#include <string>
#include <vector>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// A blob's number of axes where the definition says it, else kUnknownAxes.
constexpr int kUnknownAxes = -1;

// Throws NetDefinitionError naming `source`, the layer, the parameter and the
// accepted values if `layer` would crash or overflow Caffe. `bottom_axes`
// holds each bottom's number of axes (kUnknownAxes where not known). Returns
// each top's number of axes (kUnknownAxes where not known).
std::vector<int> check_layer_parameters(const caffe::LayerParameter& layer,
                                        const std::string& source,
                                        const std::vector<int>& bottom_axes);

// The types the table has rules for (each allowed type of layer_policy.hpp).
std::vector<std::string> parameter_checked_types();

}  // namespace surgery

#endif  // SURGERY_PARAMETER_CHECKS_HPP_
