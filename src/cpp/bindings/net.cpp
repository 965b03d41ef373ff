// surgery._core.Net: surgery::Net with numpy views of Caffe's memory.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "surgery/device.hpp"
#include "surgery/errors.hpp"
#include "surgery/net.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

caffe::Phase parse_phase(const std::string& phase) {
  if (phase == "test") return caffe::TEST;
  if (phase == "train") return caffe::TRAIN;
  throw Error("phase must be 'test' or 'train', not '" + phase + "'");
}

// A writable array over the blob's host memory. The array owns a reference
// to the blob's SyncedMemory, so it stays valid (though stale) even if a
// later reshape makes the blob allocate new memory.
py::array view_of(caffe::Blob<float>& blob) {
  std::vector<py::ssize_t> shape(blob.shape().begin(), blob.shape().end());
  if (blob.count() == 0) return py::array_t<float>(shape);
  auto* keep = new caffe::shared_ptr<caffe::SyncedMemory>(blob.data());
  py::capsule owner(keep, [](void* p) {
    delete static_cast<caffe::shared_ptr<caffe::SyncedMemory>*>(p);
  });
  return py::array_t<float>(shape, blob.mutable_cpu_data(), owner);
}

// A copy of a blob's data in ordinary host memory, made without the GIL.
// (A Blob would do, but in GPU mode Caffe gives it pinned host memory,
// whose allocation costs more than the copy.)
struct HostCopy {
  std::vector<py::ssize_t> shape;
  std::unique_ptr<float[]> data;  // not zeroed first: it is written whole
};

HostCopy copy_to_host(const caffe::Blob<float>& blob) {
  HostCopy copy{{blob.shape().begin(), blob.shape().end()},
                std::unique_ptr<float[]>(new float[blob.count()])};
  download(blob, copy.data.get());
  return copy;
}

// Hands the copy to numpy, without copying it again.
py::array adopt(HostCopy copy) {
  float* data = copy.data.release();
  py::capsule owner(data, [](void* p) { delete[] static_cast<float*>(p); });
  return py::array_t<float>(copy.shape, data, owner);
}

}  // namespace

std::map<std::string, InputView> input_views(const std::map<std::string, FloatArray>& arrays) {
  std::map<std::string, InputView> views;
  for (const auto& [name, array] : arrays) {
    views[name] = {std::vector<int>(array.shape(), array.shape() + array.ndim()), array.data()};
  }
  return views;
}

void bind_net(py::module_& m) {
  py::class_<Net>(m, "Net")
      .def(py::init([](const std::string& prototxt, std::optional<std::string> weights,
                       const std::string& phase, bool trust_io_layers) {
             const caffe::Phase p = parse_phase(phase);
             LoadPolicy policy;
             policy.trust_io_layers = trust_io_layers;
             py::gil_scoped_release release;
             return std::make_unique<Net>(prototxt, weights.value_or(""), p, policy);
           }),
           py::arg("prototxt"), py::arg("weights") = py::none(), py::arg("phase") = "test",
           py::kw_only(), py::arg("trust_io_layers") = false)
      .def("load_weights",
           [](Net& net, const std::string& path) {
             py::gil_scoped_release release;
             net.load_weights(path);
           })
      .def_property_readonly("phase",
                             [](const Net& net) {
                               return net.phase() == caffe::TEST ? "test" : "train";
                             })
      .def_property_readonly("source", &Net::source)
      .def_property_readonly("name", [](const Net& net) { return net.caffe_net().name(); })
      .def_property_readonly("inputs", &Net::input_names)
      .def_property_readonly("forward_count", &Net::forward_count)
      .def_property_readonly("outputs", &Net::output_names)
      .def("_layers",
           [](const Net& net) {
             py::list out;
             for (const auto& l : net.layers()) {
               out.append(py::make_tuple(l.name, l.type, l.bottoms, l.tops));
             }
             return out;
           })
      .def("_blob_names", &Net::blob_names)
      .def("_blob", [](const Net& net, const std::string& name) {
             return view_of(net.blob(name));
           })
      .def("_blob_copy",
           [](const Net& net, const std::string& name) {
             HostCopy copy;
             {
               py::gil_scoped_release release;
               std::lock_guard<std::recursive_mutex> lock(net.mutex());
               copy = copy_to_host(net.blob(name));
             }
             return adopt(std::move(copy));
           })
      .def("_param_layers",
           [](const Net& net) {
             std::vector<std::string> out;
             for (const auto& l : net.layers()) {
               if (!net.params(l.name).empty()) out.push_back(l.name);
             }
             return out;
           })
      .def("_params",
           [](const Net& net, const std::string& layer) {
             py::list out;
             for (const auto& blob : net.params(layer)) out.append(view_of(*blob));
             return out;
           })
      .def("_reshape",
           [](Net& net, const std::map<std::string, std::vector<int>>& shapes) {
             py::gil_scoped_release release;
             net.reshape(shapes);
           })
      .def("_forward",
           [](Net& net, const std::map<std::string, FloatArray>& inputs) {
             const auto views = input_views(inputs);
             std::vector<std::pair<std::string, HostCopy>> outputs;
             {
               // Forward and the copy of its outputs happen under one hold of
               // the net's lock, so another thread cannot slip in between.
               py::gil_scoped_release release;
               std::lock_guard<std::recursive_mutex> lock(net.mutex());
               net.forward(views);
               for (const auto& name : net.output_names()) {
                 outputs.emplace_back(name, copy_to_host(net.blob(name)));
               }
             }
             py::dict out;
             for (auto& [name, copy] : outputs) out[name.c_str()] = adopt(std::move(copy));
             return out;
           })
      .def("save",
           [](const Net& net, const std::string& prototxt, const std::string& weights,
              bool overwrite) {
             py::gil_scoped_release release;
             net.save(prototxt, weights, overwrite);
           },
           py::arg("prototxt"), py::arg("weights"), py::arg("overwrite") = false);
}

}  // namespace surgery::bindings
