// One thread setting reaches both pools a forward uses: OpenBLAS's and
// libcaffe's own loops (recipe patch 0009); both read it back.
#include <gtest/gtest.h>

#include <stdexcept>

#include "surgery/runtime/threads.hpp"

namespace surgery::test {
namespace {

class Threads : public ::testing::Test {
 protected:
  void TearDown() override { set_num_threads(0); }
};

TEST_F(Threads, OneSettingReachesBlas) {
  for (int n : {1, 3, 2}) {
    set_num_threads(n);
    EXPECT_EQ(num_threads(), n);
    EXPECT_EQ(thread_counts().blas, n);
  }
  set_num_threads(1);
  set_num_threads(0);
  EXPECT_GE(num_threads(), 1);
  EXPECT_EQ(thread_counts().blas, num_threads());
}

TEST_F(Threads, OneSettingReachesLibcaffe) {
  if (thread_counts().caffe == 0) {
    GTEST_SKIP() << "this libcaffe lacks recipe patch 0009 (parallel loops)";
  }
  for (int n : {1, 3, 2}) {
    set_num_threads(n);
    EXPECT_EQ(thread_counts().caffe, n);
  }
  set_num_threads(0);
  EXPECT_EQ(thread_counts().caffe, num_threads());
}

TEST_F(Threads, NegativeIsRefused) {
  set_num_threads(2);
  EXPECT_THROW(set_num_threads(-1), std::invalid_argument);
  EXPECT_EQ(num_threads(), 2);
}

}  // namespace
}  // namespace surgery::test
