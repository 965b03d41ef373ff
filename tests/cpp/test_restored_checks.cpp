// The checks this Caffe fork had commented out or left to debug builds,
// restored by the recipe's patches (third_party/caffe/patches/0003, 0004):
// without them each case reads or writes outside a blob (ASan, which this
// suite also runs under, would report it); with them each is a typed error
// and the library goes on working.
#include <gtest/gtest.h>

#include <vector>

#include "surgery/errors.hpp"
#include "surgery/net.hpp"
#include "surgery/proto_io.hpp"
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

}  // namespace
}  // namespace surgery::test
