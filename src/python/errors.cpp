// Verdant's exceptions as Python's: a setting the library refuses (SettingError) or bad usage
// (UsageError) is a ValueError, any other verdant::Error a verdant.VerdantError, a subclass of
// RuntimeError. The message is the library's one line, unchanged.
#include <exception>

#include "bindings.hpp"
#include "verdant/core/error.hpp"

namespace verdant::python {

void bind_errors(py::module_& m) {
  static py::exception<Error> verdant_error(m, "VerdantError", PyExc_RuntimeError);
  verdant_error.doc() = "An error from Verdant's C++ library (its message names the problem)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UsageError& e) {  // SettingError is a UsageError
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const Error& e) {
      verdant_error(e.what());
    }
  });
}

}  // namespace verdant::python
