// The pybind11 layer: converts types and errors, nothing else.
#ifndef SURGERY_BINDINGS_HPP_
#define SURGERY_BINDINGS_HPP_

#include <pybind11/pybind11.h>

namespace surgery::bindings {

void bind_errors(pybind11::module_& m);
void bind_net(pybind11::module_& m);
void bind_surgery(pybind11::module_& m);
void bind_trainer(pybind11::module_& m);

}  // namespace surgery::bindings

#endif  // SURGERY_BINDINGS_HPP_
