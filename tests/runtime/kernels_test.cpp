// Every kernel table against the reference twins: random data, odd sizes (rows not a
// multiple of the 4-row block, sparse rows not a multiple of the 8-lane gather) and the
// saturation extremes of vpmaddubsw (x = 127 against w = -128 and 127). Each test runs once
// per compiled table (ggml's test-quantize-fns habit), so a new table is tested as it is
// listed; one this CPU lacks is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "emulated_vnni_table.hpp"
#include "kernel_tables.hpp"
#include "test_models.hpp"
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {
namespace {

// Integer kernels must equal their twin exactly. fp32 ones may sum in another order (8
// lanes, fused multiply-add): at most this much absolute error per accumulated product of
// values in [-1, 1].
constexpr float kMaxF32ErrorPerProduct = 1e-5f;
// Whole models: int8 layers are integer arithmetic, equal on every table; fp32 layers may
// differ by this much (absolute, on outputs of magnitude about 1), and an int8 layer after
// an fp32 one by the quantization steps such a difference can flip.
constexpr float kMaxF32ModelDifference = 1e-5f;
constexpr float kMaxMixedModelDifference = 0.05f;

// The compiled tables other than the reference, which the others are compared with, and the
// VNNI kernels on emulated instructions, which every CPU runs.
std::vector<const KernelTable*> tables_under_test() {
  std::vector<const KernelTable*> tables;
  for (const KernelTable* t : compiled_kernel_tables())
    if (t != &reference_kernels()) tables.push_back(t);
  tables.push_back(&testing::emulated_vnni_kernels());
  return tables;
}

class KernelTwins : public ::testing::TestWithParam<const KernelTable*> {
 protected:
  void SetUp() override {
    if (!GetParam()->cpu_supports()) GTEST_SKIP() << "skipped: no " << GetParam()->isa;
  }
  const KernelTable& table() const { return *GetParam(); }
  const KernelTable& reference() const { return reference_kernels(); }
};

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

TEST(Kernels, ActiveTableIsTheBestSupported) {
  const KernelTable& k = active_kernels();
  EXPECT_NE(k.gemv_s8, nullptr);
  const auto supported = supported_kernel_tables();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.back(), &reference_kernels());
  const char* forced = std::getenv("VERDANT_RUNTIME_ISA");
  if (forced == nullptr || find_kernels(forced) == nullptr) EXPECT_EQ(&k, supported.front());
  if (find_kernels("avx512_vnni") != nullptr)
    EXPECT_STREQ(supported.front()->isa, "avx512_vnni");
  else if (find_kernels("avx2") != nullptr)
    EXPECT_STREQ(supported.front()->isa, "avx2");
}

TEST(Kernels, SupportedTablesAreTheCompiledOnesThisCpuRuns) {
  std::vector<const KernelTable*> expected;
  for (const KernelTable* t : compiled_kernel_tables())
    if (t->cpu_supports()) expected.push_back(t);
  const auto supported = supported_kernel_tables();
  EXPECT_EQ(std::vector<const KernelTable*>(supported.begin(), supported.end()), expected);
  for (const KernelTable* t : supported) EXPECT_EQ(find_kernels(t->isa), t);
  EXPECT_EQ(find_kernels("no-such-isa"), nullptr);
  EXPECT_EQ(compiled_kernel_tables().back(), &reference_kernels());
}

// VERDANT_RUNTIME_ISA: a supported name forces that table; an unknown one (or one the CPU
// lacks) gives the best table and is flagged, for the one-line warning.
TEST(Kernels, RequestedIsaChoosesItsTableOrFallsBackFlagged) {
  const KernelTable* best = supported_kernel_tables().front();
  bool unknown = true;
  EXPECT_EQ(&choose_kernels(nullptr, &unknown), best);
  EXPECT_FALSE(unknown);
  EXPECT_EQ(&choose_kernels("", &unknown), best);
  EXPECT_FALSE(unknown);
  for (const KernelTable* t : supported_kernel_tables()) {
    EXPECT_EQ(&choose_kernels(t->isa, &unknown), t);
    EXPECT_FALSE(unknown);
  }
  EXPECT_EQ(&choose_kernels("avx9000", &unknown), best);
  EXPECT_TRUE(unknown);
  for (const KernelTable* t : compiled_kernel_tables())
    if (!t->cpu_supports()) {
      EXPECT_EQ(&choose_kernels(t->isa, &unknown), best) << t->isa;
      EXPECT_TRUE(unknown);
    }
}

TEST_P(KernelTwins, GemvS8MatchesReferenceOnOddSizes) {
  std::mt19937 g(1);
  for (DenseCase c : {DenseCase{1, 32}, DenseCase{3, 64}, DenseCase{4, 32}, DenseCase{5, 96},
                      DenseCase{7, 800}, DenseCase{13, 224}, DenseCase{300, 800}}) {
    const std::size_t stride = c.kp + 32;  // a row stride wider than kp must be honoured
    auto w = random_w(c.rows * stride, g);
    auto x = random_x(c.kp, g);
    std::vector<std::int32_t> ref(c.rows), got(c.rows);
    reference().gemv_s8(w.data(), stride, x.data(), c.kp, c.rows, ref.data());
    table().gemv_s8(w.data(), stride, x.data(), c.kp, c.rows, got.data());
    EXPECT_EQ(ref, got) << "rows " << c.rows << " kp " << c.kp;
  }
}

TEST_P(KernelTwins, GemvS8ExactAtSaturationExtremes) {
  const std::size_t kp = 96, rows = 6;
  std::vector<std::uint8_t> x(kp + 64, 127);
  std::vector<std::int8_t> w(rows * kp);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < kp; ++k) w[r * kp + k] = (r % 2 == 0) ? -128 : 127;
  std::vector<std::int32_t> ref(rows), got(rows);
  reference().gemv_s8(w.data(), kp, x.data(), kp, rows, ref.data());
  table().gemv_s8(w.data(), kp, x.data(), kp, rows, got.data());
  EXPECT_EQ(ref, got);
  EXPECT_EQ(got[0], static_cast<std::int32_t>(kp) * 127 * -128);
  EXPECT_EQ(got[1], static_cast<std::int32_t>(kp) * 127 * 127);
}

