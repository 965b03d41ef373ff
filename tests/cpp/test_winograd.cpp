// ConvolutionAlgorithm::kWinograd against Caffe's own convolution: the
// transforms against a direct correlation in double, then whole layers
// (every kernel size with a transform, strided kernels, pads, groups, bias, batches, maps
// smaller than a tile, work split into several buffers, weights in panels)
// against kCaffe on the same net, within 2e-5 of the output's scale, and
// panels against rows bit for bit; layers it does not
// compute stay bit-identical; changed weights are seen, through params()
// and through a view held across forwards; thread counts give the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "caffe/util/streamed_gemm.hpp"
#include "convolution_cases.hpp"
#include "surgery/kernels/winograd_tiles.hpp"
#include "surgery/kernels/winograd_transform.hpp"
#include "surgery/runtime/threads.hpp"

namespace surgery::test {
namespace {

TEST(WinogradTransform, TileEqualsDirectCorrelation) {
  for (int kernel : {3, 5, 6, 7}) {
    const WinogradTransform* t = winograd_transform(kernel);
    ASSERT_NE(t, nullptr);
    const int a = t->alpha, m = t->m, r = t->r;
    ASSERT_EQ(a, m + r - 1);
    const Floats d = random_floats(a * a, 1 + kernel), g = random_floats(r * r, 2 + kernel);
    // U = G g G^T, V = B^T d B, Y = A^T (U . V) A, in double.
    auto sandwich = [](const Floats& left, int rows, int inner, const std::vector<double>& x) {
      std::vector<double> half(rows * inner, 0.0), out(rows * rows, 0.0);
      for (int i = 0; i < rows; ++i)
        for (int q = 0; q < inner; ++q)
          for (int k = 0; k < inner; ++k) half[i * inner + q] += left[i * inner + k] * x[k * inner + q];
      for (int i = 0; i < rows; ++i)
        for (int j = 0; j < rows; ++j)
          for (int q = 0; q < inner; ++q) out[i * rows + j] += half[i * inner + q] * left[j * inner + q];
      return out;
    };
    const auto u = sandwich(t->g, a, r, std::vector<double>(g.begin(), g.end()));
    const auto v = sandwich(t->bt, a, a, std::vector<double>(d.begin(), d.end()));
    std::vector<double> product(a * a);
    for (int e = 0; e < a * a; ++e) product[e] = u[e] * v[e];
    const auto y = sandwich(t->at, m, a, product);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < m; ++j) {
        double direct = 0;
        for (int k = 0; k < r; ++k)
          for (int q = 0; q < r; ++q) direct += double{d[(i + k) * a + j + q]} * g[k * r + q];
        EXPECT_NEAR(y[i * m + j], direct, 1e-5) << "kernel " << kernel << " cell " << i << "," << j;
      }
    }
  }
  EXPECT_EQ(winograd_transform(1), nullptr);
  EXPECT_EQ(winograd_transform(4), nullptr);
  EXPECT_EQ(winograd_transform(11), nullptr);
}

void expect_close_to_caffe(const Case& c) {
  expect_close_to_caffe(c, ConvolutionAlgorithm::kWinograd, 2e-5);
}

// Both builds of the tile code: AVX2 (where the CPU has it) and baseline.
class WinogradBothCodes : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { winograd::allow_vector_code(GetParam()); }
  void TearDown() override { winograd::allow_vector_code(true); }
};

TEST_P(WinogradBothCodes, MatchesCaffeAcrossGeometries) {
  const std::vector<Case> cases = {
      {1, 3, 9, 9, 4, 3, 0, 1, 1, true},      // 7x7 output: a partial tile each way
      {2, 5, 13, 11, 6, 3, 1, 1, 1, false},   // batch, pad, odd sizes
      {1, 8, 27, 27, 12, 3, 1, 2, 1, true},   // groups (conv4 / conv5 of CaffeNet, smaller)
      {1, 4, 3, 3, 2, 3, 2, 1, 1, true},      // pad larger than the map
      {1, 6, 31, 29, 6, 5, 2, 2, 1, true},    // 5x5: conv2's shape
      {3, 7, 13, 13, 9, 6, 0, 1, 1, true},    // 6x6 on 13x13: fc6 turned convolution
      {1, 7, 6, 6, 9, 6, 0, 1, 1, true},      // one output cell
      {2, 3, 10, 17, 4, 7, 3, 1, 1, false},   // 7x7
      {1, 9, 20, 20, 16, 3, 1, 1, 1, true},   // many lanes of tiles, some partial
      // Strided kernels, as their stride-1 phases (stride_phases.hpp):
      {1, 3, 35, 35, 8, 11, 0, 1, 4, true},   // 11x11 at stride 4: conv1's, 7x7 outputs
      {2, 4, 17, 14, 6, 5, 2, 2, 2, false},   // 5x5 at 2 is 3x3: batch, pad, groups
      {1, 3, 21, 21, 5, 12, 1, 1, 2, true},   // 12x12 at 2 is 6x6
      {1, 2, 20, 23, 3, 9, 3, 1, 3, true},    // 9x9 at 3, pad 3: sizes the stride does not divide
      // 289 tiles of weights small enough to stay in cache: blocks of at
      // most few_columns() tiles for the few-columns GEMM (vector code)
      {1, 3, 263, 263, 8, 11, 2, 1, 4, true},
      // 288 tiles of weights too large for that (1.1 MiB transformed): even
      // blocks of at most 256 tiles, here two of 144, for OpenBLAS
      {8, 64, 24, 24, 120, 3, 1, 1, 1, true},
  };
  for (const auto& c : cases) expect_close_to_caffe(c);
}

