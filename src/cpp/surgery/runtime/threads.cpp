#include "surgery/runtime/threads.hpp"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "caffe/common.hpp"

namespace surgery {

namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

// 0: not set, follow the CPUs available.
std::atomic<int> chosen(0);

// The knobs are looked up at run time in libcaffe and what it links, so a
// Caffe built elsewhere (another BLAS, no patch 0009) still works: the
// missing knob is skipped. OpenBLAS spells them by build: PyPI's
// scipy-openblas prefixes `scipy_`, 64-bit-integer builds suffix `64_`.
void* libcaffe_scope() {
  static void* const handle = [] {
    Dl_info info{};
    // A function libcaffe defines (not inline), so its address is in it.
    if (dladdr(reinterpret_cast<void*>(&caffe::Caffe::set_random_seed), &info) == 0 ||
        info.dli_fname == nullptr) {
      return static_cast<void*>(nullptr);
    }
    // Already loaded; this only names it. dlsym on it then searches
    // libcaffe and the libraries it links (OpenBLAS).
    return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  }();
  return handle;
}

template <typename F>
F find(std::initializer_list<const char*> names) {
  void* scope = libcaffe_scope();
  for (const char* name : names) {
    void* symbol = scope != nullptr ? dlsym(scope, name) : nullptr;
    if (symbol == nullptr) {
      symbol = dlsym(RTLD_DEFAULT, name);
    }
    if (symbol != nullptr) {
      return reinterpret_cast<F>(symbol);
    }
  }
  return nullptr;
}

struct Knobs {
  SetThreads set_blas = find<SetThreads>({"scipy_openblas_set_num_threads",
      "openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
      "openblas_set_num_threads64_"});
  GetThreads get_blas = find<GetThreads>({"scipy_openblas_get_num_threads",
      "openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
      "openblas_get_num_threads64_"});
  SetThreads set_caffe = find<SetThreads>({"caffe_set_parallel_threads"});
  GetThreads get_caffe = find<GetThreads>({"caffe_parallel_threads"});
};

const Knobs& knobs() {
  static const Knobs found;
  return found;
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

void set_num_threads(int threads) {
  if (threads < 0) {
    throw std::invalid_argument("the number of threads is 1 or more (0: all CPUs), not " +
                                std::to_string(threads));
  }
  chosen.store(threads);
  const int count = threads > 0 ? threads : available_cpus();
  if (knobs().set_blas != nullptr) {
    knobs().set_blas(count);
  }
  if (knobs().set_caffe != nullptr) {
    knobs().set_caffe(threads);
  }
}

int num_threads() {
  const int threads = chosen.load();
  return threads > 0 ? threads : available_cpus();
}

ThreadCounts thread_counts() {
  ThreadCounts counts;
  if (knobs().get_blas != nullptr) {
    counts.blas = knobs().get_blas();
  }
  if (knobs().get_caffe != nullptr) {
    counts.caffe = knobs().get_caffe();
  }
  return counts;
}

}  // namespace surgery
