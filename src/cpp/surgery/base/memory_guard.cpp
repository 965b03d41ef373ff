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

namespace {

// Floats of a net's blobs, of its params (in-place and shared blobs once)
// and of its largest im2col buffer.
struct Footprint {
  uint64_t blobs = 0, params = 0, col = 0;
};

Footprint footprint(const caffe::Net<float>& net) {
  Footprint out;
  std::set<const caffe::SyncedMemory*> counted;
  for (const auto& blob : net.blobs()) {
    if (counted.insert(blob->data().get()).second) out.blobs += blob->count();
  }
  for (const auto& param : net.params()) {
    if (counted.insert(param->data().get()).second) out.params += param->count();
  }
  for (size_t i = 0; i < net.layers().size(); ++i) {
    if (net.bottom_vecs()[i].empty() || net.top_vecs()[i].empty()) continue;
    out.col = std::max(out.col, im2col_floats(*net.layers()[i], *net.bottom_vecs()[i][0],
                                              *net.top_vecs()[i][0]));
  }
  return out;
}

}  // namespace

uint64_t forward_bytes(const caffe::Net<float>& net) {
  const Footprint f = footprint(net);
  return (f.blobs + f.params + f.col) * sizeof(float);
}

uint64_t training_bytes(const caffe::Net<float>& net, int history) {
  const Footprint f = footprint(net);
  return (2 * f.blobs + (2 + history) * f.params + f.col) * sizeof(float);
}

void check_memory(const caffe::Net<float>& net, const std::string& what) {
  check_memory(forward_bytes(net), what);
}

void check_memory(uint64_t need, const std::string& what) {
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
