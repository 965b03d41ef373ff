// surgery::Net loads, runs and saves nets; checked against hand-computed
// numbers and against itself after a save/load round trip.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>

#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

void fill(caffe::Blob<float>& blob, float start, float step) {
  float* d = blob.mutable_cpu_data();
  for (int i = 0; i < blob.count(); ++i) d[i] = start + step * i;
}

TEST(Net, ForwardMatchesHandComputation) {
  Net net(parse_net_text(kTinyNet, "tiny"), "tiny");
  fill(*net.params("conv")[0], 1, 1);   // kernel [[1 2] [3 4]]
  fill(*net.params("conv")[1], 0.5, 0); // bias 0.5
  fill(*net.params("fc")[0], 0, 1);     // 2 x 9: rows 0..8, 9..17
  fill(*net.params("fc")[1], 0, 0);
  std::vector<float> image(16);
  std::iota(image.begin(), image.end(), 0.f);  // x[r][c] = 4r + c
  net.forward({{"data", {{1, 1, 4, 4}, image.data()}}});

  // conv[r][c] = sum k * x + 0.5 = 10 * (4r + c) + (0*1+1*2+4*3+5*4) + 0.5
  std::vector<float> conv;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) conv.push_back(10.f * (4 * r + c) + 34.f + 0.5f);
  const float* got = net.blob("conv").cpu_data();
  for (int i = 0; i < 9; ++i) EXPECT_FLOAT_EQ(got[i], conv[i]);
  for (int o = 0; o < 2; ++o) {
    float expected = 0;
    for (int i = 0; i < 9; ++i) expected += (9 * o + i) * conv[i];
    EXPECT_FLOAT_EQ(net.blob("fc").cpu_data()[o], expected);
  }
}

TEST(Net, LayersBlobsAndIoNames) {
  Net net(parse_net_text(kTinyNet, "tiny"), "tiny");
  const auto layers = net.layers();
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[1].name, "conv");
  EXPECT_EQ(layers[1].type, "Convolution");
  EXPECT_EQ(layers[1].bottoms, std::vector<std::string>{"data"});
  EXPECT_EQ(net.input_names(), std::vector<std::string>{"data"});
  EXPECT_EQ(net.output_names(), std::vector<std::string>{"fc"});
  EXPECT_EQ(net.blob_names(), (std::vector<std::string>{"data", "conv", "fc"}));
}

TEST(Net, SaveThenLoadGivesTheSameWeightsAndOutputs) {
  TempDir dir;
  Net net(parse_net_text(kTinyNet, "tiny"), "tiny");
  fill(*net.params("conv")[0], -1, 0.3f);
  fill(*net.params("fc")[0], 2, -0.1f);
  const auto proto = dir.file("tiny.prototxt");
  const auto model = dir.file("tiny.caffemodel");
  net.save(proto, model);

  Net loaded(proto, model);
  for (const auto* layer : {"conv", "fc"}) {
    for (size_t i = 0; i < 2; ++i) {
      const auto& a = *net.params(layer)[i];
      const auto& b = *loaded.params(layer)[i];
      ASSERT_EQ(a.shape(), b.shape());
      EXPECT_TRUE(std::equal(a.cpu_data(), a.cpu_data() + a.count(), b.cpu_data()));
    }
  }
  std::vector<float> image(16, 0.25f);
  net.forward({{"data", {{1, 1, 4, 4}, image.data()}}});
  loaded.forward({{"data", {{1, 1, 4, 4}, image.data()}}});
  EXPECT_EQ(net.blob("fc").cpu_data()[1], loaded.blob("fc").cpu_data()[1]);
}

TEST(Net, ForwardWithANewInputShapeReshapes) {
  const std::string def = R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 1 kernel_size: 2 } })";
  Net net(parse_net_text(def, "conv-only"), "conv-only");
  std::vector<float> image(2 * 6 * 5, 1.f);
  net.forward({{"data", {{2, 1, 6, 5}, image.data()}}});
  EXPECT_EQ(net.blob("conv").shape(), (std::vector<int>{2, 1, 5, 4}));
}

TEST(Net, TrainedLeNetLoadsFromTheFixture) {
  const auto dir = fixtures() / "lenet_mnist_trained";
  SKIP_WITHOUT_FIXTURE(dir);
  Net net((dir / "lenet.prototxt").string(), (dir / "lenet_iter_10000.caffemodel").string());
  EXPECT_EQ(net.params("ip1")[0]->shape(), (std::vector<int>{500, 800}));
  EXPECT_EQ(net.params("conv1")[0]->shape(), (std::vector<int>{20, 1, 5, 5}));
  // Trained, not the zero/xavier fill of the prototxt: nonzero biases.
  const auto& bias = *net.params("ip2")[1];
  EXPECT_GT(std::abs(bias.cpu_data()[0]) + std::abs(bias.cpu_data()[1]), 0.f);
}

TEST(Net, LayerTimesNameEveryRunningLayerOfTheLastForward) {
  // A blob read twice: Caffe runs a Split layer the definition does not name.
  Net net(parse_net_text(std::string(kTinyNet) +
                             "layer { name: 'twice' type: 'Eltwise' bottom: 'data' bottom: 'data' "
                             "top: 'sum' }",
                         "tiny"),
          "tiny");
  EXPECT_TRUE(net.layer_times().empty());
  std::vector<float> x(16, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  net.forward({{"data", InputView{{1, 1, 4, 4}, x.data()}}});
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const auto times = net.layer_times();
  ASSERT_EQ(times.size(), net.caffe_net().layer_names().size());
  double sum = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    EXPECT_EQ(times[i].first, net.caffe_net().layer_names()[i]);
    EXPECT_GE(times[i].second, 0.0);
    sum += times[i].second;
  }
  EXPECT_GT(times.size(), net.layers().size());  // the Split layer
  EXPECT_LE(sum, wall);
}

}  // namespace
}  // namespace surgery::test
