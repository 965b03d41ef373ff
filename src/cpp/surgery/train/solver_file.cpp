#include "surgery/train/solver_file.hpp"

#include "caffe/sgd_solvers.hpp"
#include "caffe/solver_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/definition/phase_filter.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/solver_state.hpp"
#include "surgery/files/weights_check.hpp"

namespace surgery {
namespace {

// The state Caffe builds a net in: the phase, then the net's own state, then
// the solver's (Solver::InitTrainNet and InitTestNets merge in this order).
caffe::NetState state_for(caffe::Phase phase, const caffe::NetParameter& net,
                          const caffe::NetState* solver_state) {
  caffe::NetState state;
  state.set_phase(phase);
  state.MergeFrom(net.state());
  if (solver_state) state.MergeFrom(*solver_state);
  return state;
}

void check_net(const caffe::NetParameter& net, const caffe::NetState& state,
               const std::string& source, const LoadPolicy& policy) {
  validate_definition(filter_by_state(net, state), source, policy);
}

void check_nets(const caffe::SolverParameter& solver, const std::string& path,
                const LoadPolicy& policy) {
  const caffe::NetParameter& train =
      solver.has_train_net_param() ? solver.train_net_param() : solver.net_param();
  check_net(train, state_for(caffe::TRAIN, train, &solver.train_state()),
            path + " (train net)", policy);
  int index = 0;
  auto test_state = [&](int i) { return i < solver.test_state_size() ? &solver.test_state(i) : nullptr; };
  for (const auto& net : solver.test_net_param()) {
    check_net(net, state_for(caffe::TEST, net, test_state(index)),
              path + " (test net " + std::to_string(index) + ")", policy);
    ++index;
  }
  if (!solver.has_net_param()) return;
  for (; index < solver.test_iter_size(); ++index) {
    check_net(solver.net_param(), state_for(caffe::TEST, solver.net_param(), test_state(index)),
              path + " (test net " + std::to_string(index) + ")", policy);
  }
}

// What Caffe's RestoreSolverStateFromBinaryProto sets: protected members,
// named through a derived class.
struct SolverStateAccess : caffe::SGDSolver<float> {
  static std::vector<caffe::shared_ptr<caffe::Blob<float>>>& history(caffe::SGDSolver<float>& s) {
    return s.*(&SolverStateAccess::history_);
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

}  // namespace

caffe::SolverParameter read_solver_file(const std::string& path, const LoadPolicy& policy) {
  caffe::SolverParameter solver = parse_solver_text(read_text_file(path, "solver prototxt"), path);
  // Caffe would open these files itself, with its unbounded readers.
  if (solver.has_net()) {
    *solver.mutable_net_param() = read_net_text(solver.net());
    solver.clear_net();
  }
  if (solver.has_train_net()) {
    *solver.mutable_train_net_param() = read_net_text(solver.train_net());
    solver.clear_train_net();
  }
  for (const auto& file : solver.test_net()) *solver.add_test_net_param() = read_net_text(file);
  solver.clear_test_net();
  if (!solver.has_net_param() && !solver.has_train_net_param()) {
    throw NetDefinitionError("solver '" + path + "' names no net: give net (or train_net) "
                             "with the path of a net prototxt");
  }
  check_nets(solver, path, policy);
  return solver;
}

std::unique_ptr<caffe::Solver<float>> create_solver(caffe::SolverParameter param,
                                                    const std::string& type,
                                                    const std::string& source) {
  if (!type.empty()) param.set_type(type);
  std::unique_ptr<caffe::Solver<float>> solver(
      guard_caffe("creating the solver of '" + source + "'",
                  [&] { return caffe::SolverRegistry<float>::CreateSolver(param); }));
  check_memory(*solver->net(), "the train net of '" + source + "'");
  for (const auto& net : solver->test_nets()) {
    check_memory(*net, "a test net of '" + source + "'");
  }
  return solver;
}

void restore_solver(caffe::Solver<float>& solver, const std::string& state_file) {
  if (ends_with(state_file, ".h5")) {
    throw FileError("'" + state_file + "' is an HDF5 solver state, which Caffe reads with "
                    "HDF5's own reader: snapshot in the binary format (snapshot_format: "
                    "BINARYPROTO, the default) to restore it here");
  }
  auto* sgd = dynamic_cast<caffe::SGDSolver<float>*>(&solver);
  if (sgd == nullptr) throw Error(std::string("cannot restore a ") + solver.type() + " solver");
  const caffe::SolverState state = read_solver_state(state_file);
  auto& history = SolverStateAccess::history(*sgd);
  if (state.history_size() != static_cast<int>(history.size())) {
    throw ShapeError("solver state '" + state_file + "' has " +
                     std::to_string(state.history_size()) + " history blobs, the solver " +
                     std::to_string(history.size()) + ": it was saved by another net or solver type");
  }
  for (int i = 0; i < state.history_size(); ++i) {
    check_blob_proto_fits("solver state '" + state_file + "', history", i, state.history(i),
                          *history[i]);
  }
  caffe::NetParameter weights;
  std::vector<BlobCopy> plan;
  if (state.has_learned_net()) {
    weights = read_net_binary(state.learned_net());
    plan = plan_weight_copy(*solver.net(), weights, state.learned_net());
  }
  // Everything is checked: from here on nothing throws.
  for (const auto& copy : plan) copy_blob_data(*copy.source, copy.target);
  for (int i = 0; i < state.history_size(); ++i) copy_blob_data(state.history(i), history[i].get());
  SolverStateAccess::iter(solver) = state.iter();
  SolverStateAccess::current_step(solver) = state.current_step();
}

}  // namespace surgery
