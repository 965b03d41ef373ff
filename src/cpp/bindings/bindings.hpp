// The pybind11 layer: converts types and errors, nothing else.
#ifndef SURGERY_BINDINGS_HPP_
#define SURGERY_BINDINGS_HPP_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/net_guard.hpp"
#include "surgery/runtime/fork_gate.hpp"
#include "surgery/runtime/net.hpp"

namespace surgery::bindings {

using FloatArray = pybind11::array_t<float, pybind11::array::c_style | pybind11::array::forcecast>;

// The class Python knows as surgery._core.Net.
using PyNet = Guarded<Net>;

// THE rule for every entry point that touches a net: release the GIL (other
// Python threads go on while this one waits or works), take the net's guard
// (one call inside the net at a time), run `call` as a CaffeSection (a fork
// waits for it: fork_gate.hpp), opened inside the guard so that no thread
// holds a section while waiting for a guard. `call` must not touch
// Python objects; it returns plain C++ values that the caller converts once
// it holds the GIL again. Nothing ever waits for a guard while holding the
// GIL, so the two cannot deadlock.
template <typename F>
auto locked(Guard& guard, F&& call) -> decltype(call()) {
  pybind11::gil_scoped_release release;
  return guard.run([&] {
    const CaffeSection section;
    return call();
  });
}

template <typename Object, typename F>
auto locked(const Guarded<Object>& object, F&& call) -> decltype(call()) {
  return locked(object.guard(), std::forward<F>(call));
}

// A writable array over a blob's host memory (its data, or its diff). The
// array owns a reference to the blob's SyncedMemory, so it stays valid
// (though stale) even if a later reshape makes the blob allocate new memory,
// or the blob is gone. Made in two halves: the pointer under the net's
// guard (mutable_cpu_data moves the head), the array afterwards with the GIL.
struct HostView {
  std::vector<pybind11::ssize_t> shape;
  caffe::shared_ptr<caffe::SyncedMemory> memory;  // null for an empty blob
  float* data = nullptr;
};
enum class BlobPart { kData, kDiff };
HostView host_view(caffe::Blob<float>& blob, BlobPart part = BlobPart::kData);
pybind11::array to_array(HostView view);

// Asked by a forward between two layers: calls `between_layers` (if not
// None; a progress bar's step), then, on the main thread, checks for Ctrl-C
// (any signal whose Python handler raises). True once either raised, with
// the Python exception set. Takes the GIL briefly, so call it only inside
// locked(). Empty where there is nothing to ask (no callback, and another
// thread, where Python runs no handlers).
std::function<bool()> signal_check(const pybind11::object& between_layers = pybind11::none());

// Re-raises the Python exception a signal handler left (after an
// Interrupted from the core); call with the GIL held.
[[noreturn]] void raise_pending_signal();

// Python text from a name Caffe holds or a message: bytes that are not
// UTF-8 (a path's, or a name the loader should have refused) are written
// \xNN, readable and printable, instead of raising UnicodeDecodeError.
pybind11::str text(const std::string& bytes);
pybind11::list texts(const std::vector<std::string>& names);

// A file path from Python, taken as open() takes one: str, bytes or any
// os.PathLike, a str encoded as os.fsencode does (so a name that is not
// UTF-8, which Python holds as surrogate escapes, reaches the same file).
// Anything else is a TypeError; a str that cannot be encoded raises
// UnicodeEncodeError, as open() does; an embedded NUL, which C would
// silently cut at, raises FileError.
struct Path {
  std::string bytes;
};

// `value` if it lies in [low, high], else nothing (a value past long long too).
std::optional<long long> integer_in(const pybind11::int_& value, long long low, long long high);

// A dimension from Python: an int in [1, 2^31 - 1], else ShapeError naming `what`.
int dimension(const pybind11::handle& value, const std::string& what);
std::vector<int> dimensions(const pybind11::handle& shape, const std::string& what);
std::map<std::string, std::vector<int>> shapes(const pybind11::dict& by_name,
                                               const std::string& what);

// Borrowed views of numpy arrays (which must outlive them), for forward and training.
std::map<std::string, InputView> input_views(const std::map<std::string, FloatArray>& arrays);

void bind_errors(pybind11::module_& m);
void bind_net(pybind11::module_& m);
void bind_surgery(pybind11::module_& m);
void bind_trainer(pybind11::module_& m);
void bind_device(pybind11::module_& m);
void bind_pycaffe(pybind11::module_& m);

}  // namespace surgery::bindings

namespace pybind11::detail {

template <>
struct type_caster<surgery::bindings::Path> {
  PYBIND11_TYPE_CASTER(surgery::bindings::Path, const_name("str | bytes | os.PathLike[str]"));
  bool load(handle source, bool);
  static handle cast(const surgery::bindings::Path& path, return_value_policy, handle);
};

}  // namespace pybind11::detail

#endif  // SURGERY_BINDINGS_HPP_
