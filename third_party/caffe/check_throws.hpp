// Force-included (-include) into every libcaffe source and every consumer.
//
// Caffe reports bad input through glog's CHECK / LOG(FATAL), which abort the
// process; in a Python extension that kills the interpreter (BVLC/caffe#35).
// glog 0.6 offers no way out: a failure function cannot throw because
// ~LogMessageFatal() is noexcept. So the three macros that create a fatal
// message are redefined here to build the same text and throw
// caffe_check::CheckFailure from a noexcept(false) destructor instead.
//
// Consumers must see this header too: Caffe headers inline CHECKs (for
// example Blob::shape(i)) that are compiled into the consumer's own code.
// A CHECK inside a destructor or a background thread still terminates.
#ifndef CAFFE_SURGERY_CHECK_THROWS_HPP_
#define CAFFE_SURGERY_CHECK_THROWS_HPP_

#ifdef __cplusplus

#include <glog/logging.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace caffe_check {

// A failed CHECK or LOG(FATAL) inside Caffe. what() is glog's message;
// file() and line() say where in Caffe it fired.
class CheckFailure : public std::runtime_error {
 public:
  CheckFailure(const char* file, int line, const std::string& message)
      : std::runtime_error(message), file_(file), line_(line) {}
  const char* file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

 private:
  const char* file_;
  int line_;
};

// Stands in for google::LogMessageFatal: collects the streamed message and
// throws when the temporary dies at the end of the CHECK statement.
class Thrower {
 public:
  Thrower(const char* file, int line) : file_(file), line_(line) {}
  // CHECK_EQ and friends hand over the "a == b (1 vs. 2)" text, which glog
  // would own and never free; take it so nothing leaks per failure.
  Thrower(const char* file, int line, const google::CheckOpString& result)
      : Thrower(file, line) {
    stream_ << "Check failed: " << *result.str_ << " ";
    delete result.str_;
  }
  Thrower(const Thrower&) = delete;
  Thrower& operator=(const Thrower&) = delete;
  std::ostream& stream() { return stream_; }
  [[noreturn]] ~Thrower() noexcept(false) {
    throw CheckFailure(file_, line_, stream_.str());
  }

 private:
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

template <typename T>
T CheckNotNull(const char* file, int line, const char* names, T&& t) {
  if (t == nullptr) Thrower(file, line).stream() << names;
  return std::forward<T>(t);
}

}  // namespace caffe_check

#undef COMPACT_GOOGLE_LOG_FATAL
#define COMPACT_GOOGLE_LOG_FATAL caffe_check::Thrower(__FILE__, __LINE__)

#undef CHECK_OP
#define CHECK_OP(name, op, val1, val2) \
  CHECK_OP_LOG(name, op, val1, val2, caffe_check::Thrower)

#undef CHECK_NOTNULL
#define CHECK_NOTNULL(val) \
  caffe_check::CheckNotNull(__FILE__, __LINE__, "'" #val "' Must be non NULL", (val))

#endif  // __cplusplus
#endif  // CAFFE_SURGERY_CHECK_THROWS_HPP_
