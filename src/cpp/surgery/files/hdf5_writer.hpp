// A net's weights in Caffe's HDF5 layout (pycaffe's save_hdf5).
#ifndef SURGERY_HDF5_WRITER_HPP_
#define SURGERY_HDF5_WRITER_HPP_

#include <string>

#include "caffe/net.hpp"

namespace surgery {

// Writes `net`'s weights to `path` as Net::ToHDF5 does, where a save may
// write (resolve_save_target: a symlink followed, only a regular file
// replaced, FileError otherwise). The file appears whole or not at all:
// libcaffe's ToHDF5 writes beside it and renames (patch 0015); an existing
// file's permission bits are kept.
void save_hdf5(const caffe::Net<float>& net, const std::string& path);

}  // namespace surgery

#endif  // SURGERY_HDF5_WRITER_HPP_
