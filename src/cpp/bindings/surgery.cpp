// surgery._core.fully_convolutionalize and geometry: plain dicts out, the
// Python package turns them into typed results.
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "surgery/fully_convolutional.hpp"
#include "surgery/geometry.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

py::dict extent(const Extent& e) {
  py::dict d;
  d["stride"] = e.stride;
  d["offset"] = e.offset;
  d["size"] = e.size;
  return d;
}

}  // namespace

void bind_surgery(py::module_& m) {
  m.def(
      "fully_convolutionalize",
      [](Net& net, std::optional<std::string> suffix,
         std::map<std::string, std::vector<int>> input_shapes) {
        SurgeryReport report;
        {
          py::gil_scoped_release release;
          report = fully_convolutionalize(net, {suffix, input_shapes});
        }
        py::list layers;
        for (const auto& l : report.layers) {
          py::dict d;
          d["old_name"] = l.old_name;
          d["old_type"] = l.old_type;
          d["new_name"] = l.new_name;
          d["new_type"] = l.new_type;
          d["old_shape"] = l.old_shape;
          d["new_shape"] = l.new_shape;
          d["kernel"] = py::make_tuple(l.kernel_h, l.kernel_w);
          d["num_output"] = l.num_output;
          d["copied"] = l.copied;
          layers.append(d);
        }
        return py::make_tuple(layers, report.removed);
      },
      py::arg("net"), py::arg("suffix"), py::arg("input_shapes"));
  m.def(
      "geometry",
      [](const Net& net, const std::string& blob) {
        const Geometry g = compute_geometry(net.filtered_definition(), blob);
        py::dict d;
        d["known"] = g.known;
        d["why"] = g.why;
        d["receptive_h"] = extent(g.receptive_h);
        d["receptive_w"] = extent(g.receptive_w);
        d["padded_layers"] = g.padded_layers;
        return d;
      },
      py::arg("net"), py::arg("blob"));
  m.def("declared_input_shapes", [](const Net& net) { return net.declared_input_shapes(); });
}

}  // namespace surgery::bindings
