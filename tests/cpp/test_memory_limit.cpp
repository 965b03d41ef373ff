// The memory limit holds inside libcaffe's allocator: whatever asks for blob
// memory (a filler, DummyData, a reshape, Deconvolution's buffer during
// forward) is refused before the memory is taken, with MemoryLimitError, and
// nothing stays counted afterwards.
#include <gtest/gtest.h>

#include "surgery/base/errors.hpp"
#include "surgery/base/memory_guard.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

constexpr uint64_t kLimit = 256ull << 20;

class MemoryLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    set_memory_limit(kLimit);
    before_ = memory_in_use();
  }
  void TearDown() override {
    // Every refused allocation was given back (or never counted).
    EXPECT_EQ(memory_in_use(), before_);
    set_memory_limit(0);
  }
  static Net build(const std::string& text) { return Net(parse_net_text(text, "net"), "net"); }
  uint64_t before_ = 0;
};

// 2^28 weights (1 GiB) filled at construction.
TEST_F(MemoryLimit, ParameterFilledAtLoadIsRefusedBeforeAllocation) {
  EXPECT_THROW(build(R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
            inner_product_param { num_output: 268435456 weight_filler { type: "constant" value: 1 } } })"),
               MemoryLimitError);
}

TEST_F(MemoryLimit, DummyDataIsRefusedBeforeAllocation) {
  EXPECT_THROW(build(R"(
    layer { name: "d" type: "DummyData" top: "d"
            dummy_data_param { shape { dim: 1 dim: 256 dim: 1024 dim: 1024 }
                               data_filler { type: "constant" value: 1 } } })"),
               MemoryLimitError);
}

TEST_F(MemoryLimit, RefusedReshapeKeepsTheOldShapeAndGivesMemoryBack) {
  {
    Net net = build(R"(
      layer { name: "data" type: "Input" top: "data"
              input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
      layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
              convolution_param { num_output: 4 kernel_size: 3 } })");
    const float image[64] = {};
    net.forward({{"data", {{1, 1, 8, 8}, image}}});
    const uint64_t held = memory_in_use();
    // 10^8 input values: 400 MB, past the 256 MiB limit.
    EXPECT_THROW(net.reshape({{"data", {1, 1, 10000, 10000}}}), MemoryLimitError);
    EXPECT_EQ(net.blob("conv").shape(), (std::vector<int>{1, 4, 6, 6}));
    EXPECT_LE(memory_in_use(), held);
    net.forward({{"data", {{1, 1, 8, 8}, image}}});  // still usable
  }
}

// Deconvolution's column buffer (1 GiB here) is not in the estimate: the allocator
// refuses it during forward, and the net stays usable at a small size.
TEST_F(MemoryLimit, DeconvolutionBufferIsRefusedDuringForward) {
  Net net = build(R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 64 dim: 2 dim: 2 } } }
    layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
            convolution_param { num_output: 16 kernel_size: 64 stride: 1 } })");
  std::vector<float> big(64 * 64 * 64, 1.0f);
  EXPECT_THROW(net.forward({{"data", {{1, 64, 64, 64}, big.data()}}}), MemoryLimitError);
  std::vector<float> small(64 * 2 * 2, 1.0f);
  net.forward({{"data", {{1, 64, 2, 2}, small.data()}}});
  EXPECT_EQ(net.blob("up").shape(), (std::vector<int>{1, 16, 65, 65}));
}

TEST_F(MemoryLimit, NetsGiveTheirMemoryBackWhenDestroyed) {
  {
    Net net = build(R"(
      layer { name: "d" type: "DummyData" top: "d"
              dummy_data_param { shape { dim: 1 dim: 1024 dim: 1024 } } })");
    EXPECT_GE(memory_in_use(), before_ + (4u << 20));
  }
}

}  // namespace
}  // namespace surgery::test
