// The AVX-512 VNNI table: its int8 products (dense rows, packed or not, CSR, 4x4 blocks, and so
// the im2col convolutions, which run through the dense rows) are int8_kernels.hpp on
// vpdpbusd; requantization runs 16 lanes wide here. Its fp32 product and input quantization
// are the AVX2 table's. Compiled with -mavx512f -mavx512bw -mavx512vnni for this file only and
// reached solely through kAvx512VnniKernels in the list of kernel_list.cpp.
#include <immintrin.h>

#include "kernel_tables.hpp"
#include "x86/avx512_vnni/int8_kernels.hpp"
#include "x86/avx512_vnni/vnni_ops.hpp"
#include "x86/cpu_features.hpp"

namespace verdant::runtime {
namespace {

// The AVX2 table's arithmetic (requant8 there) on 16 lanes: 32x32->64-bit products on even
// and odd lanes, the rounding shift, clamping. Whole vectors take plain loads and stores
// (which forward from and to the neighbouring kernels; masked ones may not), the tail masked
// ones, so nothing is read or written past n.
void requant_u8(const std::int32_t* acc, const std::int32_t* bias, const std::int32_t* mult,
                const std::int32_t* shift, std::size_t n, std::int32_t zp, std::int32_t lo,
                std::uint8_t* out) {
  const __m512i half = _mm512_set1_epi64(std::int64_t{1} << 30);
  const __m512i one = _mm512_set1_epi32(1), vhi = _mm512_set1_epi32(127);
  const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo);
  const auto requant16 = [&](std::size_t i, __mmask16 m, bool whole) {
    const auto load = [m, whole](const std::int32_t* p) {
      return whole ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(m, p);
    };
    const __m512i v = _mm512_add_epi32(load(acc + i), load(bias + i));
    const __m512i mu = load(mult + i);
    const __m512i sh = load(shift + i);
    // (p + 2^30) << 1 keeps floor((p + 2^30) / 2^31) in each qword's high dword.
    __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(v, mu), half);
    __m512i po = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64(v, 32), _mm512_srli_epi64(mu, 32)), half);
    pe = _mm512_srli_epi64(_mm512_slli_epi64(pe, 1), 32);
    po = _mm512_slli_epi64(po, 1);
    const __m512i x = _mm512_mask_blend_epi32(0xAAAA, pe, po);
    const __m512i round = _mm512_srli_epi32(_mm512_sllv_epi32(one, sh), 1);
    __m512i y = _mm512_add_epi32(_mm512_srav_epi32(_mm512_add_epi32(x, round), sh), vzp);
    y = _mm512_min_epi32(_mm512_max_epi32(y, vlo), vhi);
    const __m128i bytes = _mm512_cvtepi32_epi8(y);  // y is in [0, 127]: vpmovdb keeps it
    if (whole)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), bytes);
    else
      _mm512_mask_cvtepi32_storeu_epi8(out + i, m, y);
  };
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) requant16(i, 0xFFFF, true);
  if (i < n) requant16(i, vnni::first_lanes(n - i), false);
}

}  // namespace

constinit const KernelTable kAvx512VnniKernels{
    .isa = "avx512_vnni",
    .cpu_supports = x86::has_avx512_vnni,
    .csr_max_density = vnni::kCsrMaxDensity,
    .bsr_max_density = vnni::kBsrMaxDensity,
    .gemv_s8 = vnni::gemv_s8<vnni::Avx512VnniOps>,
    .gemv_f32 = avx2::gemv_f32,
    .requant_u8 = requant_u8,
    .spmv_s8 = vnni::spmv_s8<vnni::Avx512VnniOps>,
    .bsr4x4_s8 = vnni::bsr4x4_s8<vnni::Avx512VnniOps>,
    .quantize_u8 = avx2::quantize_u8,
    .pack_s8 = vnni::pack_s8<vnni::Avx512VnniOps>,
    .pack_s8_rows = vnni::kPackRows,
    .gemv_s8_packed = vnni::gemv_s8_packed<vnni::Avx512VnniOps>,
};

}  // namespace verdant::runtime
