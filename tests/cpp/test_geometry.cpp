// Geometry from the layers alone: the window rules, the smallest input by
// Caffe's arithmetic (checked against Caffe reshaping the net), and the
// window record a converted prototxt carries.
#include <gtest/gtest.h>

#include "surgery/base/errors.hpp"
#include "surgery/definition/geometry.hpp"
#include "surgery/edit/fully_convolutional.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/files/window_record.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

// CaffeNet's spatial layers, fully convolutional, declared at 451.
const char kCaffeNetFcn[] = R"(
  layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 451 dim: 451 } } }
  layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
          convolution_param { num_output: 1 kernel_size: 11 stride: 4 } }
  layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
          pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
  layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
          convolution_param { num_output: 1 kernel_size: 5 pad: 2 } }
  layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
          pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
  layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3"
          convolution_param { num_output: 1 kernel_size: 3 pad: 1 } }
  layer { name: "pool5" type: "Pooling" bottom: "conv3" top: "pool5"
          pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
  layer { name: "fc6" type: "Convolution" bottom: "pool5" top: "fc6"
          convolution_param { num_output: 1 kernel_size: 6 } }
)";

// The blob's H' at an n x n input as Caffe computes it (0 if refused).
int caffe_rows(Net& net, int n) {
  try {
    net.reshape({{"data", {1, 1, n, n}}});
  } catch (const Error&) {
    return 0;
  }
  return net.blob("fc6").shape(2);
}

TEST(Geometry, ExactFitAndSmallestInputOfCaffeNet) {
  const auto def = parse_net_text(kCaffeNetFcn, "caffenet");
  const Geometry g = compute_geometry(def, "fc6");
  ASSERT_TRUE(g.known);
  EXPECT_EQ(g.window_rule, "exact fit");
  EXPECT_EQ(g.window_h, 227);
  EXPECT_EQ(g.receptive_h.stride, 32);
  EXPECT_EQ(output_size(def, "fc6", 0, 451), 8);
  Net net(def, "caffenet");
  EXPECT_EQ(caffe_rows(net, static_cast<int>(g.min_input_h)), 1);
  EXPECT_EQ(caffe_rows(net, static_cast<int>(g.min_input_h) - 1), 0);
  for (int n : {227, 250, 300, 451}) EXPECT_EQ(output_size(def, "fc6", 0, n), caffe_rows(net, n)) << n;
}

// The same net with a squeeze-and-excitation gate on conv3: a gate scales
// channels and changes no place, so the geometry must be the plain net's.
TEST(Geometry, AGateChangesNoPlace) {
  std::string text = kCaffeNetFcn;
  const std::string conv3_end = "convolution_param { num_output: 1 kernel_size: 3 pad: 1 } }";
  text.insert(text.find(conv3_end) + conv3_end.size(), R"(
  layer { name: "se/pool" type: "Pooling" bottom: "conv3" top: "se/pool"
          pooling_param { pool: AVE global_pooling: true } }
  layer { name: "se/fc" type: "InnerProduct" bottom: "se/pool" top: "se/gate"
          inner_product_param { num_output: 1 } }
  layer { name: "se/sigmoid" type: "Sigmoid" bottom: "se/gate" top: "se/gate" }
  layer { name: "se/scale" type: "Scale" bottom: "conv3" bottom: "se/gate" top: "gated"
          scale_param { axis: 0 } })");
  text.replace(text.find(R"(bottom: "conv3" top: "pool5")"), 28, R"(bottom: "gated" top: "pool5")");
  const auto plain = compute_geometry(parse_net_text(kCaffeNetFcn, "plain"), "fc6");
  const auto def = parse_net_text(text, "gated");
  const Geometry g = compute_geometry(def, "fc6");
  ASSERT_TRUE(g.known) << g.why;
  EXPECT_EQ(g.gate_poolings, std::vector<std::string>{"se/pool"});
  EXPECT_EQ(g.receptive_h.size, plain.receptive_h.size);
  EXPECT_EQ(g.receptive_h.stride, plain.receptive_h.stride);
  EXPECT_EQ(g.receptive_h.offset, plain.receptive_h.offset);
  EXPECT_EQ(g.window_h, plain.window_h);
  EXPECT_EQ(g.min_input_h, plain.min_input_h);
  Net net(def, "gated");
  for (int n : {227, 250, 300, 451}) EXPECT_EQ(output_size(def, "fc6", 0, n), caffe_rows(net, n)) << n;
}

TEST(Geometry, RecordedBeatsDeclaredBeatsExactFit) {
  auto def = parse_net_text(kCaffeNetFcn, "caffenet");
  EXPECT_EQ(compute_geometry(def, "fc6", {231, 229}).window_w, 229);
  EXPECT_EQ(compute_geometry(def, "fc6", {231, 229}).window_rule, "recorded");
  // Declared at 230, which gives one cell (ceil pooling): the declared size wins.
  auto* shape = def.mutable_layer(0)->mutable_input_param()->mutable_shape(0);
  shape->set_dim(2, 230);
  shape->set_dim(3, 230);
  const Geometry g = compute_geometry(def, "fc6");
  EXPECT_EQ(g.window_rule, "declared");
  EXPECT_EQ(g.window_h, 230);
}

TEST(Geometry, WindowRecordRoundTrip) {
  EXPECT_EQ(window_record_line({227, 200}), "# caffe-surgery window: 227 200\n");
  EXPECT_EQ(window_record_line({}), "");
  const auto found = find_window_record("# other\n\n# caffe-surgery window: 7 9\nlayer {}\n", "x");
  EXPECT_EQ(found.h, 7);
  EXPECT_EQ(found.w, 9);
  EXPECT_TRUE(find_window_record("layer {}\n# caffe-surgery window: 7 9\n", "x").empty());
  EXPECT_THROW(find_window_record("# caffe-surgery window: 7\n", "x"), ParseError);
  EXPECT_THROW(find_window_record("# caffe-surgery window: 7 99999999999\n", "x"), ParseError);
}

TEST(Geometry, SurgeryRecordsTheWindowAndSaveWritesIt) {
  TempDir dir;
  const auto prototxt = dir.file("fc.prototxt", R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 6 dim: 5 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 1 kernel_size: 3 } }
    layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
            inner_product_param { num_output: 2 } })");
  Net net(prototxt);
  fully_convolutionalize(net);
  EXPECT_EQ(net.recorded_window().h, 6);
  EXPECT_EQ(net.recorded_window().w, 5);
  const auto saved = dir.file("saved.prototxt");
  net.save(saved, "");
  Net again(saved);
  EXPECT_EQ(again.recorded_window().h, 6);
  EXPECT_EQ(compute_geometry(again.filtered_definition(), "fc-conv", again.recorded_window())
                .window_rule, "recorded");
}

}  // namespace
}  // namespace surgery::test
