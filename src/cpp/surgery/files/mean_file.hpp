// Caffe's mean files (.binaryproto: one serialized BlobProto, as
// compute_image_mean writes them), read as hostile input: the file's size
// and every dimension are bounded before anything is allocated.
#ifndef SURGERY_MEAN_FILE_HPP_
#define SURGERY_MEAN_FILE_HPP_

#include <cstdint>
#include <string>
#include <vector>

namespace surgery {

struct MeanBlob {
  std::vector<int64_t> shape;  // as stored: N x C x H x W (legacy fields) or the shape field
  std::vector<float> data;     // float data, or double data converted
};

// FileError if unreadable or larger than the memory limit, ParseError if not
// a BlobProto or if its values do not fill its shape.
MeanBlob read_mean_file(const std::string& path);

}  // namespace surgery

#endif  // SURGERY_MEAN_FILE_HPP_
