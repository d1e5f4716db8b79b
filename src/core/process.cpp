#include "verdant/core/process.hpp"

#include <sys/resource.h>

namespace verdant {

double peak_rss_mib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace verdant
