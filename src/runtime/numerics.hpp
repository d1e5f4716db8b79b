#pragma once
// Internal to libverdant_runtime: number helpers the loader and the writer share (and the
// tests call): the fixed-point multiplier of integer requantization, and the one wording
// for a NaN or infinity among stored floats.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace verdant::runtime {

// real = mult * 2^-31 * 2^-shift, mult a Q31 integer in [2^30, 2^31) and shift in 0..31,
// the pair requant_u8 (kernels.hpp) multiplies by. mult = shift = 0 for a multiplier too
// small to move any output off the zero point.
struct QuantizedMultiplier {
  std::int32_t mult = 0;
  std::int32_t shift = 0;
};

// `real` in [0, 1) (the loader rejects requantization multipliers >= 1), to within 2^-31
// relative (TFLite's QuantizeMultiplier without left shifts). Values that round up to 1 are
// kept just below it, as 2^31 - 1 with shift 0.
inline QuantizedMultiplier quantize_multiplier(double real) {
  if (!(real > 0.0)) return {};
  int exp = 0;
  const double q = std::frexp(real, &exp);  // real = q * 2^exp, q in [0.5, 1)
  auto mult = static_cast<std::int64_t>(std::llround(q * (1ll << 31)));
  if (mult == (1ll << 31)) {  // q rounded up to 1: the next power of two
    mult /= 2;
    ++exp;
  }
  if (exp > 0) return {0x7FFFFFFF, 0};
  if (-exp > 31) return {};
  return {static_cast<std::int32_t>(mult), -exp};
}

// "" when v[0, n) are all finite, else `what` and the first element that is not, e.g.
// "weight tensor element 17 is NaN".
std::string describe_non_finite(const char* what, const float* v, std::size_t n);

}  // namespace verdant::runtime
