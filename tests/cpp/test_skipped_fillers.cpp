// Nets loaded with a weights file skip the fillers of the layers the file
// fills, and still hold what stock caffe::Net holds with the same seed:
// the file's values, and the fillers' values for a layer the file lacks.
#include <gtest/gtest.h>

#include <string>

#include <google/protobuf/text_format.h>

#include "caffe/net.hpp"
#include "caffe/util/io.hpp"
#include "caffe/util/rng.hpp"
#include "surgery/definition/skipped_fillers.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

// Every param layer has a filler that draws random numbers.
const char* kFilledNet = R"(
name: "filled"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3
          weight_filler { type: "gaussian" std: 1 } bias_filler { type: "uniform" } } }
layer { name: "fc1" type: "InnerProduct" bottom: "conv" top: "fc1"
        inner_product_param { num_output: 6
          weight_filler { type: "xavier" } bias_filler { type: "gaussian" } } }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2"
        inner_product_param { num_output: 5
          weight_filler { type: "gaussian" } bias_filler { type: "uniform" } } }
)";

// A caffemodel of the net's layers but `missing`, with values of seed 1.
std::string weights_without(const TempDir& dir, const std::string& prototxt,
                            const std::string& missing) {
  caffe::Caffe::set_random_seed(1);
  caffe::Net<float> source(prototxt, caffe::TEST);
  caffe::NetParameter weights;
  source.ToProto(&weights);
  caffe::NetParameter kept;
  kept.set_name(weights.name());
  for (const auto& layer : weights.layer()) {
    if (layer.name() != missing) *kept.add_layer() = layer;
  }
  const std::string path = dir.file("w.caffemodel");
  caffe::WriteProtoToBinaryFile(kept, path);
  return path;
}

void expect_same_params(const caffe::Net<float>& expected, Net& got) {
  for (const char* layer : {"conv", "fc1", "fc2"}) {
    const auto& blobs = expected.layer_by_name(layer)->blobs();
    for (size_t i = 0; i < blobs.size(); ++i) {
      const auto& want = *blobs[i];
      const auto& have = *got.params(layer)[i];
      ASSERT_EQ(have.shape(), want.shape()) << layer;
      EXPECT_TRUE(std::equal(want.cpu_data(), want.cpu_data() + want.count(), have.cpu_data()))
          << layer << " blob " << i;
    }
  }
}

// Stock Caffe's net with seed 2 and the weights, and the first random number
// Caffe draws after building it.
unsigned int stock_load(const std::string& prototxt, const std::string& model,
                        std::unique_ptr<caffe::Net<float>>* net) {
  caffe::Caffe::set_random_seed(2);
  *net = std::make_unique<caffe::Net<float>>(prototxt, caffe::TEST);
  (*net)->CopyTrainedLayersFrom(model);
  return caffe::caffe_rng_rand();
}

TEST(SkippedFillers, LayerMissingFromTheWeightsKeepsItsFillerValues) {
  TempDir dir;
  const auto prototxt = dir.file("filled.prototxt", kFilledNet);
  const auto model = weights_without(dir, prototxt, "fc1");
  std::unique_ptr<caffe::Net<float>> stock;
  const unsigned int stock_next = stock_load(prototxt, model, &stock);

  caffe::Caffe::set_random_seed(2);
  Net ours(prototxt, model);
  EXPECT_EQ(ours.loaded_layers(), (std::set<std::string>{"conv", "fc2"}));
  expect_same_params(*stock, ours);
  // fc2's fillers were skipped (conv's ran: fc1's draws come after them),
  // so Caffe's random stream is at another place than stock Caffe's.
  EXPECT_NE(caffe::caffe_rng_rand(), stock_next);
}

TEST(SkippedFillers, WeightsForEveryLayerSkipEveryFiller) {
  TempDir dir;
  const auto prototxt = dir.file("filled.prototxt", kFilledNet);
  const auto model = weights_without(dir, prototxt, "");
  std::unique_ptr<caffe::Net<float>> stock;
  stock_load(prototxt, model, &stock);

  caffe::Caffe::set_random_seed(2);
  Net ours(prototxt, model);
  expect_same_params(*stock, ours);
  // Nothing drew: the stream is where the seed put it.
  const unsigned int next = caffe::caffe_rng_rand();
  caffe::Caffe::set_random_seed(2);
  EXPECT_EQ(next, caffe::caffe_rng_rand());
}

TEST(SkippedFillers, OnlyLayersPastTheLastDrawThatStaysAreChanged) {
  caffe::NetParameter param;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"(
    layer { name: "a" type: "InnerProduct" inner_product_param { weight_filler { type: "gaussian" } } }
    layer { name: "b" type: "InnerProduct" inner_product_param { weight_filler { type: "xavier" } } }
    layer { name: "c" type: "InnerProduct" inner_product_param { weight_filler { type: "gaussian" } } }
    layer { name: "d" type: "Data" transform_param { mirror: true } }
    layer { name: "e" type: "InnerProduct" inner_product_param { weight_filler { type: "msra" } } }
    layer { name: "f" type: "InnerProduct" inner_product_param { weight_filler { type: "constant" } } }
  )", &param));
  // b and d (not in the file) draw when built: a and c must draw before them as in Caffe.
  EXPECT_EQ(skip_fillers(param, {"a", "c", "e"}), (std::set<std::string>{"e"}));
  EXPECT_EQ(param.layer(0).inner_product_param().weight_filler().type(), "gaussian");
  EXPECT_EQ(param.layer(2).inner_product_param().weight_filler().type(), "gaussian");
  EXPECT_EQ(param.layer(4).inner_product_param().weight_filler().type(), "constant");
  // e's filler is constant now, which draws nothing: the walk passes it and stops at d.
  EXPECT_EQ(skip_fillers(param, {"c", "f"}), (std::set<std::string>{"f"}));
}

}  // namespace
}  // namespace surgery::test
