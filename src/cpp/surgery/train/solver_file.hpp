// Solvers read from a solver prototxt with the same checks as nets: the net
// files the solver names are read by our bounded readers, validated under
// the caller's load policy for every state a net is built in, and handed to
// Caffe inside the SolverParameter, so Caffe never opens a definition itself.
#ifndef SURGERY_SOLVER_FILE_HPP_
#define SURGERY_SOLVER_FILE_HPP_

#include <memory>
#include <string>

#include "caffe/proto/caffe.pb.h"
#include "caffe/solver.hpp"
#include "surgery/definition/layer_policy.hpp"

namespace surgery {

// The solver at `path` with its nets inline (net_param, train_net_param,
// test_net_param; the file fields cleared). FileError if a file is not a
// readable regular file (or over kMaxPrototxtBytes), ParseError naming the
// file, line and column, NetDefinitionError if a net breaks the policy.
caffe::SolverParameter read_solver_file(const std::string& path, const LoadPolicy& policy);

// A Caffe solver of `type` ("SGD", "Adam", ...; empty: the parameter's own
// type) built from a parameter read_solver_file returned. Caffe's refusals
// come out as CaffeError, and nets past the memory limit as MemoryLimitError.
std::unique_ptr<caffe::Solver<float>> create_solver(caffe::SolverParameter param,
                                                    const std::string& type,
                                                    const std::string& source);

}  // namespace surgery

#endif  // SURGERY_SOLVER_FILE_HPP_
