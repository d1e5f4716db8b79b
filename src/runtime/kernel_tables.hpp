#pragma once
// Internal to libverdant_runtime: the kernel tables each folder defines, named here for the
// one list in kernel_list.cpp (generic code reaches ISA code only through that list).
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {

extern const KernelTable kReferenceKernels;  // kernels_ref.cpp
#if defined(VERDANT_RUNTIME_HAVE_AVX2)
extern const KernelTable kAvx2Kernels;  // x86/avx2/kernels_avx2.cpp
// The AVX2 kernels the AVX-512 VNNI table also lists (its own are the int8 products and
// requantization).
namespace avx2 {
void gemv_f32(const float* w, std::size_t row_stride, const float* x, std::size_t kp,
              std::size_t rows, float* out);
void quantize_u8(const float* x, std::size_t n, float inv_scale, std::int32_t zp,
                 std::uint8_t* out);
}  // namespace avx2
#endif
#if defined(VERDANT_RUNTIME_HAVE_AVX512_VNNI)
extern const KernelTable kAvx512VnniKernels;  // x86/avx512_vnni/kernels_avx512_vnni.cpp
#endif

// The table VERDANT_RUNTIME_ISA=`requested` selects: that supported table, or the best one
// when `requested` is null or empty. Any other name also gives the best one and sets
// *unknown (the caller warns). No <string> here: the AVX2 file includes this header, and
// inline library code compiled with -mavx2 there could be the copy the linker keeps.
const KernelTable& choose_kernels(const char* requested, bool* unknown);

}  // namespace verdant::runtime
