// Saves a net's weights as a binary caffemodel straight from blob memory.
#ifndef SURGERY_CAFFEMODEL_WRITER_HPP_
#define SURGERY_CAFFEMODEL_WRITER_HPP_

#include <string>

#include "caffe/net.hpp"
#include "surgery/files/atomic_file.hpp"
#include "surgery/files/file_digest.hpp"

namespace surgery {

// Writes a NetParameter holding, for each layer with parameters, its name,
// type and blobs (shape + float data), which is all Caffe's
// CopyTrainedLayersFrom and OpenCV's reader use. The protobuf encoding is
// produced layer by layer with the float data copied from the blobs
// directly to the file, so saving a 500 MB model needs no 500 MB message.
// Atomic (atomic_file.hpp).
void write_caffemodel(const caffe::Net<float>& net, const std::string& path);

// The same, staged (commit() puts it in place); `digest`, if given, receives
// the size and SHA-256 of the bytes written, hashed as they are written.
StagedFile stage_caffemodel(const caffe::Net<float>& net, const std::string& path,
                            FileDigest* digest);

}  // namespace surgery

#endif  // SURGERY_CAFFEMODEL_WRITER_HPP_
