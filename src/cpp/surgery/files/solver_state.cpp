#include "surgery/files/solver_state.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <climits>

#include "surgery/base/errors.hpp"
#include "surgery/files/input_file.hpp"

namespace surgery {

caffe::SolverState read_solver_state(const std::string& path) {
  InputFile file(path, "solver state");
  // The history is as large as the weights: the bound protobuf reads.
  if (file.size() > INT_MAX) {
    throw ParseError("solver state '" + path + "' is " + std::to_string(file.size()) +
                     " bytes: protobuf reads at most 2 GiB - 1");
  }
  google::protobuf::io::FileInputStream raw(file.fd());
  google::protobuf::io::CodedInputStream coded(&raw);
  coded.SetTotalBytesLimit(static_cast<int>(file.size()));
  caffe::SolverState state;
  if (!state.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage() ||
      !state.has_iter()) {
    throw ParseError("cannot parse solver state '" + path +
                     "': truncated, or not a binary SolverState");
  }
  return state;
}

StagedFile stage_solver_state(const caffe::SolverState& state, const std::string& path) {
  return StagedFile(path, [&](int fd) { return state.SerializeToFileDescriptor(fd); });
}

}  // namespace surgery
