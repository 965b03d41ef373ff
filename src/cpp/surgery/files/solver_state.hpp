// A solver's state (iteration, learning-rate step, momentum history) as
// Caffe's .solverstate: read under the same rules as a caffemodel, written
// atomically, so a resumed run never starts from half a snapshot.
#ifndef SURGERY_SOLVER_STATE_HPP_
#define SURGERY_SOLVER_STATE_HPP_

#include <string>

#include "caffe/proto/caffe.pb.h"
#include "surgery/files/atomic_file.hpp"

namespace surgery {

// FileError if `path` is not a regular file or cannot be read, ParseError if
// it is truncated or not a binary SolverState.
caffe::SolverState read_solver_state(const std::string& path);

// Staged (atomic_file.hpp): commit() puts it in place.
StagedFile stage_solver_state(const caffe::SolverState& state, const std::string& path);

}  // namespace surgery

#endif  // SURGERY_SOLVER_STATE_HPP_
