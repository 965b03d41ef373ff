// pycaffe's Blob and BlobVec: shapes, reshape, and .data/.diff as writable
// numpy views of Caffe's memory (no copy) that keep that memory alive.
#include <pybind11/stl.h>
#include <pybind11/stl_bind.h>

#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/pycaffe.hpp"
#include <boost/make_shared.hpp>

#include "surgery/base/errors.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

// pycaffe's reshape(*dims) and add_blob(*dims): positional dimensions only.
std::vector<int> positional_shape(const py::args& dims, const py::kwargs& kwargs,
                                  const std::string& what) {
  if (!kwargs.empty()) throw py::type_error(what + " takes the dimensions as positional arguments");
  std::vector<int> shape;
  for (const auto& dim : dims) shape.push_back(dimension(dim, what));
  return shape;
}

}  // namespace

void bind_pycaffe_blob(py::module_& m) {
  py::class_<Blob, boost::shared_ptr<Blob>>(m, "Blob")
      .def_property_readonly("shape", [](const Blob& b) { return b.shape(); })
      .def_property_readonly("num", [](const Blob& b) { return guard_caffe("Blob.num", [&] { return b.num(); }); })
      .def_property_readonly("channels", [](const Blob& b) { return guard_caffe("Blob.channels", [&] { return b.channels(); }); })
      .def_property_readonly("height", [](const Blob& b) { return guard_caffe("Blob.height", [&] { return b.height(); }); })
      .def_property_readonly("width", [](const Blob& b) { return guard_caffe("Blob.width", [&] { return b.width(); }); })
      .def_property_readonly("count", [](const Blob& b) { return b.count(); })
      .def("reshape",
           [](Blob& b, const py::args& dims, const py::kwargs& kwargs) {
             const auto shape = positional_shape(dims, kwargs, "Blob.reshape");
             guard_caffe("Blob.reshape", [&] { b.Reshape(shape); });
           })
      .def_property_readonly("data", [](Blob& b) { return to_array(host_view(b, BlobPart::kData)); })
      .def_property_readonly("diff", [](Blob& b) { return to_array(host_view(b, BlobPart::kDiff)); });

  py::bind_vector<BlobVec>(m, "BlobVec")
      .def("add_blob", [](BlobVec& blobs, const py::args& dims, const py::kwargs& kwargs) {
        const auto shape = positional_shape(dims, kwargs, "BlobVec.add_blob");
        blobs.push_back(guard_caffe("BlobVec.add_blob", [&] { return boost::make_shared<Blob>(shape); }));
      });
}

}  // namespace surgery::bindings
