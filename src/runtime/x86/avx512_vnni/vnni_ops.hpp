#pragma once
// The vector operations int8_kernels.hpp is written against, as AVX-512 (F, BW) and VNNI
// instructions. Included only by kernels_avx512_vnni.cpp, which is compiled with those flags.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace verdant::runtime::vnni {

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
  static Vec broadcast_quad(const std::uint8_t* p) {
    std::int32_t q;
    std::memcpy(&q, p, 4);
    return _mm512_set1_epi32(q);
  }
  // The first n (1 to 16) dwords of v to out; nothing is written past them.
  static void store_dwords(std::int32_t* out, Vec v, std::size_t n) {
    if (n == 16)  // a plain store forwards to the loads that follow it, a masked one may not
      _mm512_storeu_si512(out, v);
    else
      _mm512_mask_storeu_epi32(out, static_cast<__mmask16>(0xFFFFu >> (16 - n)), v);
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
    const auto quad = [x, col](std::uint32_t l) {
      std::int32_t q;
      std::memcpy(&q, x + 4 * std::size_t{col[l]}, 4);
      return q;
    };
    __m512i v = _mm512_maskz_set1_epi32(0x000F, quad(0));
    if (n > 1) v = _mm512_mask_set1_epi32(v, 0x00F0, quad(1));
    if (n > 2) v = _mm512_mask_set1_epi32(v, 0x0F00, quad(2));
    if (n > 3) v = _mm512_mask_set1_epi32(v, 0xF000, quad(3));
    return v;
  }
  // out[i] = the sum of the dwords of a[i], for i < 8. The vectors are folded in pairs
  // (512 -> 256 -> 128 bits), then a 4x4 transposition sums within 128-bit lanes: 25
  // instructions for the eight sums, against about 10 each one by one.
  static void sum8(const Vec* a, std::int32_t* out) {
    // Lane q of fold(p, r): p's lanes 0+2 and 1+3, then r's.
    const auto fold256 = [](Vec p, Vec r) {
      return _mm512_add_epi32(_mm512_shuffle_i64x2(p, r, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_i64x2(p, r, _MM_SHUFFLE(3, 2, 3, 2)));
    };
    // Lane q: the 4-dword partial sums of the q-th vector of the four folded into p and r.
    const auto fold128 = [](Vec p, Vec r) {
      return _mm512_add_epi32(_mm512_shuffle_i64x2(p, r, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_i64x2(p, r, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    const Vec lo = fold128(fold256(a[0], a[1]), fold256(a[2], a[3]));  // rows 0-3, lane = row
    const Vec hi = fold128(fold256(a[4], a[5]), fold256(a[6], a[7]));  // rows 4-7
    const Vec d = _mm512_add_epi32(_mm512_unpacklo_epi32(lo, hi), _mm512_unpackhi_epi32(lo, hi));
    // Lane q, dword 0: row q's sum; dword 1: row 4 + q's.
    const Vec e = _mm512_add_epi32(d, _mm512_shuffle_epi32(d, _MM_PERM_BADC));
    const Vec order = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                        _mm512_castsi512_si256(_mm512_permutexvar_epi32(order, e)));
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
