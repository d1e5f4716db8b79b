// Every SIMD kernel against its reference twin: random data, odd sizes (rows not a multiple
// of the 4-row block, sparse rows not a multiple of the 8-lane gather) and the saturation
// extremes of vpmaddubsw (x = 127 against w = -128 and 127).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {
namespace {

const KernelTable* simd() {
  return avx2_kernels();
}

struct DenseCase {
  std::size_t rows, kp;
};

std::vector<std::uint8_t> random_x(std::size_t n, std::mt19937& g) {
  std::uniform_int_distribution<int> d(0, 127);
  std::vector<std::uint8_t> x(n + 64, 0);  // slack like the runtime's arena
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<std::uint8_t>(d(g));
  return x;
}

std::vector<std::int8_t> random_w(std::size_t n, std::mt19937& g) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::int8_t> w(n);
  for (auto& v : w) v = static_cast<std::int8_t>(d(g));
  return w;
}

TEST(Kernels, ActiveTableIsChosen) {
  const KernelTable& k = active_kernels();
  EXPECT_NE(k.gemv_s8, nullptr);
  if (simd() != nullptr) EXPECT_STREQ(k.isa, "avx2");
}

TEST(Kernels, GemvS8MatchesReferenceOnOddSizes) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(1);
  for (DenseCase c : {DenseCase{1, 32}, DenseCase{3, 64}, DenseCase{4, 32}, DenseCase{5, 96},
                      DenseCase{7, 800}, DenseCase{13, 224}, DenseCase{300, 800}}) {
    const std::size_t stride = c.kp + 32;  // a row stride wider than kp must be honoured
    auto w = random_w(c.rows * stride, g);
    auto x = random_x(c.kp, g);
    std::vector<std::int32_t> ref(c.rows), got(c.rows);
    reference_kernels().gemv_s8(w.data(), stride, x.data(), c.kp, c.rows, ref.data());
    simd()->gemv_s8(w.data(), stride, x.data(), c.kp, c.rows, got.data());
    EXPECT_EQ(ref, got) << "rows " << c.rows << " kp " << c.kp;
  }
}

TEST(Kernels, GemvS8ExactAtSaturationExtremes) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  const std::size_t kp = 96, rows = 6;
  std::vector<std::uint8_t> x(kp + 64, 127);
  std::vector<std::int8_t> w(rows * kp);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < kp; ++k) w[r * kp + k] = (r % 2 == 0) ? -128 : 127;
  std::vector<std::int32_t> ref(rows), got(rows);
  reference_kernels().gemv_s8(w.data(), kp, x.data(), kp, rows, ref.data());
  simd()->gemv_s8(w.data(), kp, x.data(), kp, rows, got.data());
  EXPECT_EQ(ref, got);
  EXPECT_EQ(got[0], static_cast<std::int32_t>(kp) * 127 * -128);
  EXPECT_EQ(got[1], static_cast<std::int32_t>(kp) * 127 * 127);
}

TEST(Kernels, GemvF32MatchesReference) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(2);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (DenseCase c : {DenseCase{1, 8}, DenseCase{3, 16}, DenseCase{5, 792}, DenseCase{11, 24}}) {
    std::vector<float> w(c.rows * c.kp), x(c.kp);
    for (float& v : w) v = d(g);
    for (float& v : x) v = d(g);
    std::vector<float> ref(c.rows), got(c.rows);
    reference_kernels().gemv_f32(w.data(), c.kp, x.data(), c.kp, c.rows, ref.data());
    simd()->gemv_f32(w.data(), c.kp, x.data(), c.kp, c.rows, got.data());
    for (std::size_t r = 0; r < c.rows; ++r)
      EXPECT_NEAR(ref[r], got[r], 1e-5f * static_cast<float>(c.kp)) << "row " << r;
  }
}

