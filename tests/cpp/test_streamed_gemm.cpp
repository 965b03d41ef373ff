// Recipe patch 0012: caffe::streamed_gemm, the few-columns GEMM that fully
// connected layers run as convolutions and Winograd's per-cell products use
// on AVX2 CPUs, against a double-precision product: batches of products
// laid out with leading dimensions and steps, as Winograd lays them out;
// nothing written outside the outputs; the same bits on any number of
// threads; double left to BLAS. Patch 0016: its AVX-512 kernel gives the
// AVX2 kernel's bits. Patch 0018: A in panels of 8 rows gives A by rows'
// bits. Patch 0019: with the AVX-512 kernel, a convolution of 1M weights or
// more on 64 columns takes the fully connected path (since patch 0024,
// oneDNN's matmul before it). Patch 0022: the images of a batch keep the
// sums each has alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "caffe/util/parallel.hpp"
#include "caffe/util/streamed_gemm.hpp"
#include "one_by_one_convolution.hpp"

namespace surgery::test {
namespace {

bool cpu_has_avx2_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

class StreamedGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu_has_avx2_fma()) GTEST_SKIP() << "this CPU lacks AVX2 or FMA: BLAS does the work";
  }
  void TearDown() override {
    caffe::set_parallel_threads(0);
    caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx512);
  }
};

// One operand of a batch: matrix e starts at e * step, its rows ld apart.
struct Layout {
  long ld, step;
  // Values from the first matrix's first to the last matrix's last.
  long span(int batch, int rows, int cols) const {
    return batch == 0 || rows == 0 || cols == 0 ? 0 : (batch - 1) * step + (rows - 1) * ld + cols;
  }
};

// A batch of `batch` products C[e] = A[e] B[e] (m x k times k x n).
struct Batch {
  int batch, m, n, k;
  Layout a, b, c;
};

// Separate matrices, each row `pad` values longer than the matrix and each
// matrix `pad` rows apart from the next: a kernel that ignores a leading
// dimension or a step reads or writes the wrong values.
Batch padded(int batch, int m, int n, int k, int pad) {
  return {batch, m, n, k, {k + pad, long(m + pad) * (k + pad)}, {n + pad, long(k + pad) * (n + pad)},
          {n + pad, long(m + pad) * (n + pad)}};
}

// Winograd's products: cell e's columns are columns [e n, (e + 1) n) of
// one k x (cells n) matrix, and so are its outputs; the cells' weights
// follow each other.
Batch side_by_side(int cells, int m, int n, int k) {
  return {cells, m, n, k, {k, long(m) * k}, {long(cells) * n, n}, {long(cells) * n, n}};
}

// A and B at random, C all NaN: a marker for "not written".
struct Operands {
  std::vector<float> a, b, c;
};

Operands operands_of(const Batch& s, unsigned seed) {
  return {random_values(s.a.span(s.batch, s.m, s.k), seed),
          random_values(s.b.span(s.batch, s.k, s.n), seed + 1),
          std::vector<float>(s.c.span(s.batch, s.m, s.n), NAN)};
}

bool multiply(const Batch& s, Operands& x) {
  return caffe::streamed_gemm<float>(s.batch, s.m, s.n, s.k, {x.a.data(), s.a.ld, s.a.step},
                                     {x.b.data(), s.b.ld, s.b.step},
                                     {x.c.data(), s.c.ld, s.c.step});
}

