#include <climits>

#include "bindings/bindings.hpp"
#include "surgery/base/logging.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/runtime/threads.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "caffe-surgery's compiled core; use the `surgery` package instead.";
  surgery::set_caffe_log_level(2);
  m.def("set_log_level", &surgery::set_caffe_log_level, pybind11::arg("level"),
        "Caffe's glog threshold: 0 INFO, 1 WARNING, 2 ERROR (default).");
  m.def("log_level", &surgery::caffe_log_level);
  m.def("set_memory_limit", [](const pybind11::int_& bytes) {
          // A range check here, so -1 or 2**64 is a ValueError, not pybind's TypeError.
          const auto n = surgery::bindings::integer_in(bytes, 0, LLONG_MAX);
          if (!n) {
            throw pybind11::value_error("the memory limit is a number of bytes from 0 to 2**63 - 1, not " +
                                        std::string(pybind11::str(bytes)));
          }
          surgery::set_memory_limit(static_cast<uint64_t>(*n));
        }, pybind11::arg("bytes"),
        "Refuse nets whose forward needs more bytes; 0 restores the default "
        "(three quarters of physical memory).");
  m.def("memory_limit", &surgery::memory_limit);
  m.def("memory_in_use", &surgery::memory_in_use,
        "Host bytes Caffe's blobs hold now, counted against the memory limit.");
  m.def("set_num_threads", [](const pybind11::int_& threads) {
          const auto n = surgery::bindings::integer_in(threads, 0, 4096);
          if (!n) {
            throw pybind11::value_error("the number of threads is 1 to 4096 (0: all CPUs), not " +
                                        std::string(pybind11::str(threads)));
          }
          surgery::set_num_threads(static_cast<int>(*n));
        }, pybind11::arg("threads"),
        "Threads every forward uses, for OpenBLAS's GEMMs and libcaffe's own "
        "loops alike, process-wide; 0 restores the default (all CPUs).");
  m.def("num_threads", &surgery::num_threads);
  m.def("thread_counts", [] {
          const surgery::ThreadCounts counts = surgery::thread_counts();
          pybind11::dict out;
          out["blas"] = counts.blas;
          out["caffe"] = counts.caffe;
          return out;
        }, "Threads each pool uses now, read back from the libraries (0: that "
           "libcaffe has no such pool).");
  surgery::bindings::bind_errors(m);
  surgery::bindings::bind_net(m);
  surgery::bindings::bind_surgery(m);
  surgery::bindings::bind_trainer(m);
  surgery::bindings::bind_device(m);
  surgery::bindings::bind_pycaffe(m);
}
