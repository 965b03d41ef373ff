// A solver's snapshot (its position, its history and the weights it was
// taken with), taken and restored by the library rather than by Caffe, whose
// readers abort on a bad file and whose writers are not atomic.
#ifndef SURGERY_SOLVER_SNAPSHOT_HPP_
#define SURGERY_SOLVER_SNAPSHOT_HPP_

#include <string>

#include "caffe/proto/caffe.pb.h"
#include "caffe/solver.hpp"

namespace surgery {

// The SolverState Caffe's Snapshot writes: iteration, learning-rate step,
// every history blob, and `learned_net` (the caffemodel saved beside it).
caffe::SolverState solver_state_of(caffe::Solver<float>& solver, const std::string& learned_net);

// Caffe's Solver::Restore, through our readers: the solver state and the
// caffemodel (`weights`, or else the one the state names) are read bounded,
// every blob checked against the solver's (weights by plan_weight_copy,
// history blob by blob) before the first value changes; a mismatch raises
// ShapeError (ParseError for a malformed file) and leaves the solver as it
// was. HDF5 states (.h5) are refused: Caffe reads them with HDF5's own reader.
void restore_solver(caffe::Solver<float>& solver, const std::string& state_file,
                    const std::string& weights = "");

}  // namespace surgery

#endif  // SURGERY_SOLVER_SNAPSHOT_HPP_
