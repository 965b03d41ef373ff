// surgery._core.Net: surgery::Net with numpy views of Caffe's memory.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/runtime/device.hpp"
#include "surgery/runtime/net.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

caffe::Phase parse_phase(const std::string& phase) {
  if (phase == "test") return caffe::TEST;
  if (phase == "train") return caffe::TRAIN;
  throw Error("phase must be 'test' or 'train', not '" + phase + "'");
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

HostView host_view(caffe::Blob<float>& blob, BlobPart part) {
  HostView view{{blob.shape().begin(), blob.shape().end()}, nullptr, nullptr};
  if (blob.count() == 0) return view;
  const bool diff = part == BlobPart::kDiff;
  view.memory = diff ? blob.diff() : blob.data();
  view.data = diff ? blob.mutable_cpu_diff() : blob.mutable_cpu_data();
  return view;
}

py::array to_array(HostView view) {
  if (!view.data) return py::array_t<float>(view.shape);
  auto* keep = new caffe::shared_ptr<caffe::SyncedMemory>(std::move(view.memory));
  py::capsule owner(keep, [](void* p) {
    delete static_cast<caffe::shared_ptr<caffe::SyncedMemory>*>(p);
  });
  return py::array_t<float>(view.shape, view.data, owner);
}

std::map<std::string, InputView> input_views(const std::map<std::string, FloatArray>& arrays) {
  std::map<std::string, InputView> views;
  for (const auto& [name, array] : arrays) {
    views[name] = {std::vector<int>(array.shape(), array.shape() + array.ndim()), array.data()};
  }
  return views;
}

// The names Python gives ConvolutionAlgorithm, in one place.
constexpr std::pair<ConvolutionAlgorithm, const char*> kAlgorithmNames[] = {
    {ConvolutionAlgorithm::kCaffe, "caffe"},
    {ConvolutionAlgorithm::kWinograd, "winograd"},
    {ConvolutionAlgorithm::kOneDnn, "onednn"},
    {ConvolutionAlgorithm::kFastest, "fastest"}};

const char* algorithm_name(ConvolutionAlgorithm algorithm) {
  for (const auto& [value, name] : kAlgorithmNames) {
    if (value == algorithm) return name;
  }
  return "caffe";
}

ConvolutionAlgorithm algorithm_named(const std::string& name) {
  for (const auto& [value, known] : kAlgorithmNames) {
    if (name == known) return value;
  }
  throw py::value_error("convolution must be 'caffe', 'winograd', 'onednn' or 'fastest', not '" +
                        name + "'");
}

void bind_net(py::module_& m) {
  // Every method that reaches the net goes through locked() (bindings.hpp).
  // Held by shared_ptr: a surgery.pycaffe.Net and surgery.Nets may stand
  // for one C++ net (its memory, its guard) at once.
  py::class_<PyNet, std::shared_ptr<PyNet>>(m, "Net")
      .def(py::init([](const Path& prototxt, std::optional<Path> weights,
                       const std::string& phase, bool trust_io_layers) {
             const caffe::Phase p = parse_phase(phase);
             LoadPolicy policy;
             policy.trust_io_layers = trust_io_layers;
             py::gil_scoped_release release;
             const CaffeSection section;
             return std::make_shared<PyNet>(prototxt.bytes, weights ? weights->bytes : "", p,
                                            policy);
           }),
           py::arg("prototxt"), py::arg("weights") = py::none(), py::arg("phase") = "test",
           py::kw_only(), py::arg("trust_io_layers") = false)
      // Another Python object over `other`'s C++ net (surgery.Net.sharing).
      .def(py::init([](std::shared_ptr<PyNet> other) { return other; }), py::arg("other"))
      .def("load_weights",
           [](PyNet& net, const Path& path) {
             locked(net, [&] { net.load_weights(path.bytes); });
           })
      .def_property_readonly("phase",
                             [](const PyNet& net) {
                               return net.phase() == caffe::TEST ? "test" : "train";
                             })
      .def_property_readonly("source", [](const PyNet& net) { return text(net.source()); })
      .def_property_readonly(
          "name", [](const PyNet& net) { return text(locked(net, [&] { return net.definition().name(); })); })
      .def_property_readonly(
          "inputs", [](const PyNet& net) { return texts(locked(net, [&] { return net.input_names(); })); })
      .def_property_readonly(
          "outputs", [](const PyNet& net) { return texts(locked(net, [&] { return net.output_names(); })); })
      .def_property_readonly("forward_count",
                             [](const PyNet& net) { return locked(net, [&] { return net.forward_count(); }); })
      .def_property(
          "convolution",
          [](const PyNet& net) {
            return algorithm_name(locked(net, [&] { return net.convolution_algorithm(); }));
          },
          [](PyNet& net, const std::string& name) {
            const ConvolutionAlgorithm algorithm = algorithm_named(name);
            locked(net, [&] { net.set_convolution_algorithm(algorithm); });
          })
      .def_property_readonly(
          "layer_times",
          [](const PyNet& net) {
            py::dict out;
            for (const auto& [name, ms] : locked(net, [&] { return net.layer_times(); })) {
              out[text(name)] = ms;
            }
            return out;
          })
      .def_property_readonly(
          "engine_layers",
          [](const PyNet& net) { return texts(locked(net, [&] { return net.engine_layers(); })); })
      .def_property_readonly(
          "winograd_layers",
          [](const PyNet& net) {
            return texts(locked(net, [&] {
              return net.convolution_algorithm() == ConvolutionAlgorithm::kWinograd
                         ? net.engine_layers()
                         : std::vector<std::string>{};
            }));
          })
      .def("_layers",
           [](const PyNet& net) {
             py::list out;
             for (const auto& l : locked(net, [&] { return net.layers(); })) {
               out.append(py::make_tuple(text(l.name), text(l.type), texts(l.bottoms), texts(l.tops)));
             }
             return out;
           })
      .def("_blob_names",
           [](const PyNet& net) { return texts(locked(net, [&] { return net.blob_names(); })); })
      .def("_blob",
           [](const PyNet& net, const std::string& name) {
             return to_array(locked(net, [&] { return host_view(net.blob(name)); }));
           })
      .def("_blob_copy",
           [](const PyNet& net, const std::string& name) {
             return adopt(locked(net, [&] { return copy_to_host(net.blob(name)); }));
           })
      .def("_param_layers",
           [](const PyNet& net) {
             return texts(locked(net, [&] {
               std::vector<std::string> out;
               for (const auto& l : net.layers()) {
                 if (net.has_params(l.name)) out.push_back(l.name);
               }
               return out;
             }));
           })
      .def("_params",
           [](const PyNet& net, const std::string& layer) {
             const auto views = locked(net, [&] {
               std::vector<HostView> out;
               for (const auto& blob : net.params(layer)) out.push_back(host_view(*blob));
               return out;
             });
             py::list out;
             for (const auto& view : views) out.append(to_array(view));
             return out;
           })
      .def("_reshape",
           [](PyNet& net, const py::dict& by_name) {
             const auto target = shapes(by_name, "reshape: input");
             locked(net, [&] { net.reshape(target); });
           })
      .def("_forward",
           [](PyNet& net, const std::map<std::string, FloatArray>& inputs,
              const py::object& between_layers) {
             const auto views = input_views(inputs);
             const auto interrupted = signal_check(between_layers);
             std::vector<std::pair<std::string, HostCopy>> outputs;
             try {
               // Forward and the copy of its outputs in one call, so another
               // thread cannot slip in between.
               outputs = locked(net, [&] {
                 net.forward(views, interrupted);
                 std::vector<std::pair<std::string, HostCopy>> out;
                 for (const auto& name : net.output_names()) {
                   out.emplace_back(name, copy_to_host(net.blob(name)));
                 }
                 return out;
               });
             } catch (const Interrupted&) {
               raise_pending_signal();
             }
             py::dict out;
             for (auto& [name, copy] : outputs) out[text(name)] = adopt(std::move(copy));
             return out;
           },
           py::arg("inputs"), py::arg("between_layers") = py::none())
      .def("save",
           [](const PyNet& net, const Path& prototxt, const Path& weights, bool overwrite) {
             locked(net, [&] { net.save(prototxt.bytes, weights.bytes, overwrite); });
           },
           py::arg("prototxt"), py::arg("weights"), py::arg("overwrite") = false);
}

}  // namespace surgery::bindings
