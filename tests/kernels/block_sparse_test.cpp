// The block-sparse products against the dense reference GEMM on the same weights (zero
// outside the blocks): odd shapes with ragged edge blocks, empty block rows and columns, and
// a shape large enough to run the OpenMP loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sparse_test_support.hpp"
#include "verdant/kernels/block_sparse.hpp"
#include "verdant/kernels/gemm.hpp"

namespace verdant::kernels {
namespace {

struct Shape3 {
  std::int64_t rows, cols, n;
};

// A [rows, cols] weight keeping each 4x4 block with probability `keep`.
std::vector<float> block_weight(std::int64_t rows, std::int64_t cols, double keep,
                                std::mt19937& g) {
  std::bernoulli_distribution kept(keep);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  const std::int64_t bc = (cols + 3) / 4;
  std::vector<char> on(static_cast<std::size_t>(((rows + 3) / 4) * bc));
  for (auto& b : on) b = kept(g);
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) w[r * cols + c] = on[(r / 4) * bc + c / 4] ? d(g) : 0.f;
  return w;
}

using testing::expect_near;
using testing::random_vec;

TEST(BlockSparse, PatternFindsTheNonZeroBlocks) {
  std::vector<float> w(6 * 9, 0.f);  // 2 x 3 blocks, the last row and column ragged
  w[0 * 9 + 5] = 1.f;                // block (0, 1)
  w[5 * 9 + 8] = 2.f;                // block (1, 2), ragged corner
  const BlockPattern p = block_pattern(w.data(), 6, 9);
  EXPECT_EQ(p.blocks(), 2);
  EXPECT_EQ(p.row_ptr, (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(p.col, (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(p.col_ptr, (std::vector<std::uint32_t>{0, 0, 1, 2}));
  EXPECT_DOUBLE_EQ(p.density(), 2.0 / 6.0);
}

TEST(BlockSparse, ProductsMatchDenseReference) {
  std::mt19937 g(11);
  for (Shape3 s : {Shape3{1, 1, 1}, Shape3{10, 7, 5}, Shape3{13, 25, 3}, Shape3{300, 784, 64},
                   Shape3{100, 300, 33}})
    for (double keep : {0.0, 0.1, 0.5, 1.0}) {
      const auto w = block_weight(s.rows, s.cols, keep, g);
      const auto x = random_vec(s.n * s.cols, g);
      const auto dy = random_vec(s.n * s.rows, g);
      const auto bias = random_vec(s.rows, g);
      const BlockPattern p = block_pattern(w.data(), s.rows, s.cols);
      const float tol = 1e-5f * static_cast<float>(std::max(s.cols, s.n)) + 1e-5f;

      std::vector<float> y(s.n * s.rows), y_ref(s.n * s.rows);
      for (std::int64_t i = 0; i < s.n; ++i)
        for (std::int64_t r = 0; r < s.rows; ++r) y_ref[i * s.rows + r] = bias[r];
      block_sparse_forward(p, w.data(), bias.data(), x.data(), s.n, y.data());
      sgemm_reference(false, true, s.n, s.rows, s.cols, 1.f, x.data(), s.cols, w.data(), s.cols,
                      1.f, y_ref.data(), s.rows);
      expect_near(y, y_ref, tol);

      std::vector<float> dx(s.n * s.cols, 7.f), dx_ref(s.n * s.cols);
      block_sparse_backward(p, w.data(), x.data(), dy.data(), s.n, dx.data(), nullptr);
      sgemm_reference(false, false, s.n, s.cols, s.rows, 1.f, dy.data(), s.rows, w.data(), s.cols,
                      0.f, dx_ref.data(), s.cols);
      expect_near(dx, dx_ref, tol);

      std::vector<float> dw(s.rows * s.cols, 7.f), dw_ref(s.rows * s.cols);
      block_sparse_backward(p, w.data(), x.data(), dy.data(), s.n, nullptr, dw.data());
      sgemm_reference(true, false, s.rows, s.cols, s.n, 1.f, dy.data(), s.rows, x.data(), s.cols,
                      0.f, dw_ref.data(), s.cols);
      for (std::size_t i = 0; i < w.size(); ++i)  // the gradient only exists on the blocks
        if (w[i] == 0.f) dw_ref[i] = 0.f;
      expect_near(dw, dw_ref, tol);
    }
}

}  // namespace
}  // namespace verdant::kernels
