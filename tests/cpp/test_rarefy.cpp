// Filter rarefaction from C++. The oracle: on a net without padding, every
// cell of the rarefied map equals the original net run on the crop at the
// cell's place (input-level shift-and-stitch), f = 2 and 4, here with a MAX
// and an AVE pooling after the reduced layer. Refusals leave the net as it
// was; a saved rarefied net reloads with the same outputs.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "surgery/base/errors.hpp"
#include "surgery/definition/geometry.hpp"
#include "surgery/edit/rarefy.hpp"
#include "surgery/files/proto_io.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

// A LeNet-like classifier of 20 x 20 windows, already fully convolutional:
// stride 4 (pool1, pool2), no padding.
const char* kSmallNet = R"(
name: "small"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 2 dim: 20 dim: 20 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 5 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 3 kernel_size: 3 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "score" type: "Convolution" bottom: "pool2" top: "score"
        convolution_param { num_output: 2 kernel_size: 3 } }
)";

void fill(Net& net) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.f, 0.3f);
  for (const auto* layer : {"conv1", "conv2", "score"}) {
    for (const auto& blob : net.params(layer)) {
      float* d = blob->mutable_cpu_data();
      for (int i = 0; i < blob->count(); ++i) d[i] = normal(gen);
    }
  }
}

std::vector<float> image(int h, int w) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<float> out(2 * h * w);
  for (auto& v : out) v = uniform(gen);
  return out;
}

class Rarefy : public ::testing::TestWithParam<int> {};

TEST_P(Rarefy, EveryCellIsTheClassifierOnItsCrop) {
  const int f = GetParam(), H = 36, W = 28;  // no window hangs over the edge
  Net original(parse_net_text(kSmallNet, "small"), "small");
  Net net(parse_net_text(kSmallNet, "small"), "small");
  fill(original);
  fill(net);
  const RarefyReport report = rarefy(net, f);
  EXPECT_EQ(report.factor, f);
  const auto big = image(H, W);
  net.forward({{"data", {{1, 2, H, W}, big.data()}}});
  const auto& map = net.blob("score");
  const int step = 4 / f;
  ASSERT_EQ(map.height(), (H - 20) / step + 1);
  ASSERT_EQ(map.width(), (W - 20) / step + 1);
  std::vector<float> crop(2 * 20 * 20);
  for (int i = 0; i < map.height(); ++i) {
    for (int j = 0; j < map.width(); ++j) {
      for (int c = 0; c < 2; ++c) {
        for (int y = 0; y < 20; ++y) {
          for (int x = 0; x < 20; ++x) {
            crop[(c * 20 + y) * 20 + x] = big[(c * H + i * step + y) * W + j * step + x];
          }
        }
      }
      original.forward({{"data", {{1, 2, 20, 20}, crop.data()}}});
      for (int k = 0; k < 2; ++k) {
        ASSERT_NEAR(map.cpu_data()[map.offset(0, k, i, j)], original.blob("score").cpu_data()[k],
                    1e-5)
            << "f " << f << " cell " << i << "," << j;
      }
    }
  }
  const Geometry g = compute_geometry(net.filtered_definition(), "score");
  ASSERT_TRUE(g.known);
  EXPECT_EQ(g.receptive_h.stride, step);
  EXPECT_EQ(g.window_h, 20);
  EXPECT_EQ(g.window_w, 20);
}

INSTANTIATE_TEST_SUITE_P(Factors, Rarefy, ::testing::Values(2, 4));

