#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "verdant/core/threading.hpp"
#include "verdant/kernels/gemm.hpp"

namespace verdant::kernels {
namespace {

std::vector<float> random_vec(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct GemmCase {
  bool ta, tb;
  std::int64_t m, n, k;
  float alpha, beta;
};

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, MatchesReference) {
  const auto c = GetParam();
  std::mt19937 rng(42);
  // Padded leading dimensions check that strides are honoured.
  const std::int64_t lda = (c.ta ? c.m : c.k) + 3, ldb = (c.tb ? c.k : c.n) + 2, ldc = c.n + 1;
  auto a = random_vec((c.ta ? c.k : c.m) * lda, rng);
  auto b = random_vec((c.tb ? c.n : c.k) * ldb, rng);
  auto c0 = random_vec(c.m * ldc, rng);
  auto ref = c0;
  sgemm_reference(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta,
                  ref.data(), ldc);
  // Both backends, on one thread and split over two (outside a parallel region).
  const int saved_threads = num_threads();
  for (auto [name, gemm] : {std::pair{"oneDNN", &sgemm}, std::pair{"OpenBLAS", &sgemm_openblas}})
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      auto ours = c0;
      gemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta, ours.data(),
           ldc);
      // Named tolerance: float32 accumulation over k terms of magnitude <= 1.
      const float tol = 1e-5f * static_cast<float>(c.k) + 1e-5f;
      for (std::int64_t i = 0; i < c.m; ++i)
        for (std::int64_t j = 0; j < c.n; ++j)
          ASSERT_NEAR(ours[i * ldc + j], ref[i * ldc + j], tol)
              << name << " " << threads << " threads, at " << i << "," << j;
      // Padding columns of C are untouched.
      for (std::int64_t i = 0; i < c.m; ++i)
        EXPECT_EQ(ours[i * ldc + c.n], c0[i * ldc + c.n]) << name;
    }
  set_num_threads(saved_threads);
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmTest,
                         ::testing::Values(GemmCase{false, false, 7, 5, 9, 1.f, 0.f},
                                           GemmCase{true, false, 8, 6, 13, 0.5f, 1.f},
                                           GemmCase{false, true, 64, 30, 78, 1.f, 0.f},
                                           GemmCase{true, true, 5, 11, 3, -2.f, 0.25f},
                                           GemmCase{false, false, 65, 33, 129, 1.f, 1.f},
                                           GemmCase{false, false, 4, 4, 0, 1.f, 0.5f},
                                           GemmCase{true, true, 40, 200, 50, 1.f, 0.f},
                                           GemmCase{true, false, 300, 64, 100, 1.f, 1.f}));

TEST(Gemm, BetaZeroIgnoresNaNInOutput) {
  for (auto gemm : {&sgemm, &sgemm_openblas}) {
    std::vector<float> a{1, 2, 3, 4}, b{1, 0, 0, 1}, c(4, NAN);
    gemm(false, false, 2, 2, 2, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{1, 2, 3, 4}));
  }
}

}  // namespace
}  // namespace verdant::kernels
