// pycaffe's Net (upstream _caffe's surface, which pycaffe.py extends): built
// through surgery::Net, so every definition and caffemodel passes the load
// policy, the parameter checks, the memory limit and the bounded readers.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/pycaffe.hpp"
#include "caffe/layers/memory_data_layer.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/files/caffemodel_writer.hpp"
#include "surgery/files/hdf5_writer.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/weights_check.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

caffe::Phase phase_of(int phase) {
  if (phase != caffe::TRAIN && phase != caffe::TEST) {
    throw py::value_error("phase must be caffe.TRAIN (0) or caffe.TEST (1), not " +
                          std::to_string(phase));
  }
  return static_cast<caffe::Phase>(phase);
}

// The face of a net our loader built, whether for this face or for a
// surgery.Net: both then stand for one C++ net, its memory and its guard.
std::unique_ptr<FaceNet> face_of(std::shared_ptr<PyNet> owner) {
  auto face = std::make_unique<FaceNet>();
  caffe::Net<float>* net = locked(owner->guard(), [&] { return &owner->caffe_net(); });
  face->net = boost::shared_ptr<caffe::Net<float>>(net, [owner](caffe::Net<float>*) {});
  face->guard = std::shared_ptr<Guard>(owner, &owner->guard());
  face->owner = std::move(owner);
  return face;
}

std::unique_ptr<FaceNet> load(const Path& prototxt, const std::optional<Path>& weights,
                              int phase, int level, const std::vector<std::string>& stages) {
  caffe::NetState state;
  state.set_phase(phase_of(phase));
  state.set_level(level);
  for (const auto& stage : stages) state.add_stage(stage);
  const LoadPolicy policy = pycaffe_policy();
  std::shared_ptr<PyNet> owner;
  {
    py::gil_scoped_release release;
    const CaffeSection section;
    owner = std::make_shared<PyNet>(prototxt.bytes, weights ? weights->bytes : "", state, policy);
  }
  return face_of(std::move(owner));
}

template <typename F>
auto in_net(FaceNet& face, F&& call) {
  return locked(*face.guard, std::forward<F>(call));
}

// Caffe's HDF5 reader and writer are the HDF5 library's, which this package
// does not bound: reading is for files the caller trusts, as for HDF5Data.
void check_hdf5_trusted(const std::string& path) {
  if (!pycaffe_policy().trust_io_layers) {
    throw FileError("load_hdf5 refused '" + path + "': HDF5 weights are read by the HDF5 "
                    "library, unchecked; if you trust the file, call "
                    "surgery.pycaffe.set_load_policy(io_layers=True) first, or save the "
                    "weights as a caffemodel (Net.save) and load that with copy_from");
  }
}

// MemoryData reads the arrays in place: 4-d, C-contiguous float32 of the
// layer's channels, height and width, a multiple of its batch size long.
void check_input_array(const py::array& array, const std::string& name, int channels,
                       int height, int width) {
  if (!(array.flags() & py::array::c_style)) throw ShapeError(name + " must be C contiguous");
  if (!py::isinstance<py::array_t<float>>(array)) throw ShapeError(name + " must be float32");
  if (array.ndim() != 4) throw ShapeError(name + " must be 4-d");
  if (array.shape(1) != channels || array.shape(2) != height || array.shape(3) != width) {
    throw ShapeError(name + " must be N x " + std::to_string(channels) + " x " +
                     std::to_string(height) + " x " + std::to_string(width));
  }
}

void set_input_arrays(FaceNet& face, const py::array& data, const py::array& labels) {
  auto layer = boost::dynamic_pointer_cast<caffe::MemoryDataLayer<float>>(face.net->layers().at(0));
  if (!layer) throw Error("set_input_arrays needs a net whose first layer is MemoryData");
  check_input_array(data, "data array", layer->channels(), layer->height(), layer->width());
  check_input_array(labels, "labels array", 1, 1, 1);
  if (data.shape(0) != labels.shape(0)) {
    throw ShapeError("data and labels must have the same first dimension");
  }
  if (data.shape(0) == 0 || data.shape(0) % layer->batch_size() != 0) {
    throw ShapeError("the arrays' first dimension must be a multiple of the batch size (" +
                     std::to_string(layer->batch_size()) + ")");
  }
  auto* d = static_cast<float*>(const_cast<void*>(data.data()));
  auto* l = static_cast<float*>(const_cast<void*>(labels.data()));
  const int n = static_cast<int>(data.shape(0));
  in_net(face, [&] { guard_caffe("set_input_arrays", [&] { layer->Reset(d, l, n); }); });
  face.input_arrays = py::make_tuple(data, labels);
}

}  // namespace

