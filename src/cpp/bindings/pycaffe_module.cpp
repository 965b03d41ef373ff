// surgery._core.pycaffe: what upstream's _caffe module gives pycaffe.py.
#include <string>

#include "bindings/bindings.hpp"
#include "bindings/pycaffe.hpp"
#include "caffe/common.hpp"
#include "surgery/runtime/device.hpp"

namespace py = pybind11;

namespace surgery::bindings {

LoadPolicy& pycaffe_policy() {
  static LoadPolicy policy;
  return policy;
}

void bind_pycaffe(py::module_& parent) {
  py::module_ m = parent.def_submodule("pycaffe", "The compiled half of surgery.pycaffe.");
  m.def("set_load_policy",
        [](bool python_layers, bool io_layers) {
          pycaffe_policy().run_python_layers = python_layers;
          pycaffe_policy().trust_io_layers = io_layers;
        },
        py::kw_only(), py::arg("python_layers"), py::arg("io_layers"));
  m.def("load_policy", [] {
    py::dict out;
    out["python_layers"] = pycaffe_policy().run_python_layers;
    out["io_layers"] = pycaffe_policy().trust_io_layers;
    return out;
  });
  m.def("set_mode_cpu", [] { set_mode("cpu"); });
  m.def("set_mode_gpu", [] { set_mode("gpu"); });
  m.def("set_device", [](int device) { set_device(device); }, py::arg("device_id"));
  m.def("set_random_seed", [](unsigned int seed) { caffe::Caffe::set_random_seed(seed); },
        py::arg("seed"));
  bind_pycaffe_blob(m);
  bind_pycaffe_layer(m);
  bind_pycaffe_net(m);
  bind_pycaffe_solver(m);
}

}  // namespace surgery::bindings
