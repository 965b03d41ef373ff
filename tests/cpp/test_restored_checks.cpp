// The checks this Caffe fork had commented out or left to debug builds,
// restored by the recipe's patches (third_party/caffe/patches/0003, 0004, 0006-0008):
// without them each case reads or writes outside a blob (ASan, which this
// suite also runs under, would report it); with them each is a typed error
// and the library goes on working.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "surgery/base/errors.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

Net build(const std::string& text) { return Net(parse_net_text(text, "net"), "net"); }

const char* kTwoInputs = R"(
  layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
  layer { name: "b" type: "Input" top: "b" input_param { shape { dim: 1 dim: 2 dim: 2 dim: 2 } } }
)";

// Forward reads every bottom over top[0]'s count: 48 values from an 8-value blob.
TEST(RestoredChecks, EltwiseBottomsOfDifferentShapes) {
  EXPECT_THROW(build(std::string(kTwoInputs) + R"(
    layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum"
            eltwise_param { operation: SUM } })"),
               Error);
}

// Forward walks `a` in steps of the scale's dimensions (3 channels vs 2).
TEST(RestoredChecks, ScaleBlobThatDoesNotMatchTheBottom) {
  EXPECT_THROW(build(R"(
    layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
    layer { name: "s" type: "Input" top: "s" input_param { shape { dim: 2 } } }
    layer { name: "scale" type: "Scale" bottom: "a" bottom: "s" top: "scaled"
            scale_param { axis: 1 } })"),
               Error);
}

// Mixed signs: Forward copies rows at offsets outside both blobs.
TEST(RestoredChecks, PadWithMixedSigns) {
  EXPECT_THROW(build(R"(
    layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
    layer { name: "pad" type: "Pad" bottom: "a" top: "padded"
            pad_param { pad_u: 2 pad_d: -3 pad_l: 1 pad_r: 1 } })"),
               Error);
}

// A reflected border wider than the image reads rows that do not exist.
TEST(RestoredChecks, ReflectPadWiderThanTheImage) {
  EXPECT_THROW(build(R"(
    layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
    layer { name: "pad" type: "Pad" bottom: "a" top: "padded"
            pad_param { pad_u: 3 pad_d: 3 pad_l: 3 pad_r: 3 pad_type: REFLECT } })"),
               Error);
}

// Forward copies the weight row at each input value: 7 and -1 are not rows
// of a 5-row table, 1.5 is not a row at all. A good input still works after.
TEST(RestoredChecks, EmbedIndicesOutsideTheTable) {
  Net net = build(R"(
    layer { name: "ids" type: "Input" top: "ids" input_param { shape { dim: 3 } } }
    layer { name: "embed" type: "Embed" bottom: "ids" top: "vectors"
            embed_param { num_output: 4 input_dim: 5 weight_filler { type: "constant" value: 1 } } })");
  for (const float bad : {7.0f, -1.0f, 1.5f}) {
    const std::vector<float> ids = {0, bad, 2};
    EXPECT_THROW(net.forward({{"ids", {{3}, ids.data()}}}), CaffeError) << bad;
  }
  const std::vector<float> good = {0, 4, 2};
  net.forward({{"ids", {{3}, good.data()}}});
  EXPECT_EQ(net.blob("vectors").shape(), (std::vector<int>{3, 4}));
}

// The losses and Accuracy index the scores by each label's value: in this
// fork only a DCHECK (gone in release builds) stood between a label of 7 or
// -1 and a read (a write, in Backward) outside a 5-class blob.
TEST(RestoredChecks, LabelsOutsideTheClasses) {
  const std::string inputs = R"(
    layer { name: "scores" type: "Input" top: "scores" input_param { shape { dim: 2 dim: 5 } } }
    layer { name: "labels" type: "Input" top: "labels" input_param { shape { dim: 2 } } }
    layer { name: "gain" type: "Input" top: "gain" input_param { shape { dim: 1 dim: 1 dim: 5 dim: 5 } } }
  )";
  const std::vector<std::string> layers = {
      R"(layer { name: "l" type: "SoftmaxWithLoss" bottom: "scores" bottom: "labels" top: "l" })",
      R"(layer { name: "l" type: "Accuracy" bottom: "scores" bottom: "labels" top: "l" })",
      R"(layer { name: "l" type: "MultinomialLogisticLoss" bottom: "scores" bottom: "labels"
                 top: "l" })",
      R"(layer { name: "l" type: "InfogainLoss" bottom: "scores" bottom: "labels" bottom: "gain"
                 top: "l" })",
  };
  const std::vector<float> scores(10, 0.2f);
  const std::vector<float> gain(25, 1.0f);
  for (const auto& layer : layers) {
    Net net = build(inputs + layer);
    const auto run = [&](const std::vector<float>& labels) {
      net.forward({{"scores", {{2, 5}, scores.data()}},
                   {"labels", {{2}, labels.data()}},
                   {"gain", {{1, 1, 5, 5}, gain.data()}}});
    };
    for (const float bad : {7.0f, 5.0f, -1.0f}) {
      EXPECT_THROW(run({1, bad}), CaffeError) << layer << " label " << bad;
    }
    run({1, 4});
    EXPECT_TRUE(std::isfinite(net.blob("l").cpu_data()[0])) << layer;
  }
}

