#pragma once
// The median the benchmarks report: the middle value, the mean of the two middle ones for an
// even count, NaN for none.
#include <algorithm>
#include <cmath>
#include <vector>

namespace verdant::bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace verdant::bench
