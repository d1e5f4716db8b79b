// verdant._native: the compiled half of the `verdant` Python package. Everything here is a
// thin binding of the C++ library; the API users call lives in python/verdant/.
#include <chrono>

#include "bindings.hpp"

namespace verdant::python {

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace verdant::python

PYBIND11_MODULE(_native, m) {
  namespace vp = verdant::python;
  m.doc() = "Bindings of Verdant's C++ library (energy tracker, scheduler, edge runtime)";
  m.attr("__version__") = VERDANT_VERSION_TEXT;
  vp::bind_errors(m);
  vp::bind_energy(m);
  vp::bind_schedule(m);
  vp::bind_edge(m);
}