// Each output within float32's rounding of a k-term sum: 1e-6 of the sum
// of the terms' magnitudes (k * epsilon would be the worst case, 5e-4 at
// the largest k here); every value outside the outputs still NaN.
void expect_products(const Batch& s, const Operands& x) {
  long written = 0;
  for (float v : x.c) written += !std::isnan(v);
  ASSERT_EQ(written, long(s.batch) * s.m * s.n) << "values written outside the outputs";
  for (int e = 0; e < s.batch; ++e) {
    for (int i = 0; i < s.m; ++i) {
      for (int j = 0; j < s.n; ++j) {
        double exact = 0, magnitude = 0;
        for (int p = 0; p < s.k; ++p) {
          const double term = static_cast<double>(x.a[e * s.a.step + i * s.a.ld + p]) *
                              x.b[e * s.b.step + p * s.b.ld + j];
          exact += term;
          magnitude += std::fabs(term);
        }
        ASSERT_NEAR(x.c[e * s.c.step + i * s.c.ld + j], exact, 1e-6 * magnitude)
            << "product " << e << " row " << i << " column " << j;
      }
    }
  }
}

// Shapes that reach each branch: rows in steps of four (six once k is
// blocked) and each remainder; k in chains of 128 and blocks of 1024, with
// partial ones; whole 16-column
// steps, an 8-column one and masked tails (1 to 15 columns); small weights
// (no floor in the kernel: the fully connected call site keeps its own);
// Winograd's layout and separate matrices with padded rows.
TEST_F(StreamedGemm, EqualsTheProductInDoublePrecision) {
  for (const Batch& s : {padded(1, 4096, 16, 1024, 0), padded(1, 1000, 35, 4200, 0),
                         padded(1, 683, 17, 2100, 0), padded(1, 1025, 1, 1100, 0),
                         padded(5, 66, 24, 300, 3), padded(3, 7, 9, 129, 5),
                         padded(2, 13, 40, 1500, 1), padded(1, 8, 3, 2049, 0),
                         padded(4, 2, 8, 1, 2), padded(1, 77, 113, 1500, 3),
                         side_by_side(6, 130, 16, 260), side_by_side(9, 45, 8, 1100)}) {
    SCOPED_TRACE(testing::Message() << s.batch << " x (" << s.m << " x " << s.n << " x " << s.k
                                    << "), rows of C " << s.c.ld << " apart");
    Operands x = operands_of(s, 1);
    ASSERT_TRUE(multiply(s, x));
    expect_products(s, x);
  }
}

TEST_F(StreamedGemm, SameBitsOnAnyNumberOfThreads) {
  const Batch s = padded(3, 1003, 40, 2500, 2);
  Operands one = operands_of(s, 3);
  caffe::set_parallel_threads(1);
  ASSERT_TRUE(multiply(s, one));
  for (int threads : {2, 3, 7}) {
    caffe::set_parallel_threads(threads);
    Operands several = operands_of(s, 3);
    ASSERT_TRUE(multiply(s, several));
    // Bit for bit, the padding's NaN included.
    ASSERT_EQ(0, std::memcmp(several.c.data(), one.c.data(), one.c.size() * sizeof(float)))
        << threads << " threads";
  }
}

// An empty sum is zero; an empty output is not written to.
TEST_F(StreamedGemm, EmptyShapes) {
  const Batch no_depth = padded(2, 5, 3, 0, 1);
  Operands x = operands_of(no_depth, 5);
  ASSERT_TRUE(multiply(no_depth, x));
  expect_products(no_depth, x);
  for (const Batch& empty : {padded(2, 0, 3, 4, 1), padded(2, 5, 0, 4, 1), padded(0, 5, 3, 4, 1)}) {
    Operands y = operands_of(padded(2, 5, 3, 4, 1), 6);
    ASSERT_TRUE(multiply(empty, y));
    for (float v : y.c) ASSERT_TRUE(std::isnan(v));
  }
}

