#include <gtest/gtest.h>

#include "surgery/base/logging.hpp"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  surgery::set_caffe_log_level(2);
  return RUN_ALL_TESTS();
}
