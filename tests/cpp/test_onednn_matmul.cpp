// Recipe patch 0024: caffe::OnednnMatmul, fully connected convolutions'
// products by oneDNN's matmul, against a double-precision product; a
// column's sums the same whatever the thread count and whatever columns
// share the call (a crop, a batch of images). That Caffe's layer takes it
// is tested beside the streamed GEMM it comes before
// (StreamedGemm.CaffeNetsFc8OnOneImageTakesTheFullyConnectedPath).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "caffe/util/onednn_matmul.hpp"
#include "caffe/util/parallel.hpp"
#include "one_by_one_convolution.hpp"

namespace surgery::test {
namespace {

using Floats = std::vector<float>;

// c (m x n) = a (m x k) b (k x n) by a fresh OnednnMatmul.
Floats product(int m, int n, int k, const Floats& a, const Floats& b) {
  Floats c(long(m) * n, NAN);
  caffe::OnednnMatmul matmul;
  EXPECT_TRUE(matmul.Forward(m, n, k, a.data(), b.data(), c.data()));
  return c;
}

// Columns [first, first + n) of b (k x total) as a k x n matrix.
Floats columns_of(const Floats& b, int k, int total, int first, int n) {
  Floats out(long(k) * n);
  for (int p = 0; p < k; ++p) {
    std::copy_n(b.begin() + long(p) * total + first, n, out.begin() + long(p) * n);
  }
  return out;
}

class OnednnMatmul : public ::testing::Test {
 protected:
  void SetUp() override {
    const Floats ones(16 * 16, 1.0f);
    Floats c(16 * 16);
    if (!caffe::OnednnMatmul().Forward(16, 16, 16, ones.data(), ones.data(), c.data())) {
      GTEST_SKIP() << "oneDNN has no brgemm kernel on this CPU: the streamed GEMM keeps "
                      "the products";
    }
  }
  void TearDown() override { caffe::set_parallel_threads(0); }
};

// Shapes off any block size: each output within float32's rounding of its
// k-term sum (1e-6 of the terms' magnitudes), every output written.
TEST_F(OnednnMatmul, EqualsTheProductInDoublePrecision) {
  for (const auto& [m, n, k] : {std::array<int, 3>{300, 37, 1500}, std::array<int, 3>{1000, 64, 4096},
                                std::array<int, 3>{17, 1, 2049}}) {
    const Floats a = random_values(long(m) * k, 3), b = random_values(long(k) * n, 4);
    const Floats c = product(m, n, k, a, b);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double exact = 0, magnitude = 0;
        for (int p = 0; p < k; ++p) {
          const double term = double{a[long(i) * k + p]} * b[long(p) * n + j];
          exact += term;
          magnitude += std::fabs(term);
        }
        ASSERT_NEAR(c[long(i) * n + j], exact, 1e-6 * magnitude)
            << m << "x" << n << "x" << k << " row " << i << " column " << j;
      }
    }
  }
}

// CaffeNet's fc8 on the 64 columns of one 451 image: each column's outputs
// keep their bits on 1-3 threads and with 1 to 64 columns beside them.
TEST_F(OnednnMatmul, AColumnsSumsDependOnNeitherThreadsNorTheOtherColumns) {
  const int m = 1000, k = 4096, total = 64;
  const Floats a = random_values(long(m) * k, 5), b = random_values(long(k) * total, 6);
  caffe::set_parallel_threads(1);
  const Floats all = product(m, total, k, a, b);
  for (int threads : {1, 2, 3}) {
    caffe::set_parallel_threads(threads);
    for (const auto& [first, n] : {std::array<int, 2>{0, 64}, std::array<int, 2>{5, 1},
                                   std::array<int, 2>{3, 13}, std::array<int, 2>{20, 36}}) {
      const Floats some = product(m, n, k, a, columns_of(b, k, total, first, n));
      long differing = 0;
      for (int i = 0; i < m; ++i) {
        differing += std::memcmp(&some[long(i) * n], &all[long(i) * total + first],
                                 n * sizeof(float)) != 0;
      }
      EXPECT_EQ(differing, 0) << threads << " threads, columns " << first << " to "
                              << first + n;
    }
  }
}

}  // namespace
}  // namespace surgery::test