// Patch 0016: on an AVX-512 CPU the wide kernel's outputs equal the AVX2
// kernel's bit for bit, on each of its branches: 64-column steps, a rest of
// one to four registers with 1 to 16 lanes, steps of eight rows (up to 48
// columns) and six, and shorter last steps of four, two and one.
TEST_F(StreamedGemm, WideKernelGivesTheAvx2KernelsBits) {
  if (caffe::streamed_gemm_kernel() != caffe::StreamedGemmKernel::kAvx512) {
    GTEST_SKIP() << "this CPU lacks AVX-512: only the AVX2 kernel runs";
  }
  for (const Batch& s : {padded(1, 515, 64, 2100, 0), padded(1, 77, 113, 1500, 3),
                         padded(2, 29, 128, 300, 1), padded(3, 13, 33, 1025, 2),
                         padded(1, 15, 48, 129, 0), padded(1, 11, 7, 200, 1),
                         padded(1, 7, 80, 64, 0), side_by_side(6, 130, 16, 260),
                         side_by_side(4, 70, 56, 1100)}) {
    SCOPED_TRACE(testing::Message() << s.batch << " x (" << s.m << " x " << s.n << " x " << s.k
                                    << ")");
    Operands narrow = operands_of(s, 7), wide = operands_of(s, 7);
    caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx2);
    ASSERT_EQ(caffe::streamed_gemm_kernel(), caffe::StreamedGemmKernel::kAvx2);
    ASSERT_TRUE(multiply(s, narrow));
    caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx512);
    ASSERT_TRUE(multiply(s, wide));
    // Bit for bit, the padding's NaN included.
    ASSERT_EQ(0, std::memcmp(wide.c.data(), narrow.c.data(), narrow.c.size() * sizeof(float)));
  }
}

// Patch 0018: streamed_gemm_panels, A in panels of kStreamedGemmPanel rows,
// gives streamed_gemm's bits with A by rows on each branch of the panel
// steps (all columns in one step up to 48, steps of 48 above, masked rests,
// chains and blocks of k), in separate matrices and Winograd's layout; and
// declines, touching nothing, where m is not whole panels or the AVX-512
// kernel does not run.
TEST_F(StreamedGemm, PanelsGiveTheRowsBits) {
  if (caffe::streamed_gemm_kernel() != caffe::StreamedGemmKernel::kAvx512) {
    GTEST_SKIP() << "this CPU lacks AVX-512: no panels";
  }
  constexpr int kPanel = caffe::kStreamedGemmPanel;
  for (const Batch& s : {padded(1, 4096, 16, 256, 0), padded(1, 64, 64, 2100, 0),
                         padded(2, 24, 113, 1500, 3), padded(3, 16, 33, 1025, 2),
                         padded(1, 8, 48, 129, 0), padded(1, 40, 7, 200, 1),
                         padded(1, 8, 1, 5, 0), padded(2, 16, 256, 300, 0),
                         side_by_side(6, 136, 16, 260), side_by_side(4, 72, 56, 1100)}) {
    SCOPED_TRACE(testing::Message() << s.batch << " x (" << s.m << " x " << s.n << " x " << s.k
                                    << ")");
    Operands by_rows = operands_of(s, 13);
    ASSERT_TRUE(multiply(s, by_rows));
    // The same A in panels: panel p of matrix e at e * step + p * kPanel * ld,
    // row r's value q at q * kPanel + r.
    Operands in_panels = operands_of(s, 13);
    for (int e = 0; e < s.batch; ++e) {
      for (int i = 0; i < s.m; ++i) {
        for (int q = 0; q < s.k; ++q) {
          in_panels.a[e * s.a.step + i / kPanel * kPanel * s.a.ld + q * kPanel + i % kPanel] =
              by_rows.a[e * s.a.step + i * s.a.ld + q];
        }
      }
    }
    ASSERT_TRUE(caffe::streamed_gemm_panels<float>(
        s.batch, s.m, s.n, s.k, {in_panels.a.data(), s.a.ld, s.a.step},
        {in_panels.b.data(), s.b.ld, s.b.step}, {in_panels.c.data(), s.c.ld, s.c.step}));
    // Bit for bit, the padding's NaN included.
    ASSERT_EQ(0, std::memcmp(in_panels.c.data(), by_rows.c.data(), by_rows.c.size() * sizeof(float)));
  }
  const Batch odd = padded(1, 12, 16, 64, 0);
  Operands x = operands_of(odd, 14);
  EXPECT_FALSE(caffe::streamed_gemm_panels<float>(odd.batch, odd.m, odd.n, odd.k,
                                                  {x.a.data(), odd.a.ld, odd.a.step},
                                                  {x.b.data(), odd.b.ld, odd.b.step},
                                                  {x.c.data(), odd.c.ld, odd.c.step}));
  caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx2);
  const Batch whole = padded(1, 16, 16, 64, 0);
  EXPECT_FALSE(caffe::streamed_gemm_panels<float>(whole.batch, whole.m, whole.n, whole.k,
                                                  {x.a.data(), whole.a.ld, whole.a.step},
                                                  {x.b.data(), whole.b.ld, whole.b.step},
                                                  {x.c.data(), whole.c.ld, whole.c.step}));
  for (float v : x.c) ASSERT_TRUE(std::isnan(v));
}