void bind_pycaffe_net(py::module_& m) {
  using Blobs = std::vector<boost::shared_ptr<Blob>>;
  using Layers = std::vector<boost::shared_ptr<caffe::Layer<float>>>;
  py::class_<FaceNet>(m, "Net", py::dynamic_attr())
      // surgery.pycaffe.Net(net): pycaffe's face of a surgery.Net.
      .def(py::init(&face_of), py::arg("net"))
      // The surgery.Net behind this face (None for a solver's nets), for
      // Net.surgery_net() (surgery/pycaffe_sharing.py).
      .def_property_readonly("_surgery_core", [](const FaceNet& f) { return f.owner; })
      .def(py::init([](const Path& prototxt, int phase, int level,
                       std::optional<std::vector<std::string>> stages, std::optional<Path> weights) {
             return load(prototxt, weights, phase, level, stages.value_or(std::vector<std::string>{}));
           }),
           py::arg("network_file"), py::arg("phase"), py::arg("level") = 0,
           py::arg("stages") = py::none(), py::arg("weights") = py::none())
      .def(py::init([](const Path& prototxt, const Path& weights, int phase) {
             return load(prototxt, weights, phase, 0, {});
           }),
           py::arg("network_file"), py::arg("weights"), py::arg("phase"))
      // 2014's pycaffe: a deploy net and its weights, in the TEST phase.
      .def(py::init([](const Path& prototxt, const Path& weights) {
             return load(prototxt, weights, caffe::TEST, 0, {});
           }),
           py::arg("network_file"), py::arg("weights"))
      .def("_forward",
           [](FaceNet& f, int start, int end) {
             return in_net(f, [&] { return guard_caffe("forward", [&] { return f.net->ForwardFromTo(start, end); }); });
           })
      .def("_backward",
           [](FaceNet& f, int start, int end) {
             in_net(f, [&] { guard_caffe("backward", [&] { f.net->BackwardFromTo(start, end); }); });
           })
      .def("reshape", [](FaceNet& f) { in_net(f, [&] { guard_caffe("reshape", [&] { f.net->Reshape(); }); }); })
      .def("clear_param_diffs", [](FaceNet& f) { in_net(f, [&] { f.net->ClearParamDiffs(); }); })
      .def("copy_from",
           [](FaceNet& f, const Path& caffemodel) {
             in_net(f, [&] {
               if (f.owner) {
                 f.owner->load_weights(caffemodel.bytes);
               } else {
                 copy_weights(read_net_binary(caffemodel.bytes), caffemodel.bytes, *f.net);
               }
             });
           })
      .def("share_with",
           [](FaceNet& f, FaceNet& other) {
             const auto share = [&] {
               guard_caffe("share_with", [&] { f.net->ShareTrainedLayersWith(other.net.get()); });
             };
             // Reads `other` while writing `f`: both guards (one, for two
             // nets of a solver), always taken in the same order.
             Guard* first = std::min(f.guard.get(), other.guard.get());
             Guard* second = std::max(f.guard.get(), other.guard.get());
             locked(*first, [&] {
               if (first == second) return share();
               second->run(share);
             });
           })
      .def_property_readonly("_blob_loss_weights", [](FaceNet& f) { return f.net->blob_loss_weights(); })
      .def("_bottom_ids", [](FaceNet& f, int i) { return f.net->bottom_ids(i); })
      .def("_top_ids", [](FaceNet& f, int i) { return f.net->top_ids(i); })
      .def_property_readonly("_blobs", [](FaceNet& f) { return Blobs(f.net->blobs()); })
      .def_property_readonly("layers", [](FaceNet& f) { return Layers(f.net->layers()); })
      .def_property_readonly("_blob_names", [](FaceNet& f) { return texts(f.net->blob_names()); })
      .def_property_readonly("_layer_names", [](FaceNet& f) { return texts(f.net->layer_names()); })
      .def_property_readonly("_inputs", [](FaceNet& f) { return f.net->input_blob_indices(); })
      .def_property_readonly("_outputs", [](FaceNet& f) { return f.net->output_blob_indices(); })
      .def("_set_input_arrays", &set_input_arrays)
      .def("save",
           [](FaceNet& f, const Path& caffemodel) {
             in_net(f, [&] { write_caffemodel(*f.net, caffemodel.bytes); });
           })
      .def("save_hdf5",
           [](FaceNet& f, const Path& path) {
             in_net(f, [&] { save_hdf5(*f.net, path.bytes); });
           })
      .def("load_hdf5", [](FaceNet& f, const Path& path) {
        check_hdf5_trusted(path.bytes);
        in_net(f, [&] { guard_caffe("load_hdf5", [&] { f.net->CopyTrainedLayersFromHDF5(path.bytes); }); });
      });
}

}  // namespace surgery::bindings