TEST(Kernels, RequantMatchesReferenceIncludingExtremes) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(5);
  std::uniform_int_distribution<std::int32_t> acc_d(-(1 << 24), 1 << 24),
      mult_d(1 << 30, 0x7FFFFFFF), shift_d(0, 31), zp_d(0, 127);
  for (std::size_t n : {1u, 7u, 8u, 9u, 50u, 501u}) {
    std::vector<std::int32_t> acc(n), bias(n), mult(n), shift(n);
    for (std::size_t i = 0; i < n; ++i) {
      acc[i] = acc_d(g);
      bias[i] = acc_d(g);
      mult[i] = mult_d(g);
      shift[i] = shift_d(g);
    }
    // Saturation extremes: largest accumulators, zero multiplier, shifts 0 and 31.
    acc[0] = 0x7FFFFFFF;
    bias[0] = 0;
    shift[0] = 0;
    if (n > 2) acc[1] = -0x7FFFFFFF, bias[1] = 0, shift[1] = 0, mult[2] = 0;
    const std::int32_t zp = zp_d(g);
    for (std::int32_t lo : {0, zp}) {
      std::vector<std::uint8_t> ref(n), got(n);
      reference_kernels().requant_u8(acc.data(), bias.data(), mult.data(), shift.data(), n, zp, lo,
                                     ref.data());
      simd()->requant_u8(acc.data(), bias.data(), mult.data(), shift.data(), n, zp, lo, got.data());
      EXPECT_EQ(ref, got) << "n " << n;
      EXPECT_EQ(ref[0], 127);  // clamped high
    }
  }
}

TEST(Kernels, RequantReferenceRoundsHalfUp) {
  // mult = 2^30 is 0.5 in Q31; shift 1 halves again: v * 0.25 rounded.
  const std::int32_t acc[4] = {2, 6, -2, 400}, bias[4] = {0, 0, 0, 4},
                     mult[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, shift[4] = {1, 1, 1, 1};
  std::uint8_t out[4];
  reference_kernels().requant_u8(acc, bias, mult, shift, 4, 10, 0, out);
  EXPECT_EQ(out[0], 11);   // 0.5 -> 1
  EXPECT_EQ(out[1], 12);   // 1.5 -> 2
  EXPECT_EQ(out[2], 10);   // -0.5 -> 0
  EXPECT_EQ(out[3], 111);  // 101
}

struct Csr {
  std::vector<std::uint32_t> row_ptr{0};
  std::vector<std::uint16_t> col;
  std::vector<std::int8_t> val;
};

Csr random_csr(std::size_t rows, std::size_t k, double density, std::mt19937& g, bool extreme) {
  Csr m;
  std::bernoulli_distribution keep(density);
  std::uniform_int_distribution<int> d(-128, 127);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < k; ++i)
      if (keep(g)) {
        m.col.push_back(static_cast<std::uint16_t>(i));
        m.val.push_back(static_cast<std::int8_t>(extreme ? (r % 2 ? 127 : -128) : d(g)));
      }
    m.row_ptr.push_back(static_cast<std::uint32_t>(m.col.size()));
  }
  return m;
}

TEST(Kernels, SpmvS8MatchesReference) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(3);
  for (double density : {0.0, 0.03, 0.1, 0.37, 1.0})
    for (std::size_t k : {1u, 7u, 9u, 33u, 784u}) {
      const std::size_t rows = 11;
      Csr m = random_csr(rows, k, density, g, false);
      auto x = random_x(k, g);
      std::vector<std::int32_t> ref(rows), got(rows);
      reference_kernels().spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(),
                                  ref.data());
      simd()->spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(), got.data());
      EXPECT_EQ(ref, got) << "density " << density << " k " << k;
    }
}

TEST(Kernels, SpmvS8ExactAtExtremes) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(4);
  const std::size_t rows = 5, k = 1000;
  Csr m = random_csr(rows, k, 0.5, g, true);
  std::vector<std::uint8_t> x(k + 64, 127);
  std::vector<std::int32_t> ref(rows), got(rows);
  reference_kernels().spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(),
                              ref.data());
  simd()->spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(), got.data());
  EXPECT_EQ(ref, got);
  EXPECT_EQ(got[0], static_cast<std::int32_t>(m.row_ptr[1]) * 127 * -128);
}

// A random 4x4 block-sparse matrix of `rows` x `k` (entries outside the matrix zero, as the
// format requires) keeping each block with probability `density`.
struct Bsr {
  std::vector<std::uint32_t> row_ptr{0};
  std::vector<std::uint16_t> col;
  std::vector<std::int8_t> blocks;
};

