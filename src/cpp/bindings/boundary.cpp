// What every entry point shares at the Python boundary: the Ctrl-C check,
// text from Caffe's bytes, checked paths and dimensions (bindings.hpp).
#include <Python.h>

#include <climits>
#include <string>

#include "bindings/bindings.hpp"
#include "surgery/base/errors.hpp"

namespace py = pybind11;

namespace surgery::bindings {

std::function<bool()> signal_check(const py::object& between_layers) {
  // Python runs signal handlers only on its main thread.
  const py::object threading = py::module_::import("threading");
  const bool main = threading.attr("current_thread")().is(threading.attr("main_thread")());
  if (!main && between_layers.is_none()) return {};
  return [main, between_layers] {
    py::gil_scoped_acquire gil;
    if (!between_layers.is_none()) {
      try {
        between_layers();
      } catch (py::error_already_set& error) {
        error.restore();
        return true;
      }
    }
    return main && PyErr_CheckSignals() != 0;
  };
}

void raise_pending_signal() {
  if (PyErr_Occurred()) throw py::error_already_set();
  throw Error("interrupted");
}

py::str text(const std::string& bytes) {
  PyObject* decoded = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()),
                                           "backslashreplace");
  if (!decoded) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(decoded);
}

py::list texts(const std::vector<std::string>& names) {
  py::list out;
  for (const auto& name : names) out.append(text(name));
  return out;
}


std::optional<long long> integer_in(const py::int_& value, long long low, long long high) {
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (n == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0 || n < low || n > high) return std::nullopt;
  return n;
}

int dimension(const py::handle& value, const std::string& what) {
  if (!PyIndex_Check(value.ptr()) || PyBool_Check(value.ptr())) {
    throw ShapeError(what + ": a dimension must be an integer, not " +
                     std::string(py::str(py::repr(value))));
  }
  const py::int_ number = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  if (!number) throw py::error_already_set();
  const auto n = integer_in(number, 1, INT_MAX);
  if (!n) {
    throw ShapeError(what + ": every dimension must be positive and at most " +
                     std::to_string(INT_MAX) + ", not " + std::string(py::str(number)));
  }
  return static_cast<int>(*n);
}

std::vector<int> dimensions(const py::handle& shape, const std::string& what) {
  if (!py::isinstance<py::sequence>(shape) || py::isinstance<py::str>(shape)) {
    throw ShapeError(what + ": a shape must be a sequence of integers, not " +
                     std::string(py::str(py::repr(shape))));
  }
  std::vector<int> out;
  for (const auto& value : py::reinterpret_borrow<py::sequence>(shape)) {
    out.push_back(dimension(value, what));
  }
  return out;
}

std::map<std::string, std::vector<int>> shapes(const py::dict& by_name, const std::string& what) {
  std::map<std::string, std::vector<int>> out;
  for (const auto& [name, shape] : by_name) {
    const std::string key = py::cast<std::string>(name);
    out[key] = dimensions(shape, what + " '" + key + "'");
  }
  return out;
}

}  // namespace surgery::bindings

namespace pybind11::detail {

bool type_caster<surgery::bindings::Path>::load(handle source, bool) {
  // os.fspath(): str or bytes, or TypeError for anything else (not ours to
  // raise: returning false lets pybind11 name the expected types).
  const object path = reinterpret_steal<object>(PyOS_FSPath(source.ptr()));
  if (!path) {
    PyErr_Clear();
    return false;
  }
  // os.fsencode(): the file system encoding with surrogateescape.
  const object bytes = PyUnicode_Check(path.ptr())
                           ? reinterpret_steal<object>(PyUnicode_EncodeFSDefault(path.ptr()))
                           : path;
  if (!bytes) throw error_already_set();
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(bytes.ptr(), &data, &size) != 0) throw error_already_set();
  value.bytes.assign(data, static_cast<size_t>(size));
  const auto nul = value.bytes.find('\0');
  if (nul != std::string::npos) {
    throw surgery::FileError("the path '" + value.bytes.substr(0, nul) +
                             "\\x00...' holds a NUL byte, which no file name can");
  }
  return true;
}

handle type_caster<surgery::bindings::Path>::cast(const surgery::bindings::Path& path,
                                                  return_value_policy, handle) {
  return PyUnicode_DecodeFSDefaultAndSize(path.bytes.data(),
                                          static_cast<Py_ssize_t>(path.bytes.size()));
}

}  // namespace pybind11::detail
