// surgery._core device functions: mode, device, where blobs live.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "bindings/bindings.hpp"
#include "surgery/runtime/device.hpp"
#include "surgery/runtime/pinned_memory.hpp"

namespace py = pybind11;

namespace surgery::bindings {

void bind_device(py::module_& m) {
  m.def("gpu_available", &gpu_available);
  m.def("set_mode", &set_mode, py::arg("mode"));
  m.def("mode", &mode);
  m.def("set_device", &set_device, py::arg("device"));
  m.def("set_tf32", &set_tf32, py::arg("on"));
  m.def("tf32", &tf32);
  // A float32 array in page-locked memory, which the array's capsule frees.
  m.def("pinned_empty", [](const py::handle& shape) {
    const std::vector<int> extents = dimensions(shape, "pinned_empty");
    auto owner = std::make_unique<std::shared_ptr<float>>(pinned_floats(extents));
    float* data = owner->get();
    py::capsule base(owner.get(), [](void* p) { delete static_cast<std::shared_ptr<float>*>(p); });
    owner.release();  // the capsule owns it now
    return py::array_t<float>(std::vector<py::ssize_t>(extents.begin(), extents.end()), data, base);
  }, py::arg("shape"));
  m.def("is_pinned", [](const py::array& array) { return is_pinned(array.data()); },
        py::arg("array"));
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
