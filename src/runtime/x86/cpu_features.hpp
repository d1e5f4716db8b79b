#pragma once
// Internal to libverdant_runtime: what this x86 CPU supports, asked once per feature set.
// The x86 kernel tables use these as their KernelTable::cpu_supports.

namespace verdant::runtime::x86 {

bool has_avx2_fma();  // AVX2 and FMA (Haswell, Zen and later)
// AVX-512 F and BW with VNNI, and AVX2 and FMA (Cascade Lake, Ice Lake, Zen 4 and later).
// A CPU with AVX-512 but no VNNI (Skylake-SP) keeps the AVX2 table.
bool has_avx512_vnni();

}  // namespace verdant::runtime::x86
