// ConvolutionAlgorithm::kOneDnn against Caffe's own convolution: layers of
// every shape Caffe's Convolution takes (strides, pads, dilations, groups,
// bias, batches, a 1-channel input, fully connected sizes with and without
// pad) within 1e-5 of the output's scale; changed weights are seen, through
// params() and through a view held across forwards; a new input size and a
// new thread count get new primitives; the convolutions (not the fully
// connected products) repeat bit for bit on any thread count.
#include <gtest/gtest.h>

#include "convolution_cases.hpp"
#include "surgery/runtime/threads.hpp"

namespace surgery::test {
namespace {

constexpr double kBound = 1e-5;

TEST(OneDnnConvolution, MatchesCaffeAcrossGeometries) {
  const std::vector<Case> cases = {
      {1, 3, 35, 35, 8, 11, 0, 1, 4, true},    // conv1's stride 4
      {2, 5, 13, 11, 6, 3, 1, 1, 1, false},    // batch, pad, odd sizes
      {1, 8, 27, 27, 12, 3, 1, 2, 1, true},    // groups
      {1, 6, 31, 29, 6, 5, 2, 2, 1, true},     // conv2's 5x5, groups
      {1, 4, 3, 3, 2, 3, 2, 1, 1, true},       // pad larger than the map
      {1, 1, 20, 17, 3, 4, 1, 1, 2, true},     // one channel, even kernel, stride 2
      {1, 6, 21, 21, 5, 3, 2, 1, 1, true, 2},  // dilation 2
      {1, 16, 9, 9, 32, 1, 0, 1, 1, true},     // 1x1
      {3, 7, 13, 13, 9, 6, 0, 1, 1, true},     // 6x6 on 13x13 (fc6's shape, small)
  };
  for (const auto& c : cases) expect_close_to_caffe(c, ConvolutionAlgorithm::kOneDnn, kBound);
}

TEST(OneDnnConvolution, FullyConnectedSizesMatchCaffe) {
  // 4M weights or more: the inner product over gathered windows.
  for (const Case& c : std::vector<Case>{
           {1, 256, 8, 8, 1024, 4, 0, 1, 1, true},   // 8x8 outputs of a 4x4 kernel
           {2, 1024, 3, 3, 4096, 1, 0, 1, 1, true},  // 1x1 (fc7's shape), batch 2
           {1, 64, 9, 9, 2048, 6, 1, 1, 2, false},   // pad and stride in the gather
       }) {
    expect_close_to_caffe(c, ConvolutionAlgorithm::kOneDnn, kBound);
  }
}

TEST(OneDnnConvolution, SeesWeightsWrittenAfterItsFirstForward) {
  const Case c{1, 4, 12, 12, 3, 3, 1, 1, 1, true};
  auto net = conv_net(c);
  const Floats input = random_floats(4 * 12 * 12, 3);
  run(*net, input, ConvolutionAlgorithm::kOneDnn);
  net->params("conv")[0]->mutable_cpu_data()[0] += 1.0f;
  EXPECT_LT(relative_gap(run(*net, input, ConvolutionAlgorithm::kOneDnn),
                         run(*net, input, ConvolutionAlgorithm::kCaffe)), kBound);
  const auto view = net->params("conv")[0]->data();
  float* weights = static_cast<float*>(view->mutable_cpu_data());
  run(*net, input, ConvolutionAlgorithm::kOneDnn);
  weights[5] -= 2.0f;
  EXPECT_LT(relative_gap(run(*net, input, ConvolutionAlgorithm::kOneDnn),
                         run(*net, input, ConvolutionAlgorithm::kCaffe)), kBound);
}

TEST(OneDnnConvolution, FollowsANewInputSize) {
  const Case c{1, 5, 16, 16, 7, 3, 1, 1, 1, true};
  auto net = conv_net(c);
  for (int size : {16, 23, 16}) {
    const std::vector<int> shape{1, 5, size, size};
    const Floats input = random_floats(5 * size * size, size);
    auto forward = [&](ConvolutionAlgorithm algorithm) {
      net->set_convolution_algorithm(algorithm);
      net->forward({{"data", InputView{shape, input.data()}}});
      const auto& out = net->blob("out");
      return Floats(out.cpu_data(), out.cpu_data() + out.count());
    };
    const Floats ours = forward(ConvolutionAlgorithm::kOneDnn);
    EXPECT_EQ(net->engine_layers(), std::vector<std::string>{"conv"});
    EXPECT_LT(relative_gap(ours, forward(ConvolutionAlgorithm::kCaffe)), kBound) << size;
  }
}

TEST(OneDnnConvolution, ConvolutionsRepeatOnAnyNumberOfThreads) {
  const Case c{2, 16, 27, 27, 24, 3, 1, 2, 1, true};
  auto net = conv_net(c);
  const Floats input = random_floats(2 * 16 * 27 * 27, 4);
  const int before = num_threads();
  set_num_threads(1);
  const Floats one = run(*net, input, ConvolutionAlgorithm::kOneDnn);
  set_num_threads(2);
  const Floats two = run(*net, input, ConvolutionAlgorithm::kOneDnn);
  set_num_threads(before);
  EXPECT_EQ(one, two);
}

TEST(FastestConvolution, EachLayerByOneEngineWithinTheWidestBound) {
  // Which engine wins is a measurement; whichever it is, the output is
  // within Winograd's bound (the widest) of Caffe's, and a second forward
  // (the choice kept) gives the same bits as the first.
  for (const Case& c : std::vector<Case>{{1, 16, 27, 27, 24, 3, 1, 2, 1, true},
                                         {1, 3, 35, 35, 8, 11, 0, 1, 4, true}}) {
    auto net = conv_net(c);
    const Floats input =
        random_floats(static_cast<size_t>(c.num) * c.channels * c.height * c.width, 8);
    const Floats caffe = run(*net, input, ConvolutionAlgorithm::kCaffe);
    const Floats first = run(*net, input, ConvolutionAlgorithm::kFastest);
    EXPECT_LT(relative_gap(first, caffe), 4e-5) << describe(c);
    EXPECT_EQ(run(*net, input, ConvolutionAlgorithm::kFastest), first) << describe(c);
    EXPECT_LE(net->engine_layers().size(), 1u);
  }
}

}  // namespace
}  // namespace surgery::test
