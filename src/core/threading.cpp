#include "verdant/core/threading.hpp"

#include <omp.h>

#include <algorithm>
#include <string>
#include <thread>

#include "verdant/core/error.hpp"

// OpenBLAS's own control; declared here so core needs no BLAS header. Resolved when the
// final program links OpenBLAS (kernels does); a weak symbol keeps core usable alone.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace verdant {

namespace {
int g_threads = 0;
}

void set_num_threads(int n) {
  if (n < 0 || n > kMaxThreads)
    throw SettingError("threads", "threads must be in [0, " + std::to_string(kMaxThreads) +
                                      "] (0: all cores), got " + std::to_string(n));
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads = n;
  omp_set_num_threads(n);
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

int num_threads() {
  if (g_threads <= 0) return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return g_threads;
}

}  // namespace verdant
