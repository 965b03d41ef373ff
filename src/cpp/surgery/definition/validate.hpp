// Checks a net definition before Caffe sees it, so the user gets a message
// naming the file and layer instead of a crash, and so loading a definition
// never touches a file the user did not mean to hand to Caffe.
#ifndef SURGERY_VALIDATE_HPP_
#define SURGERY_VALIDATE_HPP_

#include <string>

#include "caffe/proto/caffe.pb.h"
#include "surgery/definition/layer_policy.hpp"

namespace surgery {

// `net` is already filtered for its phase (caffe::Net::FilterNet). Throws
// NetDefinitionError for: a net, layer, blob or param name that is not
// UTF-8 or holds NUL; a layer type or field the load policy refuses
// (layer_policy.hpp); an unregistered layer type; parameters Caffe would
// crash or overflow on (parameter_checks.hpp); a bottom no earlier layer
// produces; a top produced twice; two layers with weights under one name
// (Caffe copies weights by name); an Input layer without a positive shape
// (ShapeError for an input too large for a blob).
void validate_definition(const caffe::NetParameter& net, const std::string& source,
                         const LoadPolicy& policy = {});

}  // namespace surgery

#endif  // SURGERY_VALIDATE_HPP_
