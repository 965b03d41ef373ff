#include "surgery/base/logging.hpp"

#include <glog/logging.h>

namespace surgery {

void set_caffe_log_level(int level) {
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = level;
}

int caffe_log_level() { return FLAGS_minloglevel; }

}  // namespace surgery
