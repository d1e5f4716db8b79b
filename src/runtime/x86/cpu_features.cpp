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

}  // namespace verdant::runtime::x86