// A table's own layout for dense rows: packed once, then the same sums as the rows; nothing
// written past `rows` (each partial 16-row block ends in a masked store).
TEST_P(KernelTwins, PackedGemvS8MatchesReference) {
  if (table().pack_s8 == nullptr)
    GTEST_SKIP() << "skipped: " << table().isa << " has no packed layout";
  ASSERT_NE(table().gemv_s8_packed, nullptr);
  ASSERT_GT(table().pack_s8_rows, 0u);
  std::mt19937 g(3);
  constexpr std::int32_t kSentinel = 0x5A5A5A5A;
  for (DenseCase c : {DenseCase{1, 32}, DenseCase{5, 64}, DenseCase{16, 32}, DenseCase{17, 96},
                      DenseCase{20, 32}, DenseCase{33, 224}, DenseCase{50, 512}, DenseCase{64, 800},
                      DenseCase{65, 64}, DenseCase{300, 800}}) {
    auto w = random_w(c.rows * c.kp, g);
    auto x = random_x(c.kp, g);
    const std::size_t block = table().pack_s8_rows;
    std::vector<std::int8_t> packed((c.rows + block - 1) / block * block * c.kp);
    table().pack_s8(w.data(), c.kp, c.rows, packed.data());
    std::vector<std::int32_t> ref(c.rows), got(c.rows + 16, kSentinel);
    reference().gemv_s8(w.data(), c.kp, x.data(), c.kp, c.rows, ref.data());
    table().gemv_s8_packed(packed.data(), x.data(), c.kp, c.rows, got.data());
    EXPECT_EQ(ref, std::vector<std::int32_t>(got.begin(), got.begin() + c.rows))
        << "rows " << c.rows << " kp " << c.kp;
    for (std::size_t i = c.rows; i < got.size(); ++i)
      EXPECT_EQ(got[i], kSentinel) << "past row " << i;
  }
  // Saturation extremes: x = 127 against w = -128 and 127 over a long row.
  const std::size_t kp = 800, rows = 18;
  std::vector<std::uint8_t> x(kp + 64, 127);
  std::vector<std::int8_t> w(rows * kp);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < kp; ++k) w[r * kp + k] = (r % 2 == 0) ? -128 : 127;
  std::vector<std::int8_t> packed(32 * kp);
  table().pack_s8(w.data(), kp, rows, packed.data());
  std::vector<std::int32_t> got(rows);
  table().gemv_s8_packed(packed.data(), x.data(), kp, rows, got.data());
  for (std::size_t r = 0; r < rows; ++r)
    EXPECT_EQ(got[r], static_cast<std::int32_t>(kp) * 127 * (r % 2 == 0 ? -128 : 127)) << r;
}

TEST_P(KernelTwins, GemvF32MatchesReference) {
  std::mt19937 g(2);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (DenseCase c : {DenseCase{1, 8}, DenseCase{3, 16}, DenseCase{5, 792}, DenseCase{11, 24}}) {
    std::vector<float> w(c.rows * c.kp), x(c.kp);
    for (float& v : w) v = d(g);
    for (float& v : x) v = d(g);
    std::vector<float> ref(c.rows), got(c.rows);
    reference().gemv_f32(w.data(), c.kp, x.data(), c.kp, c.rows, ref.data());
    table().gemv_f32(w.data(), c.kp, x.data(), c.kp, c.rows, got.data());
    for (std::size_t r = 0; r < c.rows; ++r)
      EXPECT_NEAR(ref[r], got[r], kMaxF32ErrorPerProduct * static_cast<float>(c.kp)) << "row " << r;
  }
}

