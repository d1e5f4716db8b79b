// The loader's number helpers against hand-computed values: the Q31 requantization
// multiplier (known pairs, values near 1 and near 0, round-trip accuracy) and the wording
// for non-finite floats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "numerics.hpp"
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {
namespace {

constexpr std::int32_t kQ30 = std::int32_t{1} << 30;  // 0.5 in Q31
constexpr std::int32_t kQ31Max = 0x7FFFFFFF;

void expect_multiplier(double real, std::int32_t mult, std::int32_t shift) {
  const QuantizedMultiplier q = quantize_multiplier(real);
  EXPECT_EQ(q.mult, mult) << "real " << real;
  EXPECT_EQ(q.shift, shift) << "real " << real;
}

TEST(QuantizeMultiplier, PowersOfTwoAndSimpleFractions) {
  expect_multiplier(0.5, kQ30, 0);
  expect_multiplier(0.25, kQ30, 1);
  expect_multiplier(0.125, kQ30, 2);
  expect_multiplier(0.75, 3 * (kQ30 / 2), 0);   // 0.75 * 2^31
  expect_multiplier(0.375, 3 * (kQ30 / 2), 1);  // 0.75 * 2^-1
  expect_multiplier(0.1, 1717986918, 3);        // round(0.8 * 2^31), 0.8 * 2^-3
  expect_multiplier(std::ldexp(1.0, -31), kQ30, 30);
  expect_multiplier(std::ldexp(1.0, -32), kQ30, 31);  // the smallest shift the kernels take
}

// Below 1 but rounding up to it: kept just below (the kernels take right shifts only).
TEST(QuantizeMultiplier, ValuesNearOneStayBelowIt) {
  expect_multiplier(1.0 - std::ldexp(1.0, -20), kQ31Max - (1 << 11) + 1, 0);
  expect_multiplier(1.0 - std::ldexp(1.0, -31), kQ31Max, 0);
  expect_multiplier(1.0 - std::ldexp(1.0, -40), kQ31Max, 0);
  expect_multiplier(std::nextafter(1.0, 0.0), kQ31Max, 0);
}

TEST(QuantizeMultiplier, TinyValuesBecomeZeroOrTheSmallestStep) {
  expect_multiplier(std::ldexp(1.0, -33), 0, 0);
  expect_multiplier(1e-12, 0, 0);
  expect_multiplier(0.0, 0, 0);
  expect_multiplier(-0.5, 0, 0);
  expect_multiplier(std::numeric_limits<double>::quiet_NaN(), 0, 0);
  // Just below 2^-32, rounding up to it: the next power of two, shift 31.
  expect_multiplier(std::ldexp(1.0 - std::ldexp(1.0, -40), -32), kQ30, 31);
}

// mult * 2^-31 * 2^-shift is within 2^-31 relative of the real multiplier, over the whole
// range the kernels represent.
TEST(QuantizeMultiplier, RoundTripsWithin2ToTheMinus31Relative) {
  std::mt19937_64 g(11);
  std::uniform_real_distribution<double> log2_d(-32.0, 0.0);
  for (int i = 0; i < 100000; ++i) {
    const double real = std::exp2(log2_d(g));
    if (!(real < 1.0)) continue;
    const QuantizedMultiplier q = quantize_multiplier(real);
    ASSERT_GE(q.mult, kQ30) << real;
    ASSERT_LE(q.shift, 31) << real;
    ASSERT_GE(q.shift, 0) << real;
    const double back = std::ldexp(static_cast<double>(q.mult), -31 - q.shift);  // exact
    ASSERT_LE(std::abs(back - real), std::ldexp(real, -31)) << real;
  }
}

// Through the requantization kernel: within one step of round(acc * real) (the kernel
// rounds once, in fixed point).
TEST(QuantizeMultiplier, DrivesRequantizationToTheRealProduct) {
  std::mt19937 g(12);
  std::uniform_int_distribution<std::int32_t> acc_d(-(1 << 20), 1 << 20);
  std::uniform_real_distribution<double> log2_d(-20.0, -0.01);
  for (int i = 0; i < 2000; ++i) {
    const double real = std::exp2(log2_d(g));
    const QuantizedMultiplier q = quantize_multiplier(real);
    const std::int32_t acc = acc_d(g), bias = 0, zp = 60;
    std::uint8_t out = 0;
    reference_kernels().requant_u8(&acc, &bias, &q.mult, &q.shift, 1, zp, 0, &out);
    const double expected = std::clamp(zp + std::round(acc * real), 0.0, 127.0);
    EXPECT_LE(std::abs(out - expected), 1.0) << "acc " << acc << " real " << real;
  }
}

TEST(DescribeNonFinite, NamesTheFirstBadElement) {
  const float inf = std::numeric_limits<float>::infinity();
  const float good[3] = {0.f, -1.5f, 3e38f};
  EXPECT_EQ(describe_non_finite("weight", good, 3), "");
  EXPECT_EQ(describe_non_finite("weight", nullptr, 0), "");
  const float nan_at_2[4] = {1.f, 2.f, std::nanf(""), inf};
  EXPECT_EQ(describe_non_finite("weight tensor", nan_at_2, 4), "weight tensor element 2 is NaN");
  const float infs[2] = {-inf, inf};
  EXPECT_EQ(describe_non_finite("bias", infs, 2), "bias element 0 is -infinity");
  EXPECT_EQ(describe_non_finite("bias", infs + 1, 1), "bias element 0 is +infinity");
}

}  // namespace
}  // namespace verdant::runtime
