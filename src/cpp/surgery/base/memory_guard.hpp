// The memory limit, enforced twice: an estimate refuses a net or an input
// shape whose blobs would need more than the limit before Caffe touches them
// (Caffe allocates blob memory lazily, on first use, so a net can be built
// and reshaped and only then measured), and our libcaffe's allocator budget
// (third_party/caffe/patches/0002) refuses any single blob allocation that
// would take the bytes Caffe holds past the limit, wherever it happens:
// fillers, DummyData, im2col and Deconvolution buffers, forward.
#ifndef SURGERY_MEMORY_GUARD_HPP_
#define SURGERY_MEMORY_GUARD_HPP_

#include <cstdint>
#include <string>

#include "caffe/net.hpp"

namespace surgery {

// The limit in bytes, for the whole process (host and device memory are each
// held to it); 0 restores the default, three quarters of physical memory.
void set_memory_limit(uint64_t bytes);
uint64_t memory_limit();

// Host bytes Caffe's blobs hold now, as the allocator budget counts them (0
// with a Caffe that has no budget).
uint64_t memory_in_use();

// Bytes a forward pass needs: every blob's data, every param, and each
// convolution's im2col buffer.
uint64_t forward_bytes(const caffe::Net<float>& net);

// Bytes a training iteration needs: a forward's, a gradient beside every
// blob and param, and `history` more copies of the params (the solver's
// momentum: 1 for SGD, 2 for Adam).
uint64_t training_bytes(const caffe::Net<float>& net, int history);

// MemoryLimitError naming `what`, the need and the limit, if the net exceeds it.
void check_memory(const caffe::Net<float>& net, const std::string& what);
// The same for `need` bytes, as training_bytes gives them.
void check_memory(uint64_t need, const std::string& what);

// Gives back blob memory beyond each blob's current shape, as after a refused
// reshape (Caffe's blobs never shrink on their own). Blob values are lost.
void release_excess_memory(caffe::Net<float>& net);

}  // namespace surgery

#endif  // SURGERY_MEMORY_GUARD_HPP_
