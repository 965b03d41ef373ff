// surgery._core device functions: mode, device, where blobs live.
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "surgery/device.hpp"

namespace py = pybind11;

namespace surgery::bindings {

void bind_device(py::module_& m) {
  m.def("gpu_available", &gpu_available);
  m.def("set_mode", &set_mode, py::arg("mode"));
  m.def("mode", &mode);
  m.def("set_device", &set_device, py::arg("device"));
  m.def("set_tf32", &set_tf32, py::arg("on"));
  m.def("tf32", &tf32);
  m.def("head", [](const PyNet& net, const std::string& blob) {
    return locked(net, [&] { return head_of(net.blob(blob)); });
  }, py::arg("net"), py::arg("blob"));
  m.def("param_heads", [](const PyNet& net, const std::string& layer) {
    return locked(net, [&] {
      std::vector<std::string> out;
      for (const auto& blob : net.params(layer)) out.push_back(head_of(*blob));
      return out;
    });
  }, py::arg("net"), py::arg("layer"));
}

}  // namespace surgery::bindings
