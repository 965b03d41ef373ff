// Refuses a net whose blobs would need more memory than a limit, before
// Caffe touches it: Caffe allocates blob memory lazily, on first use, so a
// net can be built and reshaped and only then measured.
#ifndef SURGERY_MEMORY_GUARD_HPP_
#define SURGERY_MEMORY_GUARD_HPP_

#include <cstdint>
#include <string>

#include "caffe/net.hpp"

namespace surgery {

// The limit in bytes; 0 restores the default, three quarters of physical memory.
void set_memory_limit(uint64_t bytes);
uint64_t memory_limit();

// Bytes a forward pass needs: every blob's data, every param, and each
// convolution's im2col buffer.
uint64_t forward_bytes(const caffe::Net<float>& net);

// ShapeError naming `what`, the need and the limit, if the net exceeds it.
void check_memory(const caffe::Net<float>& net, const std::string& what);

}  // namespace surgery

#endif  // SURGERY_MEMORY_GUARD_HPP_
