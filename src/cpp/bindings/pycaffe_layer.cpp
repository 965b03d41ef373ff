// pycaffe's Layer: every Caffe layer as Python sees it (blobs, type, phase),
// and the base class of Python layers. A "Python" layer in a definition
// imports the module its python_param names and runs the class there: only
// where the load policy allows it (LoadPolicy::run_python_layers), which
// validate_definition checks before Caffe constructs anything.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/pycaffe.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/layers/library_layers.hpp"
#include "surgery/runtime/fork_gate.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

using Layer = caffe::Layer<float>;

// Caffe's raw bottom and top vectors as Python lists of Blob. The blobs
// belong to the net, which outlives the call.
py::list blob_list(const std::vector<Blob*>& blobs) {
  py::list out;
  for (Blob* blob : blobs) out.append(py::cast(blob, py::return_value_policy::reference));
  return out;
}

std::vector<Blob*> raw_blobs(const py::list& blobs) {
  std::vector<Blob*> out;
  for (const auto& blob : blobs) out.push_back(blob.cast<Blob*>());
  return out;
}

// A layer whose methods are those of a Python subclass of caffe.Layer. Caffe
// calls it with the GIL released (the bindings release it around every call
// into a net), so each call takes it, out of the Caffe section (fork_gate.hpp):
// a thread that forks holds the GIL while it waits for sections to close.
struct WithGil {
  const OutsideCaffeSection outside;  // left first, entered again last
  const py::gil_scoped_acquire gil;
};

class PythonLayer : public Layer {
 public:
  using Layer::Layer;

  void LayerSetUp(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override {
    call("setup", false, bottom, top);
  }
  void Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override {
    call("reshape", true, bottom, top);
  }
  const char* type() const override { return "Python"; }

 protected:
  void Forward_cpu(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override {
    call("forward", true, bottom, top);
  }
  void Backward_cpu(const std::vector<Blob*>& top, const std::vector<bool>& propagate_down,
                    const std::vector<Blob*>& bottom) override {
    const WithGil gil;
    method("backward")(blob_list(top), py::cast(propagate_down), blob_list(bottom));
  }
  // Python computes on host memory: the GPU passes go through the CPU ones.
  void Forward_gpu(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override {
    Forward_cpu(bottom, top);
  }
  void Backward_gpu(const std::vector<Blob*>& top, const std::vector<bool>& propagate_down,
                    const std::vector<Blob*>& bottom) override {
    Backward_cpu(top, propagate_down, bottom);
  }

 private:
  // The subclass's method; a method it lacks is an error naming the layer.
  py::function method(const char* name) const {
    py::function f = py::get_override(static_cast<const Layer*>(this), name);
    if (!f) {
      throw Error("Python layer '" + this->layer_param().name() + "' (" +
                  this->layer_param().python_param().layer() + ") has no method " + name);
    }
    return f;
  }

  void call(const char* name, bool required, const std::vector<Blob*>& bottom,
            const std::vector<Blob*>& top) {
    const WithGil gil;
    if (!required && !py::get_override(static_cast<const Layer*>(this), name)) return;
    method(name)(blob_list(bottom), blob_list(top));
  }
};

// Drops the net's reference to the Python object that holds the layer.
struct PythonReference {
  PyObject* object;
  void operator()(Layer*) const {
    const WithGil gil;
    Py_DECREF(object);
  }
};

// Caffe's creator for "Python": python_param.module's python_param.layer,
// constructed with the layer's parameters and given param_str, as upstream's.
boost::shared_ptr<Layer> create_python_layer(const caffe::LayerParameter& param) {
  const WithGil gil;
  const auto& python = param.python_param();
  py::object cls = py::module_::import(python.module().c_str()).attr(python.layer().c_str());
  py::object layer = cls(param);
  auto* made = dynamic_cast<PythonLayer*>(layer.cast<Layer*>());
  if (made == nullptr) {
    throw Error("Python layer '" + param.name() + "': " + python.module() + "." +
                python.layer() + " must be a subclass of caffe.Layer");
  }
  layer.attr("param_str") = text(python.param_str());
  // The Python object owns the layer; the net holds the Python object.
  return boost::shared_ptr<Layer>(made, PythonReference{layer.release().ptr()});
}

}  // namespace

void bind_pycaffe_layer(py::module_& m) {
  py::class_<caffe::LayerParameter>(m, "LayerParameter");
  py::class_<Layer, PythonLayer, boost::shared_ptr<Layer>>(m, "Layer")
      .def(py::init_alias<const caffe::LayerParameter&>())
      .def_property_readonly("blobs", [](Layer& layer) -> BlobVec& { return layer.blobs(); },
                             py::return_value_policy::reference_internal)
      .def_property_readonly("type", [](const Layer& layer) { return std::string(layer.type()); })
      .def_property_readonly("phase",
                             [](const Layer& layer) { return static_cast<int>(layer.layer_param().phase()); })
      .def("setup",
           [](Layer& layer, const py::list& bottom, const py::list& top) {
             const auto b = raw_blobs(bottom), t = raw_blobs(top);
             guard_caffe("Layer.setup", [&] { layer.LayerSetUp(b, t); });
           })
      .def("reshape", [](Layer& layer, const py::list& bottom, const py::list& top) {
        const auto b = raw_blobs(bottom), t = raw_blobs(top);
        guard_caffe("Layer.reshape", [&] { layer.Reshape(b, t); });
      });

  register_layer_type("Python", &create_python_layer);
  m.def("layer_type_list", &registered_layer_types);
}

}  // namespace surgery::bindings
