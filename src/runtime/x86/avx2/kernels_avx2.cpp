// AVX2 + FMA kernels, compiled with -mavx2 -mfma for this file only and reached solely
// through the table kAvx2Kernels in the list of kernel_list.cpp. Each has a twin in
// kernels_ref.cpp and a test comparing the two (tests/runtime/kernels_test.cpp).
#include <immintrin.h>

#include <cstring>

#include "kernel_tables.hpp"
#include "x86/cpu_features.hpp"

namespace verdant::runtime {
namespace {

inline std::int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// u8 x s8 -> pairs summed in s16 by vpmaddubsw (exact: x <= 127 keeps |pair| <= 32512),
// then widened to s32 with vpmaddwd against ones.
inline __m256i dot32(__m256i x, const std::int8_t* w, __m256i ones) {
  const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, wv), ones);
}

void gemv_s8_avx2(const std::int8_t* w, std::size_t row_stride, const std::uint8_t* x,
                  std::size_t kp, std::size_t rows, std::int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const std::int8_t* w0 = w + r * row_stride;
    const std::int8_t* w1 = w0 + row_stride;
    const std::int8_t* w2 = w1 + row_stride;
    const std::int8_t* w3 = w2 + row_stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t k = 0; k < kp; k += 32) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
      a0 = _mm256_add_epi32(a0, dot32(xv, w0 + k, ones));
      a1 = _mm256_add_epi32(a1, dot32(xv, w1 + k, ones));
      a2 = _mm256_add_epi32(a2, dot32(xv, w2 + k, ones));
      a3 = _mm256_add_epi32(a3, dot32(xv, w3 + k, ones));
    }
    // Four horizontal sums at once.
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r),
                     _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
  }
  for (; r < rows; ++r) {
    const std::int8_t* wr = w + r * row_stride;
    __m256i a = _mm256_setzero_si256();
    for (std::size_t k = 0; k < kp; k += 32) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
      a = _mm256_add_epi32(a, dot32(xv, wr + k, ones));
    }
    out[r] = hsum_epi32(a);
  }
}

}  // namespace

// avx2::gemv_f32 and quantize_u8 are also the AVX-512 VNNI table's
// (kernel_tables.hpp).
void avx2::gemv_f32(const float* w, std::size_t row_stride, const float* x, std::size_t kp,
                    std::size_t rows, float* out) {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + r * row_stride;
    const float* w1 = w0 + row_stride;
    const float* w2 = w1 + row_stride;
    const float* w3 = w2 + row_stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t k = 0; k < kp; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xv, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xv, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xv, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xv, a3);
    }
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(out + r, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }
  for (; r < rows; ++r) {
    const float* wr = w + r * row_stride;
    __m256 a = _mm256_setzero_ps();
    for (std::size_t k = 0; k < kp; k += 8)
      a = _mm256_fmadd_ps(_mm256_loadu_ps(wr + k), _mm256_loadu_ps(x + k), a);
    out[r] = hsum_ps(a);
  }
}

namespace {

// Gathers 32-bit words at byte offsets x + col[j] and keeps the low byte, so x must stay
// readable 3 bytes past its last indexed element (the runtime's buffers have 64 bytes of
// slack). The weights are sign-extended to 32 bits; vpmaddwd against (x, 0) pairs then
// yields x * w exactly.
void spmv_s8_avx2(const std::uint32_t* row_ptr, const std::uint16_t* col, const std::int8_t* val,
                  std::size_t rows, const std::uint8_t* x, std::int32_t* out) {
  const __m256i low_byte = _mm256_set1_epi32(0xFF);
  const int* base = reinterpret_cast<const int*>(x);
  for (std::size_t r = 0; r < rows; ++r) {
    std::uint32_t j = row_ptr[r];
    const std::uint32_t end = row_ptr[r + 1];
    __m256i a = _mm256_setzero_si256();
    for (; j + 8 <= end; j += 8) {
      const __m256i idx =
          _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col + j)));
      const __m256i xv = _mm256_and_si256(_mm256_i32gather_epi32(base, idx, 1), low_byte);
      const __m256i wv =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(val + j)));
      a = _mm256_add_epi32(a, _mm256_madd_epi16(xv, wv));
    }
    std::int32_t acc = hsum_epi32(a);
    for (; j < end; ++j) acc += static_cast<std::int32_t>(val[j]) * x[col[j]];
    out[r] = acc;
  }
}

// Eight lanes; 32x32->64-bit products via vpmuldq on even and odd lanes. A tail masks the
// loads (vpmaskmovd reads nothing outside `lanes`), so it needs no scalar loop; whole
// vectors take plain loads.
template <bool kTail>
inline __m128i requant8(const std::int32_t* acc, const std::int32_t* bias, const std::int32_t* mult,
                        const std::int32_t* shift, __m256i lanes, __m256i vzp, __m256i vlo) {
  const __m256i half = _mm256_set1_epi64x(std::int64_t{1} << 30);
  const __m256i one = _mm256_set1_epi32(1), vhi = _mm256_set1_epi32(127);
  const __m256i gather_low = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
  const auto load = [lanes](const std::int32_t* p) {
    return kTail ? _mm256_maskload_epi32(p, lanes)
                 : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  const __m256i v = _mm256_add_epi32(load(acc), load(bias));
  const __m256i m = load(mult);
  const __m256i sh = load(shift);
  // (p + 2^30) << 1 keeps floor((p + 2^30) / 2^31) in each qword's high dword.
  __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(v, m), half);
  __m256i po =
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), _mm256_srli_epi64(m, 32)), half);
  pe = _mm256_srli_epi64(_mm256_slli_epi64(pe, 1), 32);
  po = _mm256_slli_epi64(po, 1);
  const __m256i x = _mm256_blend_epi32(pe, po, 0xAA);
  const __m256i round = _mm256_srli_epi32(_mm256_sllv_epi32(one, sh), 1);
  __m256i y = _mm256_add_epi32(_mm256_srav_epi32(_mm256_add_epi32(x, round), sh), vzp);
  y = _mm256_min_epi32(_mm256_max_epi32(y, vlo), vhi);
  const __m256i b16 = _mm256_packs_epi32(y, y);
  const __m256i b8 = _mm256_packus_epi16(b16, b16);
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b8, gather_low));  // low 8 bytes
}