TEST_P(KernelTwins, RequantMatchesReferenceIncludingExtremes) {
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
      reference().requant_u8(acc.data(), bias.data(), mult.data(), shift.data(), n, zp, lo,
                             ref.data());
      table().requant_u8(acc.data(), bias.data(), mult.data(), shift.data(), n, zp, lo, got.data());
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

TEST_P(KernelTwins, SpmvS8MatchesReference) {
  std::mt19937 g(3);
  for (double density : {0.0, 0.03, 0.1, 0.37, 1.0})
    for (std::size_t k : {1u, 7u, 9u, 33u, 784u}) {
      const std::size_t rows = 11;
      Csr m = random_csr(rows, k, density, g, false);
      auto x = random_x(k, g);
      std::vector<std::int32_t> ref(rows), got(rows);
      reference().spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(), ref.data());
      table().spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(), got.data());
      EXPECT_EQ(ref, got) << "density " << density << " k " << k;
    }
}

TEST_P(KernelTwins, SpmvS8ExactAtExtremes) {
  std::mt19937 g(4);
  const std::size_t rows = 5, k = 1000;
  Csr m = random_csr(rows, k, 0.5, g, true);
  std::vector<std::uint8_t> x(k + 64, 127);
  std::vector<std::int32_t> ref(rows), got(rows);
  reference().spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(), ref.data());
  table().spmv_s8(m.row_ptr.data(), m.col.data(), m.val.data(), rows, x.data(), got.data());
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
TEST_P(KernelTwins, Bsr4x4MatchesReference) {
  std::mt19937 g(5);
  for (double density : {0.0, 0.05, 0.1, 0.4, 1.0})
    for (std::size_t rows : {1u, 4u, 6u, 13u, 300u})
      for (std::size_t k : {1u, 7u, 16u, 25u, 784u}) {
        Bsr m = random_bsr(rows, k, density, g, false);
        auto x = random_x(k, g);
        const std::size_t brows = (rows + 3) / 4;
        std::vector<std::int32_t> ref(4 * brows), got(4 * brows);
        reference().bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), brows, x.data(),
                              ref.data());
        table().bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), brows, x.data(),
                          got.data());
        EXPECT_EQ(ref, got) << "density " << density << " rows " << rows << " k " << k;
      }
}

TEST_P(KernelTwins, Bsr4x4ExactAtExtremes) {
  std::mt19937 g(6);
  const std::size_t rows = 8, k = 1000;
  Bsr m = random_bsr(rows, k, 1.0, g, true);
  std::vector<std::uint8_t> x(k + 64, 127);
  std::vector<std::int32_t> ref(rows), got(rows);
  reference().bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), rows / 4, x.data(),
                        ref.data());
  table().bsr4x4_s8(m.row_ptr.data(), m.col.data(), m.blocks.data(), rows / 4, x.data(),
                    got.data());
  EXPECT_EQ(ref, got);
  EXPECT_EQ(got[0], static_cast<std::int32_t>(k) * 127 * -128);  // row 0: every weight -128
}

// Rounding half up, clamping at both ends, NaN and infinities, and lengths that are not a
// multiple of the 8-lane vector.
TEST_P(KernelTwins, QuantizeU8MatchesReference) {
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
      reference().quantize_u8(x.data(), n, 20.f, zp, ref.data());
      table().quantize_u8(x.data(), n, 20.f, zp, got.data());
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

// Every test model (test_models.hpp) runs on the table as on the reference table. Sparse
// layers may take different paths (the tables' density thresholds differ), with the same
// results.
TEST_P(KernelTwins, EveryTestModelMatchesTheReferenceTable) {
  for (const testing::TestModel& tm : testing::every_test_model()) {
    SCOPED_TRACE(tm.name);
    std::string err;
    const auto bytes = write_vdm(tm.spec, &err);
    ASSERT_FALSE(bytes.empty()) << err;
    auto want = Model::load_buffer(bytes.data(), bytes.size(), &err, {.kernels = &reference()});
    ASSERT_NE(want, nullptr) << err;
    auto got = Model::load_buffer(bytes.data(), bytes.size(), &err, {.kernels = &table()});
    ASSERT_NE(got, nullptr) << err;
    EXPECT_STREQ(got->isa(), table().isa);
    bool any_int8 = false, any_f32 = false;
    for (const LayerSpec& l : tm.spec.layers) {
      any_int8 |= l.encoding != vdm::Encoding::f32 && l.encoding != vdm::Encoding::none;
      any_f32 |= l.encoding == vdm::Encoding::f32;
    }
    const float tolerance = !any_f32   ? 0.f
                            : any_int8 ? kMaxMixedModelDifference
                                       : kMaxF32ModelDifference;
    for (const auto& in : testing::random_inputs(16, got->input_size())) {
      std::vector<float> a(want->output_size()), b(got->output_size());
      ASSERT_EQ(want->run(in.data(), in.size(), a.data(), a.size()), RunStatus::ok);
      ASSERT_EQ(got->run(in.data(), in.size(), b.data(), b.size()), RunStatus::ok);
      if (!any_f32) {
        EXPECT_EQ(a, b);
        continue;
      }
      for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tolerance) << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTable, KernelTwins, ::testing::ValuesIn(tables_under_test()),
                         [](const ::testing::TestParamInfo<const KernelTable*>& info) {
                           return std::string(info.param->isa);
                         });
// A build with the reference table only has no twins to compare.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KernelTwins);

}  // namespace
}  // namespace verdant::runtime
