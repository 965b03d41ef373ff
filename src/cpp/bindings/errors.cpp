// Maps each C++ error kind to its class in surgery/errors.py.
#include <string>

#include "bindings/bindings.hpp"
#include "surgery/base/errors.hpp"

namespace py = pybind11;

namespace surgery::bindings {
namespace {

void raise(const char* name, const std::string& message) {
  py::object cls = py::module_::import("surgery.errors").attr(name);
  // Messages quote names from the files, which need not be UTF-8.
  py::set_error(cls, text(message));
}

}  // namespace

void bind_errors(py::module_&) {
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const FileError& e) {
      raise("FileError", e.what());
    } catch (const ParseError& e) {
      raise("ParseError", e.what());
    } catch (const NetDefinitionError& e) {
      raise("NetDefinitionError", e.what());
    } catch (const MemoryLimitError& e) {
      raise("MemoryLimitError", e.what());
    } catch (const ShapeError& e) {
      raise("ShapeError", e.what());
    } catch (const CaffeError& e) {
      raise("CaffeError", e.what());
    } catch (const Error& e) {
      raise("SurgeryError", e.what());
    } catch (const caffe_check::CheckFailure& e) {
      raise("CaffeError", std::string("Caffe refused it (") + e.file() + ":" +
                              std::to_string(e.line()) + "): " + e.what());
    } catch (const std::bad_alloc& e) {
      // Our libcaffe's allocator budget (caffe::MemoryBudgetExceeded) reached
      // a path that guard_caffe does not wrap.
      raise("MemoryLimitError", std::string(e.what()) + " (surgery.set_memory_limit)");
    }
  });
}

}  // namespace surgery::bindings
