// How many threads a forward uses. Two pools work inside libcaffe: OpenBLAS's
// (every convolution is a GEMM) and, with our recipe's patch 0009, libcaffe's
// own loops (im2col, pooling, LRN, ReLU). One setting drives both, so they
// agree and together use the cores they were given, not twice as many.
// The pools take turns, so OpenBLAS's idle threads should sleep soon rather
// than spin for its default 2^28 cycles: OPENBLAS_THREAD_TIMEOUT, read when
// OpenBLAS loads (the Python package sets 16; a C++ program sets it in its
// environment before it starts).
#ifndef SURGERY_THREADS_HPP_
#define SURGERY_THREADS_HPP_

namespace surgery {

// What each pool uses now, read back from the libraries; 0 where the
// loaded libcaffe lacks that pool (a BLAS other than OpenBLAS, a Caffe
// without patch 0009).
struct ThreadCounts {
  int blas = 0;
  int caffe = 0;
};

// Sets both pools to `threads` (>= 1) for the whole process; 0 restores the
// default: the CPUs this process may run on. Throws std::invalid_argument
// for a negative count. Running nets pick the change up at their next GEMM
// or layer.
void set_num_threads(int threads);

// The setting both pools follow: the last set_num_threads, else the CPUs
// this process may run on.
int num_threads();

ThreadCounts thread_counts();

}  // namespace surgery

#endif  // SURGERY_THREADS_HPP_
