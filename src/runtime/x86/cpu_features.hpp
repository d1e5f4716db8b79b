#pragma once
// Internal to libverdant_runtime: what this x86 CPU supports, asked once per feature set.
// The x86 kernel tables use these as their KernelTable::cpu_supports.

namespace verdant::runtime::x86 {

bool has_avx2_fma();  // AVX2 and FMA (Haswell, Zen and later)

}  // namespace verdant::runtime::x86
