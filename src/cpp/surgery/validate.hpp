// Checks a net definition for what Caffe would otherwise CHECK-fail on, so
// the user gets a message naming the file and layer.
#ifndef SURGERY_VALIDATE_HPP_
#define SURGERY_VALIDATE_HPP_

#include <string>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// `net` is already filtered for its phase (caffe::Net::FilterNet). Throws
// NetDefinitionError for: an unregistered layer type, a `Python` layer
// (it runs arbitrary code), a database-backed Data layer, a bottom no
// earlier layer produces, a top produced twice, an Input layer without a
// positive shape (ShapeError for an input too large for a blob).
void validate_definition(const caffe::NetParameter& net, const std::string& source);

}  // namespace surgery

#endif  // SURGERY_VALIDATE_HPP_
