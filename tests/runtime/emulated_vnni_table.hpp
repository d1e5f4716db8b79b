#pragma once
// The AVX-512 VNNI table's int8 kernels (x86/avx512_vnni/int8_kernels.hpp) on plain C++
// stand-ins for the vector instructions, written from Intel's definitions of them. The twin
// tests run it on every CPU, so the kernels' loops, tails and masks are checked where the
// real table cannot run; its other kernels are the reference ones.
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime::testing {

const KernelTable& emulated_vnni_kernels();

}  // namespace verdant::runtime::testing
