// The edits net surgery makes to a net definition (NetParameter), by layer
// name, so that the saved prototxt describes the converted net.
#ifndef SURGERY_DEFINITION_EDIT_HPP_
#define SURGERY_DEFINITION_EDIT_HPP_

#include <string>

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// InnerProduct `name` becomes a Convolution called `new_name` with a
// kernel_h x kernel_w kernel, stride 1, no pad; num_output, bias_term,
// fillers and param specs are kept. If `new_top` is not empty, the layer's
// top becomes `new_top` and so does every later reference to the old top.
// Returns the new layer's parameters.
caffe::LayerParameter convert_inner_product(caffe::NetParameter* net, const std::string& name,
                                            const std::string& new_name, int kernel_h,
                                            int kernel_w, const std::string& new_top);

// Removes the one-bottom, one-top layer `name`; later layers that read its
// top read its bottom instead.
void remove_passthrough(caffe::NetParameter* net, const std::string& name);

// Pooling `name` with global_pooling becomes a fixed kernel_h x kernel_w
// window at stride 1. Returns the new layer's parameters.
caffe::LayerParameter fix_global_pooling(caffe::NetParameter* net, const std::string& name,
                                         int kernel_h, int kernel_w);

}  // namespace surgery

#endif  // SURGERY_DEFINITION_EDIT_HPP_
