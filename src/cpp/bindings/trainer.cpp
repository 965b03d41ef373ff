// surgery._core.Trainer: feeds numpy batches to libcaffe's solver. The
// trainer owns its net (no surgery.Net shares it) and is guarded by the
// same rule as a Net: one call at a time, without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "surgery/train/trainer.hpp"

namespace py = pybind11;

namespace surgery::bindings {

using PyTrainer = Guarded<Trainer>;

void bind_trainer(py::module_& m) {
  py::class_<PyTrainer>(m, "Trainer")
      .def(py::init<const std::string&, const std::string&>(), py::arg("solver"),
           py::arg("train_net"))
      .def("step",
           [](PyTrainer& trainer, const std::map<std::string, FloatArray>& batch) {
             const auto views = input_views(batch);
             return locked(trainer, [&] { return trainer.step(views); });
           })
      .def_property_readonly("iteration",
                             [](const PyTrainer& trainer) {
                               return locked(trainer, [&] { return trainer.iteration(); });
                             })
      .def("save_weights", [](const PyTrainer& trainer, const Path& path) {
        locked(trainer, [&] { trainer.save_weights(path.bytes); });
      });
}

}  // namespace surgery::bindings
