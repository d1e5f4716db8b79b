#include "power.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "verdant/energy/data_paths.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/procstat.hpp"

namespace verdant::edge {

// When /proc/cpuinfo or the TDP table cannot be read: CodeCarbon's default CPU power (85 W,
// the same constant the energy module falls back to) shared by the online logical CPUs.
constexpr double kFallbackTdpWatts = 85.0;

CorePower core_power() {
  CorePower p;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  char line[256];
  try {
    const auto info = energy::read_cpuinfo("/proc");
    const auto tdp =
        energy::match_cpu_tdp(info.model_name, energy::data_dir() / "hardware" / "cpu_tdp.csv");
    const int logical = info.logical_cpus > 0 ? info.logical_cpus : static_cast<int>(cpus);
    p.watts = tdp.watts * info.sockets / logical;
    std::snprintf(line, sizeof line,
                  "estimated: process CPU time x %.2f W per core (TDP %.0f W of '%s'%s / %d "
                  "logical CPUs; verdant::energy)",
                  p.watts, tdp.watts, info.model_name.c_str(), tdp.known ? "" : ", default",
                  logical);
    p.source = line;
    return p;
  } catch (const std::exception&) {
    // fall through to the documented constant
  }
  p.watts = kFallbackTdpWatts / static_cast<double>(cpus);
  std::snprintf(line, sizeof line,
                "estimated: process CPU time x %.2f W per core (default TDP %.0f W / %ld logical "
                "CPUs; CPU model unknown)",
                p.watts, kFallbackTdpWatts, cpus);
  p.source = line;
  return p;
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace verdant::edge
