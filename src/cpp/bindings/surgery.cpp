// surgery._core.fully_convolutionalize, rarefy and geometry. The report and the
// geometry are bound once, field by field (read-only), so a field renamed
// or dropped in C++ fails the build here; surgery/convert.py and
// surgery/geometry.py use them as they come.
#include <algorithm>

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "surgery/definition/channel_gates.hpp"
#include "surgery/definition/geometry.hpp"
#include "surgery/edit/fully_convolutional.hpp"
#include "surgery/edit/rarefy.hpp"
#include "surgery/files/mean_file.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

py::tuple as_tuple(const std::vector<int>& values) { return py::cast(values).cast<py::tuple>(); }

}  // namespace

void bind_surgery(py::module_& m) {
  py::class_<ConvertedLayer>(m, "ConvertedLayer", "One layer the surgery changed.")
      .def_property_readonly("old_name", [](const ConvertedLayer& l) { return text(l.old_name); })
      .def_property_readonly("old_type", [](const ConvertedLayer& l) { return text(l.old_type); })
      .def_property_readonly("new_name", [](const ConvertedLayer& l) { return text(l.new_name); })
      .def_property_readonly("new_type", [](const ConvertedLayer& l) { return text(l.new_type); })
      .def_property_readonly("old_shape", [](const ConvertedLayer& l) { return as_tuple(l.old_shape); },
                             "the weights' shape before (empty for pooling)")
      .def_property_readonly("new_shape", [](const ConvertedLayer& l) { return as_tuple(l.new_shape); },
                             "the weights' shape after")
      .def_property_readonly(
          "kernel", [](const ConvertedLayer& l) { return py::make_tuple(l.kernel_h, l.kernel_w); },
          "(h, w)")
      .def_readonly("num_output", &ConvertedLayer::num_output, "0 for pooling")
      .def_readonly("copied", &ConvertedLayer::copied,
                    "weights rearranged (transpose: true); else the same memory");
  py::class_<SurgeryReport>(m, "SurgeryReport")
      .def_readonly("layers", &SurgeryReport::layers)
      .def_property_readonly("removed", [](const SurgeryReport& r) { return texts(r.removed); });
  m.def(
      "fully_convolutionalize",
      [](PyNet& net, std::optional<std::string> suffix, const py::dict& input_shapes) {
        const SurgeryOptions options{suffix, shapes(input_shapes, "input_shape")};
        return locked(net, [&] { return fully_convolutionalize(net, options); });
      },
      py::arg("net"), py::arg("suffix"), py::arg("input_shapes"));

  py::class_<RarefiedLayer>(m, "RarefiedLayer", "One layer filter rarefaction changed.")
      .def_property_readonly("name", [](const RarefiedLayer& l) { return text(l.name); })
      .def_property_readonly("old_type", [](const RarefiedLayer& l) { return text(l.old_type); })
      .def_property_readonly("new_type", [](const RarefiedLayer& l) { return text(l.new_type); })
      .def_property_readonly(
          "old_stride", [](const RarefiedLayer& l) { return py::make_tuple(l.old_stride_h, l.old_stride_w); },
          "(h, w) before")
      .def_property_readonly(
          "stride", [](const RarefiedLayer& l) { return py::make_tuple(l.stride_h, l.stride_w); },
          "(h, w) after")
      .def_property_readonly(
          "dilation", [](const RarefiedLayer& l) { return py::make_tuple(l.dilation_h, l.dilation_w); },
          "(h, w) after")
      .def_readonly("reduced", &RarefiedLayer::reduced, "its stride was reduced (else dilated only)");
  py::class_<RarefyReport>(m, "RarefyReport")
      .def_readonly("factor", &RarefyReport::factor)
      .def_readonly("layers", &RarefyReport::layers);
  m.def(
      "rarefy",
      [](PyNet& net, int factor) { return locked(net, [&] { return rarefy(net, factor); }); },
      py::arg("net"), py::arg("factor"));
  m.def(
      "rarefy_factors",
      [](const PyNet& net) { return locked(net, [&] { return rarefy_factors(net); }); },
      py::arg("net"));

  py::class_<Extent>(m, "Extent", "Cell i depends on input pixels [offset + i*stride, ... + size).")
      .def_readonly("stride", &Extent::stride)
      .def_readonly("offset", &Extent::offset)
      .def_readonly("size", &Extent::size);
  py::class_<Geometry>(m, "Geometry")
      .def_readonly("known", &Geometry::known)
      .def_property_readonly("why", [](const Geometry& g) { return text(g.why); })
      .def_readonly("window_h", &Geometry::window_h)
      .def_readonly("window_w", &Geometry::window_w)
      .def_property_readonly("window_rule", [](const Geometry& g) { return text(g.window_rule); })
      .def_readonly("min_input_h", &Geometry::min_input_h)
      .def_readonly("min_input_w", &Geometry::min_input_w)
      .def_readonly("receptive_h", &Geometry::receptive_h)
      .def_readonly("receptive_w", &Geometry::receptive_w)
      .def_property_readonly("padded_layers",
                             [](const Geometry& g) { return texts(g.padded_layers); })
      .def_property_readonly("gate_poolings",
                             [](const Geometry& g) { return texts(g.gate_poolings); });
  m.def(
      "geometry",
      [](const PyNet& net, const std::string& blob) {
        return locked(net, [&] {
          return compute_geometry(net.filtered_definition(), blob, net.recorded_window());
        });
      },
      py::arg("net"), py::arg("blob"));
  m.attr("UNCONVERTED_HINT") = kUnconvertedHint;
  m.def(
      "channel_gate_layers",
      [](const PyNet& net) {
        return locked(net, [&] { return find_channel_gates(net.filtered_definition()).layers; });
      },
      py::arg("net"),
      "The layers of the net's squeeze-and-excitation gates (global pooling to Scale), which "
      "take any input size as they are.");
  m.def(
      "read_mean_file",
      [](const Path& path) {
        MeanBlob mean = read_mean_file(path.bytes);
        py::array_t<float> out(std::vector<py::ssize_t>(mean.shape.begin(), mean.shape.end()));
        std::copy(mean.data.begin(), mean.data.end(), out.mutable_data());
        return out;
      },
      py::arg("path"), "A Caffe .binaryproto mean file as an array of its stored shape.");
  m.def("declared_input_shapes", [](const PyNet& net) {
    return locked(net, [&] { return net.declared_input_shapes(); });
  });
}

}  // namespace surgery::bindings
