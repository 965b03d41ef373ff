#include "surgery/train/solver_snapshot.hpp"

#include <vector>

#include "caffe/sgd_solvers.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/solver_state.hpp"
#include "surgery/files/weights_check.hpp"

namespace surgery {
namespace {

// What Caffe's Snapshot and RestoreSolverStateFromBinaryProto read and set:
// protected members, named through a derived class.
struct SolverStateAccess : caffe::SGDSolver<float> {
  static std::vector<caffe::shared_ptr<caffe::Blob<float>>>& history(caffe::Solver<float>& s) {
    // Every solver libcaffe registers (SGD, Nesterov, AdaGrad, RMSProp,
    // AdaDelta, Adam) keeps its state in SGDSolver's history.
    auto* sgd = dynamic_cast<caffe::SGDSolver<float>*>(&s);
    if (sgd == nullptr) throw Error(std::string("solver type ") + s.type() + " keeps no history");
    return sgd->*(&SolverStateAccess::history_);
  }
  static int& iter(caffe::Solver<float>& s) { return s.*(&SolverStateAccess::iter_); }
  static int& current_step(caffe::Solver<float>& s) {
    return s.*(&SolverStateAccess::current_step_);
  }
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_of(const caffe::BlobProto& proto) {
  std::vector<int64_t> shape(proto.shape().dim().begin(), proto.shape().dim().end());
  return shape_text(shape);
}

}  // namespace

caffe::SolverState solver_state_of(caffe::Solver<float>& solver, const std::string& learned_net) {
  caffe::SolverState state;
  state.set_iter(solver.iter());
  state.set_current_step(SolverStateAccess::current_step(solver));
  state.set_learned_net(learned_net);
  for (const auto& blob : SolverStateAccess::history(solver)) blob->ToProto(state.add_history());
  return state;
}

void restore_solver(caffe::Solver<float>& solver, const std::string& state_file,
                    const std::string& weights) {
  if (ends_with(state_file, ".h5")) {
    throw FileError("'" + state_file + "' is an HDF5 solver state, which Caffe reads with "
                    "HDF5's own reader: snapshot in the binary format (snapshot_format: "
                    "BINARYPROTO, the default) to restore it here");
  }
  auto& history = SolverStateAccess::history(solver);
  const caffe::SolverState state = read_solver_state(state_file);
  if (state.history_size() != static_cast<int>(history.size())) {
    throw ShapeError("solver state '" + state_file + "' has " +
                     std::to_string(state.history_size()) + " history blobs, the " +
                     solver.type() + " solver " + std::to_string(history.size()) +
                     ": a snapshot of another net or solver type");
  }
  for (int i = 0; i < state.history_size(); ++i) {
    if (!history[i]->ShapeEquals(state.history(i))) {
      throw ShapeError("solver state '" + state_file + "': history blob " + std::to_string(i) +
                       " is " + shape_of(state.history(i)) + ", the net's is " +
                       shape_text(history[i]->shape()) + ": a snapshot of another net");
    }
    check_blob_proto_fits("solver state '" + state_file + "', history", i, state.history(i),
                          *history[i]);
  }
  if (state.iter() < 0 || state.current_step() < 0) {
    throw ParseError("solver state '" + state_file + "' holds a negative iteration or step");
  }
  const std::string learned = weights.empty() ? state.learned_net() : weights;
  caffe::NetParameter learned_net;
  std::vector<BlobCopy> plan;
  if (!learned.empty()) {
    learned_net = read_net_binary(learned);
    plan = plan_weight_copy(*solver.net(), learned_net, learned);
  }
  // Everything is checked: from here on nothing throws.
  for (const auto& copy : plan) copy_blob_data(*copy.source, copy.target);
  for (int i = 0; i < state.history_size(); ++i) copy_blob_data(state.history(i), history[i].get());
  SolverStateAccess::iter(solver) = state.iter();
  SolverStateAccess::current_step(solver) = state.current_step();
}

}  // namespace surgery
