#include "surgery/train/solver_file.hpp"

#include "caffe/sgd_solvers.hpp"
#include "caffe/solver_factory.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/definition/phase_filter.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/proto_io.hpp"

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

}  // namespace surgery
