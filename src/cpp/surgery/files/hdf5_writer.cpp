#include "surgery/files/hdf5_writer.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "surgery/base/errors.hpp"
#include "surgery/files/atomic_file.hpp"

namespace surgery {

void save_hdf5(const caffe::Net<float>& net, const std::string& path) {
  const SaveTarget target = resolve_save_target(path);
  guard_caffe("save_hdf5 to '" + path + "'", [&] { net.ToHDF5(target.path); });
  // HDF5 names the file it writes, so it cannot write into our staged
  // descriptor; libcaffe stages it itself, with a new file's mode.
  if (target.exists && chmod(target.path.c_str(), target.mode) != 0) {
    throw FileError("'" + path + "' was saved but its permissions could not be kept: " +
                    std::strerror(errno));
  }
}

}  // namespace surgery
