// pycaffe's solvers: the solver prototxt and the nets it names are read by
// our loader (train/solver_file.hpp); Caffe gets them parsed and checked.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/pycaffe.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/train/solver_file.hpp"
#include "surgery/train/solver_snapshot.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

// A solver with the guard its nets share: a net taken from it (solver.net)
// and the solver's own steps are one net, serialized by one guard.
struct FaceSolver {
  std::shared_ptr<Guard> guard = std::make_shared<Guard>();
  std::unique_ptr<caffe::Solver<float>> solver;
};

// One C++ type per Python class, so that isinstance(s, caffe.SGDSolver) holds.
template <int Kind>
struct TypedSolver : FaceSolver {};

template <typename Face>
std::unique_ptr<Face> make(const Path& file, const std::string& type) {
  auto face = std::make_unique<Face>();
  const LoadPolicy policy = pycaffe_policy();
  py::gil_scoped_release release;
  const CaffeSection section;
  face->solver = create_solver(read_solver_file(file.bytes, policy), type, file.bytes);
  return face;
}

std::unique_ptr<FaceNet> face_of(const FaceSolver& s, const boost::shared_ptr<caffe::Net<float>>& net) {
  auto face = std::make_unique<FaceNet>();
  face->net = net;
  face->guard = s.guard;
  return face;
}

// SGDSolver's update step is protected in this Caffe; upstream's pycaffe
// calls it as apply_update. A derived class may name it.
struct UpdateAccess : caffe::Solver<float> {
  static void apply(caffe::Solver<float>& solver) { (solver.*(&UpdateAccess::ApplyUpdate))(); }
};

template <int Kind>
void bind_typed(py::module_& m, const char* name, const char* type) {
  py::class_<TypedSolver<Kind>, FaceSolver>(m, name).def(
      py::init([type](const Path& file) { return make<TypedSolver<Kind>>(file, type); }),
      py::arg("solver_file"));
}

}  // namespace

void bind_pycaffe_solver(py::module_& m) {
  py::class_<FaceSolver>(m, "Solver")
      .def_property_readonly("net", [](const FaceSolver& s) { return face_of(s, s.solver->net()); })
      .def_property_readonly("test_nets",
                             [](const FaceSolver& s) {
                               std::vector<std::unique_ptr<FaceNet>> out;
                               for (const auto& net : s.solver->test_nets()) out.push_back(face_of(s, net));
                               return out;
                             })
      .def_property_readonly("iter", [](const FaceSolver& s) { return s.solver->iter(); })
      .def("step",
           [](FaceSolver& s, int iters) {
             locked(*s.guard, [&] { guard_caffe("step", [&] { s.solver->Step(iters); }); });
           },
           py::arg("iters"))
      .def("solve",
           [](FaceSolver& s, std::optional<Path> resume) {
             locked(*s.guard, [&] {
               // Caffe would restore with its own readers: ours first.
               if (resume) restore_solver(*s.solver, resume->bytes);
               guard_caffe("solve", [&] { s.solver->Solve(); });
             });
           },
           py::arg("resume_file") = py::none())
      .def("apply_update",
           [](FaceSolver& s) { locked(*s.guard, [&] { UpdateAccess::apply(*s.solver); }); })
      .def("snapshot",
           [](FaceSolver& s) { locked(*s.guard, [&] { guard_caffe("snapshot", [&] { s.solver->Snapshot(); }); }); })
      .def("restore", [](FaceSolver& s, const Path& state) {
        locked(*s.guard, [&] { restore_solver(*s.solver, state.bytes); });
      });
  bind_typed<0>(m, "SGDSolver", "SGD");
  bind_typed<1>(m, "NesterovSolver", "Nesterov");
  bind_typed<2>(m, "AdaGradSolver", "AdaGrad");
  bind_typed<3>(m, "RMSPropSolver", "RMSProp");
  bind_typed<4>(m, "AdaDeltaSolver", "AdaDelta");
  bind_typed<5>(m, "AdamSolver", "Adam");
  m.def("get_solver",
        [](const Path& file) { return make<FaceSolver>(file, ""); },
        py::arg("solver_file"));
}

}  // namespace surgery::bindings