TEST_P(WinogradBothCodes, ManyInputChannelsStayWithinTheBound) {
  // 4096 channels of 5x5 on 8x8 outputs: four tiles, so the vector code's
  // products are libcaffe's few-columns GEMM, caffe::streamed_gemm (the
  // baseline's OpenBLAS). One chain of FMAs over all the channels was
  // 4.2e-5 off; chains of 128 are not.
  expect_close_to_caffe({1, 4096, 12, 12, 8, 5, 0, 1, 1, false});
}

INSTANTIATE_TEST_SUITE_P(Code, WinogradBothCodes, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "vector" : "baseline"; });

TEST(WinogradConvolution, SplitsLargeLayersIntoSeveralBuffers) {
  // In the baseline code (the vector code cuts layers of weights this small
  // into blocks of at most few_columns() tiles, which depends on the CPU):
  // 520 input channels of 5x5 on 64 x 64 outputs: 256 tiles, more than a
  // work buffer holds for every input channel (248), so two blocks; then
  // 1024 output channels on 256 tiles, more than one buffer of products
  // holds for a block (910), so two passes of products.
  winograd::allow_vector_code(false);
  expect_close_to_caffe({1, 520, 68, 68, 2, 5, 0, 1, 1, true});
  expect_close_to_caffe({1, 1, 66, 66, 1024, 3, 0, 1, 1, true});
  winograd::allow_vector_code(true);
}

TEST(WinogradConvolution, LeavesOtherLayersToCaffeBitForBit) {
  for (const Case& c : std::vector<Case>{{1, 3, 15, 15, 4, 3, 1, 1, 2, true},    // 3x3 at 2: 2x2
                                         {1, 3, 15, 15, 4, 7, 1, 1, 2, true},    // 7x7 at 2: 4x4
                                         {1, 3, 15, 15, 4, 4, 1, 1, 1, true},    // 4x4
                                         {1, 3, 15, 15, 4, 1, 0, 1, 1, true}}) {  // 1x1
    auto net = conv_net(c);
    const Floats input = random_floats(3 * 15 * 15, 9);
    EXPECT_EQ(run(*net, input, ConvolutionAlgorithm::kWinograd),
              run(*net, input, ConvolutionAlgorithm::kCaffe))
        << describe(c);
    run(*net, input, ConvolutionAlgorithm::kWinograd);
    EXPECT_TRUE(net->engine_layers().empty()) << describe(c);
  }
}

TEST(WinogradConvolution, FusesTheInPlaceReluAfterIt) {
  // A ReLU in place on the layer's top, negative_slope 0, is applied as the
  // output is written and its own pass skipped (its time stays 0). The
  // oracle: Caffe's ReLU layer on the same Winograd output, where the ReLU
  // writes another blob (not fused), NaN included. A leaky ReLU runs itself.
  auto relu_net = [](float slope, const std::string& top) {
    std::ostringstream text;
    text << "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 5 "
            "dim: 14 dim: 14 } } }\n"
            "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'out' "
            "convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }\n"
            "layer { name: 'relu' type: 'ReLU' bottom: 'out' top: '"
         << top << "' relu_param { negative_slope: " << slope << " } }\n";
    return net_with_random_conv(text.str(), 3);
  };
  Floats input = random_floats(5 * 14 * 14, 8);
  input[17] = std::nanf("");
  auto forward = [&](Net& net, const std::string& top) {
    net.set_convolution_algorithm(ConvolutionAlgorithm::kWinograd);
    net.forward({{"data", InputView{{1, 5, 14, 14}, input.data()}}});
    EXPECT_EQ(net.engine_layers(), std::vector<std::string>{"conv"});
    const auto& out = net.blob(top);
    return Floats(out.cpu_data(), out.cpu_data() + out.count());
  };
  auto relu_ms = [](const Net& net) {
    EXPECT_EQ(net.layer_times().at(2).first, "relu");
    return net.layer_times().at(2).second;
  };
  auto fused = relu_net(0.0f, "out"), apart = relu_net(0.0f, "relu_out");
  const Floats ours = forward(*fused, "out"), caffes = forward(*apart, "relu_out");
  EXPECT_EQ(relu_ms(*fused), 0.0);
  EXPECT_GT(relu_ms(*apart), 0.0);
  ASSERT_EQ(ours.size(), caffes.size());
  int nans = 0, zeros = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    ASSERT_EQ(std::isnan(ours[i]), std::isnan(caffes[i])) << i;
    nans += std::isnan(ours[i]);
    if (!std::isnan(ours[i])) ASSERT_EQ(ours[i], caffes[i]) << i;
    zeros += ours[i] == 0.0f;
  }
  EXPECT_GT(nans, 0);
  EXPECT_GT(zeros, 0);
  auto leaky = relu_net(0.1f, "out");
  forward(*leaky, "out");
  EXPECT_GT(relu_ms(*leaky), 0.0);
}

