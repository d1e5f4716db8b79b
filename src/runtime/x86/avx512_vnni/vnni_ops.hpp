#pragma once
// The vector operations int8_kernels.hpp is written against, as AVX-512 (F, BW) and VNNI
// instructions. Included only by kernels_avx512_vnni.cpp, which is compiled with those flags.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace verdant::runtime::vnni {

// The mask of the first n (0 to 16) of 16 lanes.
inline __mmask16 first_lanes(std::size_t n) {
  return static_cast<__mmask16>(0xFFFFu >> (16 - n));
}

// The 4 bytes at p as one dword.
inline std::int32_t load_quad(const std::uint8_t* p) {
  std::int32_t q;
  std::memcpy(&q, p, 4);
  return q;
}

struct Avx512VnniOps {
  using Vec = __m512i;

  static Vec zero() { return _mm512_setzero_si512(); }
  static Vec load(const void* p) { return _mm512_loadu_si512(p); }
  // The first n (< 64) bytes at p, the rest zero; bytes past n are not read (a masked load
  // does not fault on them).
  static Vec load_bytes(const void* p, std::size_t n) {
    return _mm512_maskz_loadu_epi8((__mmask64{1} << n) - 1, p);
  }
  static Vec add(Vec a, Vec b) { return _mm512_add_epi32(a, b); }
  // The 4 bytes at p in every dword.
  static Vec broadcast_quad(const std::uint8_t* p) { return _mm512_set1_epi32(load_quad(p)); }
  // The first n (1 to 16) dwords of v to out; nothing is written past them.
  static void store_dwords(std::int32_t* out, Vec v, std::size_t n) {
    if (n == 16)  // a plain store forwards to the loads that follow it, a masked one may not
      _mm512_storeu_si512(out, v);
    else
      _mm512_mask_storeu_epi32(out, first_lanes(n), v);
  }
  // acc + the sums of 4 products of unsigned bytes of u8 by signed bytes of s8, per dword.
  static Vec dpbusd(Vec acc, Vec u8, Vec s8) { return _mm512_dpbusd_epi32(acc, u8, s8); }
  static std::int32_t sum(Vec v) { return _mm512_reduce_add_epi32(v); }
  // Dword i: the byte x[col[i]], zero-extended, for 16 columns (reads 4 bytes at each).
  static Vec gather_bytes(const std::uint8_t* x, const std::uint16_t* col) {
    const __m512i idx =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(col)));
    return _mm512_and_si512(_mm512_i32gather_epi32(idx, x, 1), _mm512_set1_epi32(0xFF));
  }
  // Dword i: v[i] sign-extended, for 16 bytes.
  static Vec widen_s8(const std::int8_t* v) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
  }
  // Dwords 4L .. 4L+3: the 4 bytes at x + 4 * col[L] for L < n (1 to 4), zero for the rest;
  // each a masked broadcast from memory.
  static Vec repeat_quads(const std::uint8_t* x, const std::uint16_t* col, std::uint32_t n) {
    const auto quad = [x, col](std::uint32_t l) { return load_quad(x + 4 * std::size_t{col[l]}); };
    __m512i v = _mm512_maskz_set1_epi32(0x000F, quad(0));
    if (n > 1) v = _mm512_mask_set1_epi32(v, 0x00F0, quad(1));
    if (n > 2) v = _mm512_mask_set1_epi32(v, 0x0F00, quad(2));
    if (n > 3) v = _mm512_mask_set1_epi32(v, 0xF000, quad(3));
    return v;
  }
  // out[i] = the sum of dword i of the four 128-bit lanes.
  static void sum_lanes(Vec v, std::int32_t* out) {
    const __m128i s = _mm_add_epi32(
        _mm_add_epi32(_mm512_castsi512_si128(v), _mm512_extracti32x4_epi32(v, 1)),
        _mm_add_epi32(_mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), s);
  }
};

}  // namespace verdant::runtime::vnni
