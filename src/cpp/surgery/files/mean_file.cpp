#include "surgery/files/mean_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "caffe/proto/caffe.pb.h"
#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/base/shape_text.hpp"
#include "surgery/files/proto_io.hpp"

namespace surgery {

MeanBlob read_mean_file(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    throw FileError("cannot read mean file '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) throw FileError("mean file '" + path + "' is not a regular file");
  // A BlobProto's values take at least 4 bytes each in the file, so the
  // file's size bounds what parsing allocates.
  if (static_cast<uint64_t>(info.st_size) > memory_limit() / 2 || info.st_size > INT_MAX) {
    throw FileError("mean file '" + path + "' is " + std::to_string(info.st_size) +
                    " bytes, more than the memory limit allows (surgery.set_memory_limit)");
  }
  const std::string bytes = read_text_file(path, "mean file");
  caffe::BlobProto blob;
  if (!blob.ParseFromString(bytes)) {
    throw ParseError("cannot parse mean file '" + path + "': not a binary BlobProto");
  }
  MeanBlob mean;
  if (blob.has_shape()) {
    mean.shape.assign(blob.shape().dim().begin(), blob.shape().dim().end());
  } else {
    mean.shape = {blob.num(), blob.channels(), blob.height(), blob.width()};
  }
  for (const int64_t d : mean.shape) {
    if (d < 1 || d > INT_MAX) {
      throw ParseError("mean file '" + path + "': dimension " + std::to_string(d) +
                       " is outside 1 .. 2^31 - 1");
    }
  }
  const auto counted = element_count(mean.shape);
  if (!counted || *counted > INT_MAX) {
    throw ParseError("mean file '" + path + "': its shape holds more than 2^31 - 1 values");
  }
  const uint64_t count = static_cast<uint64_t>(*counted);
  if (mean.shape.empty()) throw ParseError("mean file '" + path + "' has no shape");
  const uint64_t floats = blob.data_size(), doubles = blob.double_data_size();
  if (floats == count) {
    mean.data.assign(blob.data().begin(), blob.data().end());
  } else if (floats == 0 && doubles == count) {
    mean.data.assign(blob.double_data().begin(), blob.double_data().end());
  } else {
    throw ParseError("mean file '" + path + "': " + std::to_string(floats ? floats : doubles) +
                     " values do not fill its shape of " + std::to_string(count));
  }
  return mean;
}

}  // namespace surgery
