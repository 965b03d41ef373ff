// A failed CHECK inside libcaffe throws instead of aborting the process.
#include <gtest/gtest.h>

#include "caffe/blob.hpp"
#include "caffe/net.hpp"
#include "surgery/files/proto_io.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

TEST(CheckThrows, InlineHeaderCheckThrows) {
  caffe::Blob<float> blob(std::vector<int>{2, 3});
  EXPECT_THROW(blob.shape(7), caffe_check::CheckFailure);
}

TEST(CheckThrows, CheckCompiledIntoLibcaffeThrowsWithItsMessage) {
  // Bypasses surgery's validation on purpose: Net::Init's own LOG(FATAL).
  const auto param = parse_net_text(R"(
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 2 } } }
    layer { name: "relu" type: "ReLU" bottom: "nowhere" top: "relu" })", "inline");
  try {
    caffe::Net<float> net(param);
    FAIL() << "Caffe accepted a missing bottom";
  } catch (const caffe_check::CheckFailure& e) {
    EXPECT_NE(std::string(e.what()).find("Unknown bottom blob 'nowhere'"), std::string::npos)
        << e.what();
    // Fired inside libcaffe itself (InsertSplits), not in an inlined header.
    EXPECT_NE(std::string(e.file()).find("src/caffe/"), std::string::npos) << e.file();
  }
  // The library is still usable afterwards.
  caffe::Net<float> good(parse_net_text(kTinyNet, "tiny"));
  EXPECT_EQ(good.output_blobs()[0]->count(), 2);
}

TEST(CheckThrows, CheckOpMessageHasBothValues) {
  caffe::Blob<float> a(std::vector<int>{2, 3});
  caffe::Blob<float> b(std::vector<int>{4});
  try {
    a.ShareData(b);
    FAIL() << "ShareData accepted different counts";
  } catch (const caffe_check::CheckFailure& e) {
    EXPECT_NE(std::string(e.what()).find("(6 vs. 4)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace surgery::test
