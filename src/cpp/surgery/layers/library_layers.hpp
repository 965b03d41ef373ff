// The layer types this library adds to Caffe's layer registry
// (DilatedPooling). The core is a static library: a registration in a static
// initializer would be dropped by the linker with the object file nobody
// references, so it is an explicit call, made by every surgery::Net
// constructor before the definition is checked. Safe to call any number of
// times, from any thread.
#ifndef SURGERY_LIBRARY_LAYERS_HPP_
#define SURGERY_LIBRARY_LAYERS_HPP_

#include <string>
#include <vector>

#include "caffe/layer_factory.hpp"

namespace surgery {

void register_library_layers();

// The types register_library_layers() adds.
const std::vector<std::string>& library_layer_types();

// Caffe's registry is a function-local static in a header: code compiled
// with hidden visibility (the Python module) would get a private, empty copy
// of it. Code outside the core reaches the one libcaffe holds through these.
// Adds `creator` under `type` unless the type is registered already.
void register_layer_type(const std::string& type,
                         caffe::LayerRegistry<float>::Creator creator);
// Every registered type, this library's included.
std::vector<std::string> registered_layer_types();

}  // namespace surgery

#endif  // SURGERY_LIBRARY_LAYERS_HPP_
