// Recipe patch 0012: caffe::streamed_gemm, the GEMM that fully connected
// layers run as convolutions use on AVX2 CPUs (large weights, few columns),
// against a double-precision product; where it applies and where it leaves
// the work to BLAS; the same bits on any number of threads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "caffe/blob.hpp"
#include "caffe/util/parallel.hpp"
#include "caffe/util/streamed_gemm.hpp"

namespace surgery::test {
namespace {

bool cpu_has_avx2_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

std::vector<float> random_values(long count, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& v : values) v = normal(generator);
  return values;
}

class StreamedGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu_has_avx2_fma()) GTEST_SKIP() << "this CPU lacks AVX2 or FMA: BLAS does the work";
  }
  void TearDown() override { caffe::set_parallel_threads(0); }
};

// Each output within float32's rounding of a k-term sum: 1e-6 of the sum of
// the terms' magnitudes (k * epsilon would be the worst case, 5e-4 here).
void expect_product(int m, int n, int k, const std::vector<float>& a, const std::vector<float>& b,
                    const std::vector<float>& c) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double exact = 0, magnitude = 0;
      for (int p = 0; p < k; ++p) {
        const double term = static_cast<double>(a[long(i) * k + p]) * b[long(p) * n + j];
        exact += term;
        magnitude += std::fabs(term);
      }
      ASSERT_NEAR(c[long(i) * n + j], exact, 1e-6 * magnitude) << "row " << i << " column " << j;
    }
  }
}

// Shapes that reach each branch: rows in strips of six and a remainder, the
// depth in blocks of 1024 and a partial one, whole 16-column tiles written in
// place and a partial tile through the padded copy, one column.
TEST_F(StreamedGemm, EqualsTheProductInDoublePrecision) {
  struct Shape { int m, n, k; };
  for (const Shape& s : {Shape{4096, 16, 1024}, Shape{1000, 35, 4200}, Shape{683, 17, 6145},
                         Shape{1025, 1, 4097}}) {
    SCOPED_TRACE(testing::Message() << s.m << " x " << s.n << " x " << s.k);
    const std::vector<float> a = random_values(long(s.m) * s.k, 1);
    const std::vector<float> b = random_values(long(s.k) * s.n, 2);
    std::vector<float> c(long(s.m) * s.n, NAN);
    caffe::Blob<float> scratch;
    ASSERT_TRUE(caffe::streamed_gemm(s.m, s.n, s.k, a.data(), b.data(), c.data(), &scratch));
    expect_product(s.m, s.n, s.k, a, b, c);
  }
}

TEST_F(StreamedGemm, SameBitsOnAnyNumberOfThreads) {
  const int m = 1003, n = 40, k = 4500;
  const std::vector<float> a = random_values(long(m) * k, 3);
  const std::vector<float> b = random_values(long(k) * n, 4);
  caffe::Blob<float> scratch;
  std::vector<float> one(long(m) * n);
  caffe::set_parallel_threads(1);
  ASSERT_TRUE(caffe::streamed_gemm(m, n, k, a.data(), b.data(), one.data(), &scratch));
  for (int threads : {2, 3, 7}) {
    caffe::set_parallel_threads(threads);
    std::vector<float> several(long(m) * n);
    ASSERT_TRUE(caffe::streamed_gemm(m, n, k, a.data(), b.data(), several.data(), &scratch));
    EXPECT_EQ(several, one) << threads << " threads";
  }
}

// Small weights (they stay in the caches, where OpenBLAS is faster), more
// than 128 columns, empty shapes and double are left to caffe_cpu_gemm:
// false, and the output untouched.
TEST_F(StreamedGemm, LeavesOtherShapesToBlas) {
  const std::vector<float> a = random_values(4096L * 1024, 5);
  const std::vector<float> b = random_values(1024L * 129, 6);
  std::vector<float> c(4096L * 129, 7.0f);
  caffe::Blob<float> scratch;
  EXPECT_FALSE(caffe::streamed_gemm(4095, 64, 1024, a.data(), b.data(), c.data(), &scratch));
  EXPECT_FALSE(caffe::streamed_gemm(4096, 129, 1024, a.data(), b.data(), c.data(), &scratch));
  EXPECT_FALSE(caffe::streamed_gemm(4096, 0, 1024, a.data(), b.data(), c.data(), &scratch));
  for (float v : c) ASSERT_EQ(v, 7.0f);
  const std::vector<double> a2(4096L * 1024, 1.0), b2(1024L * 64, 1.0);
  std::vector<double> c2(4096L * 64, 7.0);
  caffe::Blob<double> scratch2;
  EXPECT_FALSE(caffe::streamed_gemm(4096, 64, 1024, a2.data(), b2.data(), c2.data(), &scratch2));
}

}  // namespace
}  // namespace surgery::test
