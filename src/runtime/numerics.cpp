// Out of line, with snprintf rather than string concatenation: the loader and the writer are
// linked into verdant-edge, whose size has a target.
#include "numerics.hpp"

#include <cstdio>

namespace verdant::runtime {

std::string describe_non_finite(const char* what, const float* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isfinite(v[i])) continue;
    const char* kind = std::isnan(v[i]) ? "NaN" : v[i] > 0 ? "+infinity" : "-infinity";
    char line[160];
    std::snprintf(line, sizeof line, "%s element %zu is %s", what, i, kind);
    return line;
  }
  return {};
}

}  // namespace verdant::runtime
