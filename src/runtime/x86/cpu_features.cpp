// CPU-feature detection through the compiler's cpuid wrapper (GCC and clang).
#include "x86/cpu_features.hpp"

namespace verdant::runtime::x86 {

bool has_avx2_fma() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return supported;
}

bool has_avx512_vnni() {
  static const bool supported = [] {
    __builtin_cpu_init();
    // libgcc's and compiler-rt's checks also ask the OS (XGETBV) whether it saves the
    // 512-bit registers.
    return has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  }();
  return supported;
}

}  // namespace verdant::runtime::x86
