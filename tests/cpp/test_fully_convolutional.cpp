// Surgery from C++: weights keep their memory, outputs are unchanged at the
// declared size, maps grow with the input, refusals leave the net alone.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "surgery/base/errors.hpp"
#include "surgery/definition/geometry.hpp"
#include "surgery/edit/fully_convolutional.hpp"
#include "surgery/files/proto_io.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

void fill(Net& net) {
  float v = 0.01f;
  for (const auto* layer : {"conv", "fc"}) {
    for (const auto& blob : net.params(layer)) {
      float* d = blob->mutable_cpu_data();
      for (int i = 0; i < blob->count(); ++i, v = -v * 1.01f) d[i] = v * (i % 7);
    }
  }
}

// The tiny net's two outputs in `blob` for a 4x4 ramp, its declared input.
std::vector<float> outputs_on_a_ramp(Net& net, const std::string& blob) {
  std::vector<float> image(16);
  for (int i = 0; i < 16; ++i) image[i] = 0.1f * i;
  net.forward({{"data", {{1, 1, 4, 4}, image.data()}}});
  EXPECT_EQ(net.blob(blob).count(), 2);
  return std::vector<float>(net.blob(blob).cpu_data(), net.blob(blob).cpu_data() + 2);
}

TEST(FullyConvolutional, SameMemorySameOutputLargerMap) {
  Net net(parse_net_text(kTinyNet, "tiny"), "tiny");
  fill(net);
  const std::vector<float> before = outputs_on_a_ramp(net, "fc");
  const float* weights = net.params("fc")[0]->cpu_data();

  const SurgeryReport report = fully_convolutionalize(net);
  ASSERT_EQ(report.layers.size(), 1u);
  EXPECT_EQ(report.layers[0].new_name, "fc-conv");
  EXPECT_EQ(report.layers[0].new_shape, (std::vector<int>{2, 1, 3, 3}));
  EXPECT_EQ(net.params("fc-conv")[0]->cpu_data(), weights);  // no copy

  const std::vector<float> after = outputs_on_a_ramp(net, "fc-conv");
  EXPECT_FLOAT_EQ(after[0], before[0]);
  EXPECT_FLOAT_EQ(after[1], before[1]);
  std::vector<float> big(7 * 6, 1.f);
  net.forward({{"data", {{1, 1, 7, 6}, big.data()}}});
  EXPECT_EQ(net.blob("fc-conv").shape(), (std::vector<int>{1, 2, 4, 3}));

  const Geometry g = compute_geometry(net.filtered_definition(), "fc-conv");
  ASSERT_TRUE(g.known);
  EXPECT_EQ(g.receptive_h.size, 4);
  EXPECT_EQ(g.receptive_h.stride, 1);
  EXPECT_EQ(g.window_h, 4);  // declared, though the net last ran at 7 x 6
  EXPECT_EQ(g.window_w, 4);
  EXPECT_TRUE(g.padded_layers.empty());
}

// Caffe ignores a convolution_param on an InnerProduct layer; the
// Convolution made from it gets none of it (hardening/fuzz/crashes/forward/
// bd97228e91b04171: a pad_w of 2^31 - 1 overflowed Caffe's output size).
TEST(FullyConvolutional, AStrayConvolutionParamIsNotInherited) {
  std::string def = kTinyNet;
  def.replace(def.find("inner_product_param { num_output: 2 }"),
              std::string("inner_product_param { num_output: 2 }").size(),
              "inner_product_param { num_output: 2 } "
              "convolution_param { pad_h: 1 pad_w: 2147483647 stride: 2 group: 2 }");
  Net net(parse_net_text(def, "tiny"), "tiny");
  fill(net);
  const std::vector<float> before = outputs_on_a_ramp(net, "fc");
  fully_convolutionalize(net);
  const caffe::NetParameter definition = net.filtered_definition();
  const caffe::ConvolutionParameter& p = definition.layer(2).convolution_param();
  EXPECT_FALSE(p.has_pad_h() || p.has_pad_w() || p.pad_size() || p.stride_size() || p.has_group());
  const std::vector<float> after = outputs_on_a_ramp(net, "fc-conv");
  EXPECT_FLOAT_EQ(after[0], before[0]);
  EXPECT_FLOAT_EQ(after[1], before[1]);
}

