// surgery._core.Trainer: feeds numpy batches to libcaffe's solver. The
// trainer owns its net (no surgery.Net shares it) and is guarded by the
// same rule as a Net: one call at a time, without the GIL. Also the
// builders of the loss-map train net.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "surgery/train/loss_map.hpp"
#include "surgery/train/trainer.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

using PyTrainer = Guarded<Trainer>;

// [(layer, [array, ...]), ...] in the net's order, copied into numpy.
py::list layer_params(const LayerParams& params) {
  py::list out;
  for (const auto& [layer, blobs] : params) {
    py::list arrays;
    for (const auto& blob : blobs) {
      std::vector<py::ssize_t> shape(blob.shape.begin(), blob.shape.end());
      py::array_t<float> array(shape);
      std::copy(blob.values.begin(), blob.values.end(), array.mutable_data());
      arrays.append(array);
    }
    out.append(py::make_tuple(text(layer), arrays));
  }
  return out;
}

}  // namespace

void bind_trainer(py::module_& m) {
  py::class_<PyTrainer>(m, "Trainer")
      .def(py::init<const std::string&, const std::string&>(), py::arg("solver"),
           py::arg("train_net"))
      .def("step",
           [](PyTrainer& trainer, const std::map<std::string, FloatArray>& batch) {
             const auto views = input_views(batch);
             return locked(trainer, [&] { return trainer.step(views); });
           })
      .def("gradients",
           [](PyTrainer& trainer, const std::map<std::string, FloatArray>& batch) {
             const auto views = input_views(batch);
             auto [loss, grads] = locked(trainer, [&] { return trainer.gradients(views); });
             return py::make_tuple(loss, layer_params(grads));
           })
      .def("params",
           [](const PyTrainer& trainer) {
             return layer_params(locked(trainer, [&] { return trainer.params(); }));
           })
      .def("set_param",
           [](PyTrainer& trainer, const std::string& layer, int index, const FloatArray& values) {
             const InputView view{std::vector<int>(values.shape(), values.shape() + values.ndim()),
                                  values.data()};
             locked(trainer, [&] { trainer.set_param(layer, index, view); });
           })
      .def_property_readonly("iteration",
                             [](const PyTrainer& trainer) {
                               return locked(trainer, [&] { return trainer.iteration(); });
                             })
      .def("save_weights",
           [](const PyTrainer& trainer, const Path& path) {
             locked(trainer, [&] { trainer.save_weights(path.bytes); });
           })
      .def("snapshot",
           [](const PyTrainer& trainer, const Path& caffemodel, const Path& solverstate) {
             locked(trainer, [&] { trainer.snapshot(caffemodel.bytes, solverstate.bytes); });
           })
      .def("restore", [](PyTrainer& trainer, const Path& caffemodel, const Path& solverstate) {
        locked(trainer, [&] { trainer.restore(caffemodel.bytes, solverstate.bytes); });
      })
      .def_property(
          "random_state",
          [](const PyTrainer& trainer) { return locked(trainer, [&] { return trainer.random_state(); }); },
          [](PyTrainer& trainer, const std::string& state) {
            locked(trainer, [&] { trainer.set_random_state(state); });
          });

  m.def("score_layer", [](const std::string& deploy) {
    const ScoreLayer score = score_layer(deploy);
    return py::make_tuple(text(score.layer), text(score.blob), score.outputs);
  });
  m.def(
      "loss_map_net",
      [](const std::string& deploy, std::vector<int> data_shape, std::vector<int> label_shape,
         int ignore_label, std::vector<std::string> frozen) {
        return loss_map_net(deploy, {std::move(data_shape), std::move(label_shape), ignore_label,
                                     std::move(frozen)});
      },
      py::arg("deploy"), py::arg("data_shape"), py::arg("label_shape"),
      py::arg("ignore_label") = -1, py::arg("frozen") = std::vector<std::string>{});
  m.def("with_new_head", &with_new_head, py::arg("deploy"), py::arg("outputs"), py::arg("name"));
}

}  // namespace surgery::bindings
