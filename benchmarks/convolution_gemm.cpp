// Recipe patch 0020: a convolution's forward product, weights (m x k) times
// im2col's columns (k x n), by OpenBLAS (caffe_cpu_gemm, as stock Caffe) and
// by oneDNN's sgemm (caffe::onednn_sgemm), on CaffeNet's shapes: conv1-conv5
// of one 451 image (a group each, groups run one after the other) and its
// fully connected layers of eight images, which stay with OpenBLAS.
//
//   OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=16 convolution_gemm REPEAT
//
// (as `import surgery` sets them: otherwise each side's idle threads spin
// after a call and take the cores from the other side's next one)
//
// Prints per shape: the median ms of REPEAT runs of each side (alternating,
// after one warm-up run of each), oneDNN's time over OpenBLAS's, and the
// largest difference between the two products relative to the largest
// |output|: float rounding, two summation orders.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "caffe/util/math_functions.hpp"
#include "caffe/util/onednn_gemm.hpp"

namespace {

struct Shape {
  const char* name;
  int m, n, k, groups;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int repeat = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  const Shape shapes[] = {{"conv1", 96, 12321, 363, 1},   {"conv2", 128, 3025, 1200, 2},
                          {"conv3", 384, 729, 2304, 1},   {"conv4", 192, 729, 1728, 2},
                          {"conv5", 128, 729, 1728, 2},   {"fc6 x8", 4096, 512, 9216, 1},
                          {"fc7 x8", 4096, 512, 4096, 1}, {"fc8 x8", 1000, 512, 4096, 1}};
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::printf("%-8s %12s %12s %8s %10s\n", "shape", "OpenBLAS ms", "oneDNN ms", "ratio",
              "max diff");
  double total[2] = {0, 0};
  for (const Shape& s : shapes) {
    std::vector<float> a(long(s.m) * s.k), b(long(s.k) * s.n), c[2];
    for (float& x : a) x = uniform(generator);
    for (float& x : b) x = uniform(generator);
    c[0].resize(long(s.m) * s.n);
    c[1].resize(c[0].size());
    auto run = [&](int side) {
      const auto start = std::chrono::steady_clock::now();
      for (int g = 0; g < s.groups; ++g) {
        if (side == 0) {
          caffe::caffe_cpu_gemm<float>(CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.f, a.data(),
                                       b.data(), 0.f, c[0].data());
        } else if (!caffe::onednn_sgemm(s.m, s.n, s.k, a.data(), b.data(), c[1].data())) {
          std::fprintf(stderr, "oneDNN refused %s\n", s.name);
          std::exit(1);
        }
      }
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
          .count();
    };
    run(0);
    run(1);
    std::vector<double> times[2];
    for (int r = 0; r < repeat; ++r) {
      for (int i = 0; i < 2; ++i) {
        const int side = (r + i) % 2;  // who goes first alternates too
        times[side].push_back(run(side));
      }
    }
    double diff = 0, scale = 0;
    for (size_t i = 0; i < c[0].size(); ++i) {
      diff = std::max(diff, double(std::fabs(c[0][i] - c[1][i])));
      scale = std::max(scale, double(std::fabs(c[0][i])));
    }
    const double t0 = median(times[0]), t1 = median(times[1]);
    if (s.name[0] == 'c') {
      total[0] += t0;
      total[1] += t1;
    }
    std::printf("%-8s %12.2f %12.2f %7.2fx %10.1e\n", s.name, t0, t1, t1 / t0, diff / scale);
  }
  std::printf("conv1-5  %12.2f %12.2f %7.2fx\n", total[0], total[1], total[1] / total[0]);
  return 0;
}
