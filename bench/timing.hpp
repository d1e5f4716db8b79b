#pragma once
// What the benchmarks time with: milliseconds per call and the median they report.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "verdant/core/threading.hpp"

namespace verdant::bench {

// The middle value, the mean of the two middle ones for an even count, NaN for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Milliseconds per call of f over reps calls, after one untimed call (first touch, lazily
// created primitives).
template <typename F>
double ms_per_call(F f, int reps) {
  f();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         reps;
}

// The benchmarks' usual arguments, [ROUNDS] [THREADS] (2 threads by default); sets the
// thread count.
struct RoundsThreads {
  int rounds, threads;
};
inline RoundsThreads rounds_and_threads(int argc, char** argv, int default_rounds) {
  const RoundsThreads a{argc > 1 ? std::atoi(argv[1]) : default_rounds,
                        argc > 2 ? std::atoi(argv[2]) : 2};
  set_num_threads(a.threads);
  return a;
}

}  // namespace verdant::bench