Bsr random_bsr(std::size_t rows, std::size_t k, double density, std::mt19937& g, bool extreme) {
  std::bernoulli_distribution keep(density);
  std::uniform_int_distribution<int> d(-128, 127);
  Bsr m;
  for (std::size_t b = 0; b < (rows + 3) / 4; ++b) {
    for (std::size_t c = 0; c < (k + 3) / 4; ++c) {
      if (!keep(g)) continue;
      m.col.push_back(static_cast<std::uint16_t>(c));
      for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 4; ++j) {
          const bool inside = b * 4 + i < rows && c * 4 + j < k;
          m.blocks.push_back(static_cast<std::int8_t>(!inside   ? 0
                                                      : extreme ? ((b * 4 + i) % 2 ? 127 : -128)
                                                                : d(g)));
        }
    }
    m.row_ptr.push_back(static_cast<std::uint32_t>(m.col.size()));
  }
  return m;
}

// Block rows with 0, 1, 2, 3 and many blocks exercise the pair loop, the odd block and the
// empty row; ragged rows and columns the zero padding.
TEST(Kernels, Bsr4x4MatchesReference) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(5);
  for (double density : {0.0, 0.05, 0.1, 0.4, 1.0})
    for (std::size_t rows : {1u, 4u, 6u, 13u, 300u})
      for (std::size_t k : {1u, 7u, 16u, 25u, 784u}) {
        Bsr m = random_bsr(rows, k, density, g, false);
        auto x = random_x(k, g);
        const std::size_t brows = (rows + 3) / 4;
        std::vector<std::int32_t> ref(4 * brows), got(4 * brows);
        reference_kernels().bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), brows,
                                      x.data(), ref.data());
        simd()->bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), brows, x.data(),
                          got.data());
        EXPECT_EQ(ref, got) << "density " << density << " rows " << rows << " k " << k;
      }
}

TEST(Kernels, Bsr4x4ExactAtExtremes) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(6);
  const std::size_t rows = 8, k = 1000;
  Bsr m = random_bsr(rows, k, 1.0, g, true);
  std::vector<std::uint8_t> x(k + 64, 127);
  std::vector<std::int32_t> ref(rows), got(rows);
  reference_kernels().bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), rows / 4, x.data(),
                                ref.data());
  simd()->bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), rows / 4, x.data(),
                    got.data());
  EXPECT_EQ(ref, got);
  EXPECT_EQ(got[0], static_cast<std::int32_t>(k) * 127 * -128);  // row 0: every weight -128
}

// Rounding half up, clamping at both ends, NaN and infinities, and lengths that are not a
// multiple of the 8-lane vector.
TEST(Kernels, QuantizeU8MatchesReference) {
  if (simd() == nullptr) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 g(7);
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  for (std::size_t n : {1u, 7u, 8u, 9u, 784u, 1001u}) {
    std::vector<float> x(n);
    for (float& v : x) v = d(g);
    if (n > 8) {
      x[0] = std::numeric_limits<float>::quiet_NaN();
      x[1] = std::numeric_limits<float>::infinity();
      x[2] = -std::numeric_limits<float>::infinity();
      x[3] = 0.25f;  // lands exactly on a half step below
      x[4] = 1e30f;
    }
    for (std::int32_t zp : {0, 37, 127}) {
      std::vector<std::uint8_t> ref(n), got(n);
      reference_kernels().quantize_u8(x.data(), n, 20.f, zp, ref.data());
      simd()->quantize_u8(x.data(), n, 20.f, zp, got.data());
      EXPECT_EQ(ref, got) << "n " << n << " zp " << zp;
      if (n > 8) {
        EXPECT_EQ(got[0], 0);    // NaN
        EXPECT_EQ(got[1], 127);  // +inf saturates
        EXPECT_EQ(got[2], 0);
        EXPECT_EQ(got[3], std::min(127, zp + 5));  // 0.25 * 20 = 5 exactly
        EXPECT_EQ(got[4], 127);
      }
    }
  }
}

}  // namespace
}  // namespace verdant::runtime
