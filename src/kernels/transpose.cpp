// The transposition of simd.hpp through 8x8 register blocks, and the words for the clone in use.
#include <algorithm>
#include <string>

#include "simd.hpp"
#include "verdant/kernels/isa.hpp"

namespace verdant::kernels::detail {
namespace {

// The eight rows r[0..7] become the eight columns, in three rounds of two-input shuffles
// (the patterns of unpcklps/unpckhps, shufps and vperm2f128).
inline void transpose8x8(v8* r) {
  v8 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 2; ++i) {
      u[4 * h + 2 * i] =
          __builtin_shufflevector(t[4 * h + i], t[4 * h + i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[4 * h + 2 * i + 1] =
          __builtin_shufflevector(t[4 * h + i], t[4 * h + i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

}  // namespace

VERDANT_CLONES
void transpose(const float* in, std::int64_t rows, std::int64_t cols, std::int64_t ld_in,
               float* out, std::int64_t ld_out) {
  constexpr std::int64_t T = 32;  // tiles that keep both sides in cache
  for (std::int64_t r0 = 0; r0 < rows; r0 += T)
    for (std::int64_t c0 = 0; c0 < cols; c0 += T) {
      const std::int64_t r1 = std::min(rows, r0 + T), c1 = std::min(cols, c0 + T);
      std::int64_t r = r0;
      for (; r + kLanes <= r1; r += kLanes) {
        std::int64_t c = c0;
        for (; c + kLanes <= c1; c += kLanes) {
          v8 block[kLanes];
          for (std::int64_t i = 0; i < kLanes; ++i)
            block[i] = VERDANT_LOAD(in + (r + i) * ld_in + c);
          transpose8x8(block);
          for (std::int64_t i = 0; i < kLanes; ++i)
            VERDANT_STORE(out + (c + i) * ld_out + r, block[i]);
        }
        for (std::int64_t i = r; i < r + kLanes; ++i)
          for (std::int64_t k = c; k < c1; ++k) out[k * ld_out + i] = in[i * ld_in + k];
      }
      for (; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c) out[c * ld_out + r] = in[r * ld_in + c];
    }
}

}  // namespace verdant::kernels::detail

namespace verdant::kernels {

std::string own_kernels_description() {
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
  // The clone the ifunc resolver picks: x86-64-v3 where the CPU has all of its features.
#if defined(__clang__)  // clang knows the features, not the level
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  const bool v3 = __builtin_cpu_supports("x86-64-v3");
#endif
  if (v3) return "own kernels (sparse, direct conv, im2col per image) x86-64-v3 (AVX2, FMA)";
  return "own kernels (sparse, direct conv, im2col per image) x86-64 baseline (SSE2; this CPU "
         "lacks x86-64-v3)";
#else
  return "own kernels (sparse, direct conv, im2col per image) portable build";
#endif
}

}  // namespace verdant::kernels
