// The parameters of each allowed layer type, checked before Caffe sees them.
//
// Caffe CHECKs some parameters, but divides by others first, indexes
// bottom[0] of a layer given none (Upsample, PixelShuffle), or overflows its
// ints (parameter_rules.hpp). The layer table (layer_table.hpp) states, per
// computing type, the bottom and top counts and the rule its parameters
// follow; this applies them.
//
// Shape checks that need the bottoms' sizes belong in libcaffe's Reshape (the
// recipe's patches); here only the number of axes is used, where the
// definition declares it (Input layers, and the types that keep it).
#ifndef SURGERY_PARAMETER_CHECKS_HPP_
#define SURGERY_PARAMETER_CHECKS_HPP_

#include <string>
#include <vector>

#include "caffe/proto/caffe.pb.h"
#include "surgery/definition/layer_table.hpp"

namespace surgery {

// Throws NetDefinitionError naming `source`, the layer, the parameter and the
// accepted values if `layer` would crash or overflow Caffe. `bottom_axes`
// holds each bottom's number of axes (kUnknownAxes where not known). Returns
// each top's number of axes (kUnknownAxes where not known).
std::vector<int> check_layer_parameters(const caffe::LayerParameter& layer,
                                        const std::string& source,
                                        const std::vector<int>& bottom_axes);

}  // namespace surgery

#endif  // SURGERY_PARAMETER_CHECKS_HPP_
