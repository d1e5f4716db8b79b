#include "power.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "verdant/energy/power_model.hpp"

namespace verdant::edge {

CorePower core_power() {
  CorePower p;
  char line[96];
  try {
    // The energy module's model, so that the edge figures agree with every other one.
    const energy::CpuPowerModel model = energy::cpu_power_model();
    p.watts = model.full_watts;
    std::snprintf(line, sizeof line, "estimated: process CPU time x %.2f W per busy %s (", p.watts,
                  model.unit.c_str());
    p.source = line + model.describe() + ")";
    return p;
  } catch (const std::exception& e) {
    // No /proc or no data tables: CodeCarbon 3's figure for a CPU it does not know.
    p.watts = energy::kUnknownCpuWattsPerThread;
    std::snprintf(line, sizeof line,
                  "estimated: process CPU time x %.2f W per busy thread (CodeCarbon 3's default "
                  "for an unknown CPU; ",
                  p.watts);
    p.source = line + std::string(e.what()) + ")";
    return p;
  }
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
