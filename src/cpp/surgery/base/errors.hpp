// The exceptions of the surgery core. Each kind maps to one Python class
// (bindings/errors.cpp), so callers can catch by type instead of parsing text.
#ifndef SURGERY_ERRORS_HPP_
#define SURGERY_ERRORS_HPP_

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace surgery {

// Base of every error raised on purpose by this library.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file that cannot be opened, read or written.
class FileError : public Error {
 public:
  using Error::Error;
};

// Bytes that are not a valid prototxt or caffemodel.
class ParseError : public Error {
 public:
  using Error::Error;
};

// A net definition Caffe would reject: unknown layer type, missing bottom,
// refused layer type, missing input shape.
class NetDefinitionError : public Error {
 public:
  using Error::Error;
};

// Shapes that do not fit: weights vs. layer, input vs. net, kernel vs. blob.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// More memory than the limit (set_memory_limit) allows: refused before the
// memory is taken, by our own estimate or by libcaffe's allocator budget.
class MemoryLimitError : public ShapeError {
 public:
  using ShapeError::ShapeError;
};

// A failed CHECK inside Caffe that our own validation did not foresee.
class CaffeError : public Error {
 public:
  using Error::Error;
};

// A forward stopped between two layers because its caller asked (Ctrl-C);
// the net stays usable, its blobs hold a partial pass.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// Runs f(); a failed CHECK inside Caffe comes out as CaffeError prefixed with
// what we were doing, an allocation the memory budget refused (our libcaffe
// throws caffe::MemoryBudgetExceeded, a std::bad_alloc) as MemoryLimitError.
// caffe_check::CheckFailure comes from check_throws.hpp, which the build
// force-includes into every translation unit.
template <typename F>
auto guard_caffe(const std::string& doing, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const caffe_check::CheckFailure& e) {
    throw CaffeError(doing + ": Caffe refused it: " + e.what());
  } catch (const std::bad_alloc& e) {
    throw MemoryLimitError(doing + ": " + e.what() +
                           "; raise it with surgery.set_memory_limit, or use a smaller input");
  }
}

}  // namespace surgery

#endif  // SURGERY_ERRORS_HPP_
