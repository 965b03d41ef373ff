// surgery._core.Trainer: feeds numpy batches to libcaffe's solver.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "surgery/trainer.hpp"

namespace py = pybind11;

namespace surgery::bindings {

void bind_trainer(py::module_& m) {
  py::class_<Trainer>(m, "Trainer")
      .def(py::init<const std::string&, const std::string&>(), py::arg("solver"),
           py::arg("train_net"))
      .def("step",
           [](Trainer& trainer, const std::map<std::string, FloatArray>& batch) {
             const auto views = input_views(batch);
             py::gil_scoped_release release;
             return trainer.step(views);
           })
      .def_property_readonly("iteration", &Trainer::iteration)
      .def("save_weights", [](const Trainer& trainer, const std::string& path) {
        py::gil_scoped_release release;
        trainer.save_weights(path);
      });
}

}  // namespace surgery::bindings
