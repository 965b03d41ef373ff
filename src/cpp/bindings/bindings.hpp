// The pybind11 layer: converts types and errors, nothing else.
#ifndef SURGERY_BINDINGS_HPP_
#define SURGERY_BINDINGS_HPP_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <map>
#include <string>

#include "surgery/net.hpp"

namespace surgery::bindings {

using FloatArray = pybind11::array_t<float, pybind11::array::c_style | pybind11::array::forcecast>;

// Borrowed views of numpy arrays (which must outlive them), for forward and training.
std::map<std::string, InputView> input_views(const std::map<std::string, FloatArray>& arrays);

void bind_errors(pybind11::module_& m);
void bind_net(pybind11::module_& m);
void bind_surgery(pybind11::module_& m);
void bind_trainer(pybind11::module_& m);
void bind_device(pybind11::module_& m);

}  // namespace surgery::bindings

#endif  // SURGERY_BINDINGS_HPP_
