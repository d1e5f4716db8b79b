#pragma once
// One place that decides how many threads Verdant uses (our loops and the BLAS library).

namespace verdant {

// More threads than this are refused: far beyond any machine's cores, and OpenMP runtimes
// crash or abort when asked for tens of thousands.
inline constexpr int kMaxThreads = 1024;

// 0 means "all hardware threads". Applies to OpenMP and to the BLAS backend. Outside
// [0, kMaxThreads]: SettingError("threads", ...).
void set_num_threads(int n);
int num_threads();

}  // namespace verdant
