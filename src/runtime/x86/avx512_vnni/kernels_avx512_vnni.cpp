// The AVX-512 VNNI table: its int8 products (dense rows, CSR, 4x4 blocks, and so the im2col
// convolutions, which run through the dense rows) are int8_kernels.hpp on vpdpbusd. Its fp32
// product, requantization and input quantization are the AVX2 table's: VNNI adds nothing to
// them. Compiled with -mavx512f -mavx512bw -mavx512vnni for this file only and reached solely
// through kAvx512VnniKernels in the list of kernel_list.cpp.
#include "kernel_tables.hpp"
#include "x86/avx512_vnni/int8_kernels.hpp"
#include "x86/avx512_vnni/vnni_ops.hpp"
#include "x86/cpu_features.hpp"

namespace verdant::runtime {

constinit const KernelTable kAvx512VnniKernels{
    .isa = "avx512_vnni",
    .cpu_supports = x86::has_avx512_vnni,
    .csr_max_density = vnni::kCsrMaxDensity,
    .bsr_max_density = vnni::kBsrMaxDensity,
    .gemv_s8 = vnni::gemv_s8<vnni::Avx512VnniOps>,
    .gemv_f32 = avx2::gemv_f32,
    .requant_u8 = avx2::requant_u8,
    .spmv_s8 = vnni::spmv_s8<vnni::Avx512VnniOps>,
    .bsr4x4_s8 = vnni::bsr4x4_s8<vnni::Avx512VnniOps>,
    .quantize_u8 = avx2::quantize_u8,
};

}  // namespace verdant::runtime