void requant_u8_avx2(const std::int32_t* acc, const std::int32_t* bias, const std::int32_t* mult,
                     const std::int32_t* shift, std::size_t n, std::int32_t zp, std::int32_t lo,
                     std::uint8_t* out) {
  const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo);
  const __m256i all = _mm256_set1_epi32(-1);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i),
                     requant8<false>(acc + i, bias + i, mult + i, shift + i, all, vzp, vlo));
  if (i < n) {
    const auto rest = static_cast<int>(n - i);
    const __m256i lanes =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    alignas(16) std::uint8_t o[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(o),
                    requant8<true>(acc + i, bias + i, mult + i, shift + i, lanes, vzp, vlo));
    for (int t = 0; t < rest; ++t) out[i + t] = o[t];
  }
}

// Two 4x4 blocks per 256-bit step: the low lane multiplies block j's four rows by the four
// inputs of its columns broadcast, the high lane block j+1's; vpmaddubsw + vpmaddwd sum each
// row's four products into one 32-bit lane. No gather: one 4-byte broadcast per block.
inline __m256i bsr_pair(const std::uint16_t* col, const std::int8_t* blocks, const std::uint8_t* x,
                        std::uint32_t j, __m256i ones) {
  std::int32_t a, b;
  std::memcpy(&a, x + 4 * std::size_t{col[j]}, 4);
  std::memcpy(&b, x + 4 * std::size_t{col[j + 1]}, 4);
  const __m256i xv =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(a)), _mm_set1_epi32(b), 1);
  const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks + 16 * j));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv), ones);
}

void bsr4x4_s8_avx2(const std::uint32_t* row_ptr, const std::uint16_t* col,
                    const std::int8_t* blocks, std::size_t block_rows, const std::uint8_t* x,
                    std::int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (std::size_t br = 0; br < block_rows; ++br) {
    std::uint32_t j = row_ptr[br];
    const std::uint32_t end = row_ptr[br + 1];
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;  // two chains hide the multiply latency
    for (; j + 4 <= end; j += 4) {
      a0 = _mm256_add_epi32(a0, bsr_pair(col, blocks, x, j, ones));
      a1 = _mm256_add_epi32(a1, bsr_pair(col, blocks, x, j + 2, ones));
    }
    if (j + 2 <= end) {
      a0 = _mm256_add_epi32(a0, bsr_pair(col, blocks, x, j, ones));
      j += 2;
    }
    a0 = _mm256_add_epi32(a0, a1);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    if (j < end) {
      std::int32_t v;
      std::memcpy(&v, x + 4 * std::size_t{col[j]}, 4);
      const __m128i wv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 16 * j));
      s = _mm_add_epi32(s, _mm_madd_epi16(_mm_maddubs_epi16(_mm_set1_epi32(v), wv),
                                          _mm256_castsi256_si128(ones)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4 * br), s);
  }
}

}  // namespace

// Eight floats at a time; max/min against constants put NaN at 0 like the twin (vmaxps
// returns its second operand when either is NaN), then +0.5 and truncation round half up.

void avx2::quantize_u8(const float* x, std::size_t n, float inv_scale, std::int32_t zp,
                       std::uint8_t* out) {
  const __m256 inv = _mm256_set1_ps(inv_scale), z = _mm256_set1_ps(static_cast<float>(zp));
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(127.f), half = _mm256_set1_ps(0.5f);
  const __m256i gather_low = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv), z);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    const __m256i q = _mm256_cvttps_epi32(_mm256_add_ps(v, half));
    const __m256i b16 = _mm256_packs_epi32(q, q);
    const __m256i b8 = _mm256_packus_epi16(b16, b16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i),
                     _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b8, gather_low)));
  }
  if (i < n) reference_kernels().quantize_u8(x + i, n - i, inv_scale, zp, out + i);
}

// Density thresholds measured with bench/edge_bench on AVX2 without VNNI: unstructured CSR
// loses to the dense kernel above ~1/16 density; 4x4 blocks break even at ~0.35-0.4 (mlp).
constinit const KernelTable kAvx2Kernels{
    .isa = "avx2",
    .cpu_supports = x86::has_avx2_fma,
    // Measured by `edge_bench --crossover` (AMD EPYC Zen 5, mlp, batch 1): CSR at 1.47x the
    // dense time at density 0.02, 0.69x at 0.01; 4x4 blocks 1.18x at 0.5, 0.74x at 0.3.
    .csr_max_density = 1.0 / 64.0,
    .bsr_max_density = 0.4,
    .gemv_s8 = gemv_s8_avx2,
    .gemv_f32 = avx2::gemv_f32,
    .requant_u8 = requant_u8_avx2,
    .spmv_s8 = spmv_s8_avx2,
    .bsr4x4_s8 = bsr4x4_s8_avx2,
    .quantize_u8 = avx2::quantize_u8,
    .pack_s8 = nullptr,  // gemv_s8 reads the rows as stored
    .pack_s8_rows = 0,
    .gemv_s8_packed = nullptr,
};

}  // namespace verdant::runtime
