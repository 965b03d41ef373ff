// Caffe logs every layer it builds at INFO level; a library should be quiet.
#ifndef SURGERY_LOGGING_HPP_
#define SURGERY_LOGGING_HPP_

namespace surgery {

// glog severities: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL. Messages below
// `level` are dropped. The Python module sets 2 (errors only) on import.
void set_caffe_log_level(int level);
int caffe_log_level();

}  // namespace surgery

#endif  // SURGERY_LOGGING_HPP_