// Proposal reads 2 score and 4 delta channels per anchor (here one anchor)
// at every position, whatever its bottoms hold: each wrong shape is refused
// when the net is built, and the right ones build.
TEST(RestoredChecks, ProposalBottomsThatDoNotMatchItsAnchors) {
  const auto net_with = [](const char* scores, const char* deltas, const char* info) {
    return std::string(R"(layer { name: "s" type: "Input" top: "s" input_param { shape { )") +
           scores + R"( } } }
      layer { name: "d" type: "Input" top: "d" input_param { shape { )" + deltas + R"( } } }
      layer { name: "i" type: "Input" top: "i" input_param { shape { )" + info + R"( } } }
      layer { name: "p" type: "Proposal" bottom: "s" bottom: "d" bottom: "i" top: "rois"
              proposal_param { ratio: 1 scale: 8 } })";
  };
  const char* scores = "dim: 1 dim: 2 dim: 4 dim: 4";
  const char* deltas = "dim: 1 dim: 4 dim: 4 dim: 4";
  const char* info = "dim: 1 dim: 3";
  EXPECT_THROW(build(net_with("dim: 1 dim: 1 dim: 4 dim: 4", deltas, info)), Error);
  EXPECT_THROW(build(net_with(scores, "dim: 1 dim: 2 dim: 4 dim: 4", info)), Error);
  EXPECT_THROW(build(net_with(scores, "dim: 1 dim: 4 dim: 8 dim: 4", info)), Error);
  EXPECT_THROW(build(net_with(scores, "dim: 2 dim: 4 dim: 4 dim: 4", info)), Error);
  EXPECT_THROW(build(net_with(scores, deltas, "dim: 1")), Error);
  EXPECT_NO_THROW(build(net_with(scores, deltas, info)));
}

// PSROIPooling's kernels read five values per RoI.
TEST(RestoredChecks, PsroiPoolingRoisThatAreNotFiveValues) {
  const std::string net = R"(
    layer { name: "f" type: "Input" top: "f" input_param { shape { dim: 1 dim: 8 dim: 6 dim: 6 } } }
    layer { name: "r" type: "Input" top: "r" input_param { shape { dim: 3 dim: )";
  const std::string pool = R"( } } }
    layer { name: "p" type: "PSROIPooling" bottom: "f" bottom: "r" top: "pooled"
            psroi_pooling_param { spatial_scale: 1 output_dim: 2 group_size: 2 } })";
  EXPECT_THROW(build(net + "4" + pool), Error);
  EXPECT_NO_THROW(build(net + "5" + pool));
}

// Upsample and PixelShuffle index their bottom's shape from its end; after a
// layer whose axes the definition does not tell (here a Reshape to fewer axes)
// only Caffe sees the shape, and without the check it wrote before the
// shape vector.
TEST(RestoredChecks, UpsampleAndPixelShuffleOnTooFewAxes) {
  const auto reshaped_to = [](const char* dims) {
    return std::string(R"(
      layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 dim: 4 dim: 2 dim: 2 } } }
      layer { name: "r" type: "Reshape" bottom: "a" top: "r" reshape_param { shape { )") +
           dims + " } } }\n";
  };
  EXPECT_THROW(build(reshaped_to("dim: -1") + R"(
                 layer { name: "u" type: "Upsample" bottom: "r" top: "u"
                         upsample_param { scale: 2 } })"),
               Error);
  EXPECT_THROW(build(reshaped_to("dim: 4 dim: -1") + R"(
                 layer { name: "s" type: "PixelShuffle" bottom: "r" top: "s"
                         pixelshuffle_param { upscale_factor: 2 } })"),
               Error);
}

}  // namespace
}  // namespace surgery::test