TEST(WinogradConvolution, SeesWeightsWrittenAfterItsFirstForward) {
  const Case c{1, 4, 12, 12, 3, 3, 1, 1, 1, true};
  auto net = conv_net(c);
  const Floats input = random_floats(4 * 12 * 12, 3);
  run(*net, input, ConvolutionAlgorithm::kWinograd);
  // Through params(), then through a pointer kept across forwards while
  // something else (as a numpy view does) holds the weights' memory.
  net->params("conv")[0]->mutable_cpu_data()[0] += 1.0f;
  EXPECT_LT(relative_gap(run(*net, input, ConvolutionAlgorithm::kWinograd),
                         run(*net, input, ConvolutionAlgorithm::kCaffe)), 2e-5);
  const auto view = net->params("conv")[0]->data();
  float* weights = static_cast<float*>(view->mutable_cpu_data());
  run(*net, input, ConvolutionAlgorithm::kWinograd);
  weights[5] -= 2.0f;
  const Floats after = run(*net, input, ConvolutionAlgorithm::kWinograd);
  EXPECT_LT(relative_gap(after, run(*net, input, ConvolutionAlgorithm::kCaffe)), 2e-5);
}

// 512 channels of 3x3 to 512: 36 MiB of transformed weights, which go in
// panels where libcaffe's panels entry runs (AVX-512). The same bits as the
// weights in rows (the AVX2 kernel's, which equal the AVX-512 rows kernel's),
// computed after the kernel limit made the layer lay them out again; and
// back to panels once the limit is lifted.
TEST(WinogradConvolution, WeightsInPanelsGiveTheRowsBits) {
  if (winograd::panel_rows() == 0) GTEST_SKIP() << "this CPU lacks AVX-512: no panels";
  const Case c{1, 512, 8, 8, 512, 3, 1, 1, 1, true};
  expect_close_to_caffe(c);
  auto net = conv_net(c);
  const Floats input = random_floats(512 * 8 * 8, 6);
  const Floats in_panels = run(*net, input, ConvolutionAlgorithm::kWinograd);
  caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx2);
  ASSERT_EQ(winograd::panel_rows(), 0);
  const Floats in_rows = run(*net, input, ConvolutionAlgorithm::kWinograd);
  caffe::set_streamed_gemm_kernel_limit(caffe::StreamedGemmKernel::kAvx512);
  EXPECT_EQ(in_panels, in_rows);
  EXPECT_EQ(run(*net, input, ConvolutionAlgorithm::kWinograd), in_panels);
}

TEST(WinogradConvolution, SameBitsOnAnyNumberOfThreads) {
  // 294 tiles: OpenBLAS's products on any CPU (above even the AVX-512
  // kernel's 256 columns); 4 tiles of 300 channels: the few-columns kernel,
  // in three chains of channels.
  for (const Case& c : std::vector<Case>{{6, 16, 27, 27, 24, 3, 1, 2, 1, true},
                                         {1, 300, 8, 8, 24, 3, 1, 1, 1, true}}) {
    auto net = conv_net(c);
    const Floats input =
        random_floats(static_cast<size_t>(c.num) * c.channels * c.height * c.width, 4);
    const int before = num_threads();
    set_num_threads(1);
    const Floats one = run(*net, input, ConvolutionAlgorithm::kWinograd);
    set_num_threads(3);
    const Floats three = run(*net, input, ConvolutionAlgorithm::kWinograd);
    set_num_threads(before);
    EXPECT_EQ(one, three) << describe(c);
  }
}

}  // namespace
}  // namespace surgery::test
