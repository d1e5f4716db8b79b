#pragma once
// Power of one busy CPU under the energy module's model (power_model.hpp), for "energy per
// 1,000 inferences" = process CPU time x this.
#include <string>

namespace verdant::edge {

struct CorePower {
  double watts = 0;
  std::string source;  // one line, always says "estimated" and from what
};
CorePower core_power();
double process_cpu_seconds();  // user + system time of this process
long peak_rss_kb();

}  // namespace verdant::edge