// Patch 0019: where the AVX-512 kernel runs, Caffe's convolution layer
// takes weights of 1M values or more on 64 columns, such as CaffeNet's fc8
// on one 451 image (1000 x 4096, under 0012's floor of 4M = 2^22), from
// OpenBLAS, which computed them before, and since patch 0024 gives them to
// oneDNN's matmul first: the layer's output is that product's, bit for bit
// (OpenBLAS and the streamed GEMM add the 4096 products in other orders).
TEST_F(StreamedGemm, CaffeNetsFc8OnOneImageTakesTheFullyConnectedPath) {
  if (caffe::streamed_gemm_kernel() != caffe::StreamedGemmKernel::kAvx512) {
    GTEST_SKIP() << "this CPU lacks AVX-512: BLAS computes these shapes";
  }
  const int outputs = 1000, channels = 4096, side = 8, columns = side * side;
  const OneByOneConvolution fc8("fc8", outputs, channels, side, 11);
  std::vector<float> expected(long(outputs) * columns);
  ASSERT_TRUE(fully_connected_product(outputs, columns, channels, fc8.weights.data(),
                                      fc8.input.data(), expected.data()));
  ASSERT_EQ(fc8.output.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(fc8.output.data(), expected.data(), expected.size() * sizeof(float)));
}

// Where one image's product is fully connected (4M weights on 64 columns,
// on any AVX2 CPU), the images of a batch share a call only as far as the
// streamed GEMM takes them together, so each keeps the sums it has alone:
// before patch 0022, three images made 192 columns, which BLAS took.
TEST_F(StreamedGemm, ImagesOfABatchKeepTheirSumsAlone) {
  const int outputs = 2048, channels = 2048, side = 8, columns = side * side, images = 3;
  const OneByOneConvolution fc("fc", outputs, channels, side, 5, images);
  for (int i = 0; i < images; ++i) {
    std::vector<float> alone(long(outputs) * columns);
    ASSERT_TRUE(fully_connected_product(outputs, columns, channels, fc.weights.data(),
                                        fc.input.data() + long(i) * channels * columns,
                                        alone.data()));
    EXPECT_EQ(0, std::memcmp(fc.output.data() + long(i) * outputs * columns, alone.data(),
                             alone.size() * sizeof(float)))
        << "image " << i;
  }
}

// double is left to BLAS: false, and the output untouched.
TEST_F(StreamedGemm, LeavesDoubleToBlas) {
  const std::vector<double> a(64L * 32, 1.0), b(32L * 16, 1.0);
  std::vector<double> c(64L * 16, 7.0);
  EXPECT_FALSE(caffe::streamed_gemm<double>(1, 64, 16, 32, {a.data(), 32, 0}, {b.data(), 16, 0},
                                            {c.data(), 16, 0}));
  for (double v : c) ASSERT_EQ(v, 7.0);
}

}  // namespace
}  // namespace surgery::test