TEST(Rarefy, RewritesTheDefinitionInStep) {
  Net net(parse_net_text(kSmallNet, "small"), "small");
  const float* weights = net.params("score")[0]->cpu_data();
  const RarefyReport report = rarefy(net, 4);
  std::map<std::string, caffe::LayerParameter> layers;
  for (const auto& layer : net.definition().layer()) layers[layer.name()] = layer;
  EXPECT_EQ(layers["pool1"].type(), "Pooling");
  EXPECT_EQ(layers["pool1"].pooling_param().stride(), 1u);
  EXPECT_EQ(layers["conv2"].convolution_param().dilation(0), 2u);
  EXPECT_EQ(layers["pool2"].type(), "DilatedPooling");
  EXPECT_EQ(layers["pool2"].convolution_param().dilation(0), 2u);
  EXPECT_EQ(layers["pool2"].pooling_param().stride(), 1u);
  EXPECT_EQ(layers["score"].convolution_param().dilation(0), 4u);
  ASSERT_EQ(report.layers.size(), 4u);  // pool1, conv2, pool2, score
  EXPECT_TRUE(report.layers[0].reduced);
  EXPECT_FALSE(report.layers[1].reduced);
  EXPECT_EQ(report.layers[2].new_type, "DilatedPooling");
  EXPECT_EQ(net.params("score")[0]->cpu_data(), weights);  // same memory
  EXPECT_EQ(net.caffe_net().layer_by_name("pool2")->type(), std::string("DilatedPooling"));
}

TEST(Rarefy, FactorsTheStridesDoNotTakeAreRefused) {
  Net net(parse_net_text(kSmallNet, "small"), "small");
  EXPECT_EQ(rarefy_factors(net), (std::vector<int>{2, 4}));
  const std::string before = net.definition().DebugString();
  for (int factor : {3, 8, 0, -2}) {
    try {
      rarefy(net, factor);
      FAIL() << "factor " << factor << " was taken";
    } catch (const ShapeError& e) {
      EXPECT_NE(std::string(e.what()).find("it takes 2, 4"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(net.definition().DebugString(), before);
  EXPECT_TRUE(rarefy(net, 1).layers.empty());
}

TEST(Rarefy, LayersItCannotRewriteAreRefusedByName) {
  const std::string head = R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
    layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
            pooling_param { pool: MAX kernel_size: 2 stride: 2 } })";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
                  inner_product_param { num_output: 2 } })",
       "'fc' (InnerProduct)"},
      {R"(layer { name: "gap" type: "Pooling" bottom: "pool" top: "gap"
                  pooling_param { pool: AVE global_pooling: true } })",
       "'gap' (Pooling)"},
      {R"(layer { name: "up" type: "Deconvolution" bottom: "pool" top: "up"
                  convolution_param { num_output: 1 kernel_size: 2 stride: 2 } })",
       "'up' (Deconvolution)"},
      {R"(layer { name: "side" type: "Convolution" bottom: "data" top: "side"
                  convolution_param { num_output: 1 kernel_size: 1 stride: 2 } }
          layer { name: "join" type: "Eltwise" bottom: "pool" bottom: "side" top: "join" })",
       "'join' (Eltwise)"}};
  for (const auto& [tail, named] : cases) {
    Net net(parse_net_text(head + tail, "t"), "t");
    const std::string before = net.definition().DebugString();
    try {
      rarefy(net, 2);
      FAIL() << named << " was rewritten";
    } catch (const NetDefinitionError& e) {
      EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
    }
    EXPECT_EQ(net.definition().DebugString(), before);
    EXPECT_EQ(net.caffe_net().layer_by_name("pool")->layer_param().pooling_param().stride(), 2u);
  }
}

TEST(Rarefy, SavedNetReloadsWithTheSameOutputs) {
  TempDir dir;
  Net net(parse_net_text(kSmallNet, "small"), "small");
  fill(net);
  rarefy(net, 4);
  const auto proto = dir.file("r.prototxt"), model = dir.file("r.caffemodel");
  net.save(proto, model);
  Net again(proto, model);
  const auto big = image(27, 24);
  net.forward({{"data", {{1, 2, 27, 24}, big.data()}}});
  again.forward({{"data", {{1, 2, 27, 24}, big.data()}}});
  const auto& a = net.blob("score");
  const auto& b = again.blob("score");
  ASSERT_EQ(a.shape(), b.shape());
  for (int i = 0; i < a.count(); ++i) ASSERT_EQ(a.cpu_data()[i], b.cpu_data()[i]);
  EXPECT_EQ(again.caffe_net().layer_by_name("pool2")->type(), std::string("DilatedPooling"));
}

}  // namespace
}  // namespace surgery::test