TEST(FullyConvolutional, RefusalLeavesTheNetUnchanged) {
  const std::string def = R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 8 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
            inner_product_param { num_output: 2 } })";
  Net net(parse_net_text(def, "mlp"), "mlp");
  try {
    fully_convolutionalize(net);
    FAIL() << "an MLP was converted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no spatial extent"), std::string::npos) << e.what();
  }
  EXPECT_EQ(net.layers().back().type, "InnerProduct");
  EXPECT_EQ(net.params("fc")[0]->shape(), (std::vector<int>{2, 8}));
}

// The plan accepts this net, but Caffe refuses the converted one when it
// reshapes it: fc's top turns 4-D and meets a 2-D blob in a Concat. The
// refusal comes after fc was converted (its transposed weights rearranged,
// its layer replaced, its top renamed), and all of it is undone: the same
// definition, layers, blob names and weight bytes, and the same outputs.
TEST(FullyConvolutional, CaffesRefusalAtReshapeLeavesTheNetAsItWas) {
  const std::string def = R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
    layer { name: "side" type: "Input" top: "side" input_param { shape { dim: 1 dim: 3 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 1 kernel_size: 2 } }
    layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
            inner_product_param { num_output: 2 transpose: true } }
    layer { name: "join" type: "Concat" bottom: "fc" bottom: "side" top: "join" })";
  Net net(parse_net_text(def, "join"), "join");
  fill(net);
  const std::string definition = net.definition().DebugString();
  const auto blob_names = net.blob_names();
  const auto snapshot = [&] {
    std::vector<std::vector<float>> bytes;
    for (const auto* layer : {"conv", "fc"}) {
      for (const auto& blob : net.params(layer)) {
        bytes.emplace_back(blob->cpu_data(), blob->cpu_data() + blob->count());
      }
    }
    return bytes;
  };
  const auto weights = snapshot();
  const auto shapes = net.params("fc")[0]->shape();
  std::vector<float> image(16), side = {1.f, -2.f, 3.f};
  for (int i = 0; i < 16; ++i) image[i] = 0.1f * i - 0.7f;
  const auto run = [&] {
    net.forward({{"data", {{1, 1, 4, 4}, image.data()}}, {"side", {{1, 3}, side.data()}}});
    const auto& out = net.blob("join");
    return std::vector<float>(out.cpu_data(), out.cpu_data() + out.count());
  };
  const auto before = run();

  EXPECT_THROW(fully_convolutionalize(net), Error);

  EXPECT_EQ(net.definition().DebugString(), definition);
  EXPECT_EQ(net.blob_names(), blob_names);
  std::vector<std::string> types;
  for (const auto& layer : net.layers()) types.push_back(layer.type);
  EXPECT_EQ(types, (std::vector<std::string>{"Input", "Input", "Convolution", "InnerProduct",
                                             "Concat"}));
  std::vector<std::string> running;  // the live net's layers, not only the definition's
  for (const auto& layer : net.caffe_net().layers()) running.push_back(layer->type());
  EXPECT_EQ(running, types);
  EXPECT_EQ(net.params("fc")[0]->shape(), shapes);
  const auto after = snapshot();
  ASSERT_EQ(after.size(), weights.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(after[i].data(), weights[i].data(), after[i].size() * sizeof(float)))
        << "param blob " << i;
  }
  EXPECT_EQ(run(), before);
}

}  // namespace
}  // namespace surgery::test

namespace surgery::test {
namespace {

// What we save is what stock Caffe loads: its own reader and its own
// CopyTrainedLayersFrom, with no surgery code on the way.
TEST(FullyConvolutional, StockCaffeLoadsTheSavedFiles) {
  TempDir dir;
  Net net(parse_net_text(kTinyNet, "tiny"), "tiny");
  fill(net);
  fully_convolutionalize(net);
  const auto proto = dir.file("fc.prototxt");
  const auto model = dir.file("fc.caffemodel");
  net.save(proto, model);
  caffe::Net<float> stock(proto, caffe::TEST);
  stock.CopyTrainedLayersFrom(model);
  const auto& weights = *stock.layer_by_name("fc-conv")->blobs()[0];
  EXPECT_EQ(weights.shape(), (std::vector<int>{2, 1, 3, 3}));
  const auto& ours = *net.params("fc-conv")[0];
  EXPECT_TRUE(std::equal(ours.cpu_data(), ours.cpu_data() + ours.count(), weights.cpu_data()));
}

}  // namespace
}  // namespace surgery::test
