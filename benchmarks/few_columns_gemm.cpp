// The one "huge weights, few columns" GEMM, recipe patch 0012's
// caffe::streamed_gemm, with each of its kernels (patch 0016's AVX-512 one,
// where the CPU has it, and 0012's AVX2 one) and, with the AVX-512 one, U in
// panels of 8 rows (patch 0018's streamed_gemm_panels, as Winograd keeps
// large weights), against OpenBLAS as
// Winograd calls it (winograd::products with the vector code off). Each
// shape is M[e] = U[e] V[e] for `cells` products of outs x k weights and
// k x n columns, laid out as Winograd lays them out; a shape of one cell is
// a fully connected layer's product.
//
//   OPENBLAS_THREAD_TIMEOUT=16 few_columns_gemm REPEAT
//
// (as `import surgery` sets it: with OpenBLAS's default, its threads spin
// for 2^28 cycles after each call and take the cores from the next side)
//
// Prints per shape and side: the median ms of REPEAT runs (the sides
// alternate within each repetition, after one warm-up run of each), and
// the largest error against a double-precision product, relative to the
// largest |output| of that cell.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "caffe/util/streamed_gemm.hpp"
#include "surgery/kernels/winograd_tiles.hpp"

namespace {

using surgery::winograd::allow_vector_code;
using surgery::winograd::products;

struct Shape {
  const char* name;
  int64_t cells, outs, k, n;
};

// Winograd's shapes on both sides of its threshold of tile columns (up to
// 32 go to streamed_gemm, 256 with the AVX-512 kernel), and fully connected
// ones (one cell: base_conv_layer calls streamed_gemm for 4M weights or
// more on up to 128 columns, and with the AVX-512 kernel for 1M or more on
// up to 64).
const Shape kShapes[] = {
    {"CaffeNet 451 fc6, F(2,6)", 49, 4096, 256, 16},
    {"CaffeNet 451 fc6 of two images, F(2,6)", 49, 4096, 256, 32},
    {"CaffeNet 451 fc6 of eight images, F(2,6)", 49, 4096, 256, 128},
    {"CaffeNet 451 conv3, F(4,3)", 36, 384, 256, 56},
    {"CaffeNet 451 conv2, a group, F(4,5)", 64, 128, 48, 200},
    {"CaffeNet 451 conv3 of eight images, F(4,3)", 36, 384, 256, 392},
    {"VGG-16 conv5 3x3 at 224, F(4,3)", 36, 512, 512, 16},
    {"VGG-16 conv5 3x3 at 112, F(4,3)", 36, 512, 512, 8},
    {"VGG-16 fc6 at 224, F(2,7)", 64, 4096, 512, 8},
    {"fully connected: 4096 x 1024, 16 columns", 1, 4096, 1024, 16},
    {"fully connected: 4096 x 9216, 32 columns", 1, 4096, 9216, 32},
    {"CaffeNet 451 fc6: 4096 x 9216, 64 columns", 1, 4096, 9216, 64},
    {"CaffeNet 451 fc7: 4096 x 4096, 64 columns", 1, 4096, 4096, 64},
    {"CaffeNet 451 fc8: 1000 x 4096, 64 columns", 1, 1000, 4096, 64},
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double ms_of(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

struct Data {
  std::vector<float> u, v, m;
  int64_t ld;
};

Data filled_at_random(const Shape& s) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  Data d{std::vector<float>(s.cells * s.outs * s.k), std::vector<float>(s.cells * s.k * s.n),
         std::vector<float>(s.cells * s.outs * s.n), s.n};
  for (auto& x : d.u) x = uniform(gen);
  for (auto& x : d.v) x = uniform(gen);
  return d;
}

// Largest |m - exact| over the largest |exact|, cell by cell.
double relative_error(const Shape& s, const Data& d) {
  double worst = 0;
  std::vector<double> exact(s.outs * s.n);
  for (int64_t e = 0; e < s.cells; ++e) {
    double scale = 0;
    for (int64_t o = 0; o < s.outs; ++o) {
      const float* u = d.u.data() + (e * s.outs + o) * s.k;
      for (int64_t j = 0; j < s.n; ++j) {
        double sum = 0;
        for (int64_t c = 0; c < s.k; ++c) sum += double(u[c]) * d.v[(e * s.k + c) * d.ld + j];
        exact[o * s.n + j] = sum;
        scale = std::max(scale, std::abs(sum));
      }
    }
    for (int64_t o = 0; o < s.outs; ++o) {
      for (int64_t j = 0; j < s.n; ++j) {
        const double got = d.m[(e * s.outs + o) * d.ld + j];
        worst = std::max(worst, std::abs(got - exact[o * s.n + j]) / scale);
      }
    }
  }
  return worst;
}

// streamed_gemm on Winograd's layout, by the given kernel at the widest.
void streamed(const Shape& s, Data& d, caffe::StreamedGemmKernel widest) {
  caffe::set_streamed_gemm_kernel_limit(widest);
  caffe::streamed_gemm<float>(static_cast<int>(s.cells), static_cast<int>(s.outs),
                              static_cast<int>(s.n), static_cast<int>(s.k),
                              {d.u.data(), s.k, s.outs * s.k}, {d.v.data(), d.ld, s.k * s.n},
                              {d.m.data(), d.ld, s.outs * s.n});
  caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx512);
}

// OpenBLAS, cell by cell, as winograd::products calls it without vector code.
void open_blas(const Shape& s, Data& d) {
  allow_vector_code(false);
  products(s.cells, d.u.data(), s.outs * s.k, d.v.data(), d.m.data(), s.outs, s.k, s.n, false);
  allow_vector_code(true);
}

// U in panels of caffe::kStreamedGemmPanel rows: row r of panel p, value c at
// p * kPanel * k + c * kPanel + r (s.outs a multiple of kPanel).
std::vector<float> in_panels(const Shape& s, const std::vector<float>& u) {
  constexpr int64_t kPanel = caffe::kStreamedGemmPanel;
  std::vector<float> panels(u.size());
  for (int64_t e = 0; e < s.cells; ++e)
    for (int64_t o = 0; o < s.outs; ++o)
      for (int64_t c = 0; c < s.k; ++c)
        panels[(e * s.outs + o / kPanel * kPanel) * s.k + c * kPanel + o % kPanel] =
            u[(e * s.outs + o) * s.k + c];
  return panels;
}

void streamed_panels(const Shape& s, Data& d, const std::vector<float>& u_panels) {
  caffe::streamed_gemm_panels<float>(static_cast<int>(s.cells), static_cast<int>(s.outs),
                                     static_cast<int>(s.n), static_cast<int>(s.k),
                                     {u_panels.data(), s.k, s.outs * s.k},
                                     {d.v.data(), d.ld, s.k * s.n},
                                     {d.m.data(), d.ld, s.outs * s.n});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: few_columns_gemm REPEAT\n");
    return 2;
  }
  const int repeat = std::max(1, std::atoi(argv[1]));
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") == nullptr) {
    std::fprintf(stderr,
                 "OPENBLAS_THREAD_TIMEOUT is unset: OpenBLAS's spinning threads will slow the "
                 "sides that follow it; run with OPENBLAS_THREAD_TIMEOUT=16\n");
  }
  std::printf("shape\tside\tmedian_ms\tmax_rel_error\n");
  for (const auto& s : kShapes) {
    Data d = filled_at_random(s);
    std::vector<std::pair<std::string, std::function<void()>>> sides;
    std::vector<float> u_panels;
    if (caffe::streamed_gemm_kernel() == caffe::StreamedGemmKernel::kAvx512) {
      sides.push_back({"streamed_gemm, AVX-512 kernel (0016)",
                       [&] { streamed(s, d, caffe::StreamedGemmKernel::kAvx512); }});
      if (s.outs % caffe::kStreamedGemmPanel == 0) {
        u_panels = in_panels(s, d.u);
        sides.push_back({"streamed_gemm_panels, AVX-512 kernel (0018)",
                         [&] { streamed_panels(s, d, u_panels); }});
      }
    }
    if (caffe::streamed_gemm_kernel() != caffe::StreamedGemmKernel::kNone) {
      sides.push_back({"streamed_gemm, AVX2 kernel (0012)",
                       [&] { streamed(s, d, caffe::StreamedGemmKernel::kAvx2); }});
    }
    sides.push_back({"OpenBLAS", [&] { open_blas(s, d); }});
    std::vector<std::vector<double>> ms(sides.size());
    std::vector<double> error(sides.size());
    for (size_t i = 0; i < sides.size(); ++i) {
      sides[i].second();
      error[i] = relative_error(s, d);
    }
    for (int r = 0; r < repeat; ++r) {
      for (size_t i = 0; i < sides.size(); ++i) ms[i].push_back(ms_of(sides[i].second));
    }
    for (size_t i = 0; i < sides.size(); ++i) {
      std::printf("%s\t%s\t%.3f\t%.2e\n", s.name, sides[i].first.c_str(), median(ms[i]),
                  error[i]);
    }
  }
  return 0;
}
