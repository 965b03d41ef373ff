// The pycaffe face's compiled half (surgery._core.pycaffe): the classes and
// functions upstream pycaffe's _caffe module gives pycaffe.py, over nets
// built by our loader. Caffe holds its objects in boost::shared_ptr, so
// Python does too: a blob or layer taken from a net outlives the net.
#ifndef SURGERY_BINDINGS_PYCAFFE_HPP_
#define SURGERY_BINDINGS_PYCAFFE_HPP_

#include <pybind11/pybind11.h>

#include <memory>
#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/net.hpp"
#include "bindings/bindings.hpp"
#include "surgery/definition/layer_policy.hpp"

PYBIND11_DECLARE_HOLDER_TYPE(T, boost::shared_ptr<T>)

namespace surgery::bindings {

using Blob = caffe::Blob<float>;
using BlobVec = std::vector<boost::shared_ptr<Blob>>;

}  // namespace surgery::bindings

// A layer's own blobs, bound as a list-like view (pycaffe's BlobVec) so
// that a Python layer's self.blobs.add_blob() grows the layer's vector.
PYBIND11_MAKE_OPAQUE(surgery::bindings::BlobVec)

namespace surgery::bindings {

// A net as pycaffe sees it: built by our loader (`owner` holds it) or by a
// solver (shared with it). `guard` serializes calls into the net, shared
// with whatever else may call into it (the solver, the surgery.Net).
struct FaceNet {
  std::shared_ptr<PyNet> owner;  // null for a solver's nets
  boost::shared_ptr<caffe::Net<float>> net;
  std::shared_ptr<Guard> guard;
  // Arrays a MemoryData layer reads (set_input_arrays), kept alive here.
  pybind11::object input_arrays;
};

// What nets and solvers built through the face may construct; set from
// Python (surgery.pycaffe.set_load_policy) for the whole process.
LoadPolicy& pycaffe_policy();

void bind_pycaffe_blob(pybind11::module_& m);
void bind_pycaffe_layer(pybind11::module_& m);
void bind_pycaffe_net(pybind11::module_& m);
void bind_pycaffe_solver(pybind11::module_& m);

}  // namespace surgery::bindings

#endif  // SURGERY_BINDINGS_PYCAFFE_HPP_
