#include "surgery/base/memory_guard.hpp"

#include <unistd.h>

#include <atomic>
#include <set>
#include <sstream>

#include "surgery/base/errors.hpp"

// Our libcaffe has the allocator budget; a Caffe the user brings may not, and
// then only the estimate below guards (docs/getting-started.md, "Install").
#if __has_include("caffe/memory_budget.hpp")
#include "caffe/memory_budget.hpp"
#define SURGERY_CAFFE_MEMORY_BUDGET 1
#endif

namespace surgery {
namespace {

std::atomic<uint64_t> limit{0};

uint64_t default_limit() {
  const uint64_t pages = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES));
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return pages * page / 4 * 3;
}

void apply_to_caffe(uint64_t bytes) {
#ifdef SURGERY_CAFFE_MEMORY_BUDGET
  caffe::MemoryBudget::SetLimit(static_cast<size_t>(bytes));
#else
  (void)bytes;
#endif
}

// The budget holds from the moment the library is loaded, not only after a
// first set_memory_limit call.
const bool default_applied = (apply_to_caffe(default_limit()), true);

// Caffe's ConvolutionLayer keeps a (C/g * kh * kw * g) x (H' * W') buffer,
// except for 1x1 kernels at stride 1 without pad, which skip im2col.
uint64_t im2col_floats(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                       const caffe::Blob<float>& top) {
  if (std::string(layer.type()) != "Convolution" || bottom.num_axes() != 4) return 0;
  const auto& weights = *layer.blobs().at(0);
  const uint64_t kernel = static_cast<uint64_t>(weights.count(1));
  if (weights.shape(2) == 1 && weights.shape(3) == 1) return 0;
  const uint64_t groups = static_cast<uint64_t>(bottom.shape(1)) / weights.shape(1);
  return kernel * groups * top.count(2);
}

}  // namespace

void set_memory_limit(uint64_t bytes) {
  limit = bytes;
  apply_to_caffe(memory_limit());
}

uint64_t memory_limit() { return limit ? limit.load() : default_limit(); }

uint64_t memory_in_use() {
#ifdef SURGERY_CAFFE_MEMORY_BUDGET
  return caffe::MemoryBudget::InUse(false);
#else
  return 0;
#endif
}

uint64_t forward_bytes(const caffe::Net<float>& net) {
  uint64_t floats = 0;
  std::set<const caffe::SyncedMemory*> counted;  // in-place and shared blobs once
  for (const auto& blob : net.blobs()) {
    if (counted.insert(blob->data().get()).second) floats += blob->count();
  }
  for (const auto& param : net.params()) {
    if (counted.insert(param->data().get()).second) floats += param->count();
  }
  uint64_t col = 0;
  for (size_t i = 0; i < net.layers().size(); ++i) {
    if (net.bottom_vecs()[i].empty() || net.top_vecs()[i].empty()) continue;
    col = std::max(col, im2col_floats(*net.layers()[i], *net.bottom_vecs()[i][0],
                                      *net.top_vecs()[i][0]));
  }
  return (floats + col) * sizeof(float);
}

void check_memory(const caffe::Net<float>& net, const std::string& what) {
  const uint64_t need = forward_bytes(net);
  const uint64_t cap = memory_limit();
  if (need <= cap) return;
  std::ostringstream out;
  out.precision(3);
  out << what << " would need " << need / 1073741824.0 << " GiB for its blobs, more than the "
      << "memory limit of " << cap / 1073741824.0 << " GiB (surgery.set_memory_limit)";
  throw MemoryLimitError(out.str());
}

void release_excess_memory(caffe::Net<float>& net) {
#ifdef SURGERY_CAFFE_MEMORY_BUDGET
  for (const auto& blob : net.blobs()) blob->ShrinkToFit();
#else
  (void)net;
#endif
}

}  // namespace surgery
