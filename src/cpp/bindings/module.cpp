#include "bindings/bindings.hpp"
#include "surgery/logging.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "caffe-surgery's compiled core; use the `surgery` package instead.";
  surgery::set_caffe_log_level(2);
  m.def("set_log_level", &surgery::set_caffe_log_level, pybind11::arg("level"),
        "Caffe's glog threshold: 0 INFO, 1 WARNING, 2 ERROR (default).");
  m.def("log_level", &surgery::caffe_log_level);
  surgery::bindings::bind_errors(m);
  surgery::bindings::bind_net(m);
  surgery::bindings::bind_surgery(m);
  surgery::bindings::bind_trainer(m);
}
