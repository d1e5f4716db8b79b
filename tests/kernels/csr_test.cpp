// The CSR products against the dense reference GEMM on the same weights (zero outside the
// mask): empty rows and columns, batches with and without a vector tail, all or none kept, and
// shapes large enough to run the OpenMP loops.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "sparse_test_support.hpp"
#include "verdant/kernels/csr.hpp"
#include "verdant/kernels/gemm.hpp"

namespace verdant::kernels {
namespace {

struct Shape3 {
  std::int64_t rows, cols, n;
};

using testing::expect_near;
using testing::random_vec;

TEST(Csr, PatternListsTheKeptEntriesByRowAndByColumn) {
  // [[0 1 0]
  //  [0 0 0]
  //  [1 1 0]]
  const std::vector<std::uint8_t> mask = {0, 1, 0, 0, 0, 0, 1, 1, 0};
  const CsrPattern p = csr_pattern(mask.data(), 3, 3);
  EXPECT_EQ(p.nnz(), 3);
  EXPECT_EQ(p.row_ptr, (std::vector<std::uint32_t>{0, 1, 1, 3}));
  EXPECT_EQ(p.col, (std::vector<std::uint32_t>{1, 0, 1}));
  EXPECT_EQ(p.col_ptr, (std::vector<std::uint32_t>{0, 1, 3, 3}));
  EXPECT_EQ(p.col_rows, (std::vector<std::uint32_t>{2, 0, 2}));
  EXPECT_EQ(p.by_col, (std::vector<std::uint32_t>{1, 0, 2}));
  EXPECT_DOUBLE_EQ(p.density(), 3.0 / 9.0);
}

TEST(Csr, ProductsMatchDenseReference) {
  std::mt19937 g(5);
  for (Shape3 s : {Shape3{1, 1, 1}, Shape3{10, 7, 5}, Shape3{13, 25, 9}, Shape3{300, 784, 64},
                   Shape3{100, 300, 73}, Shape3{17, 40, 130}})
    for (double keep : {0.0, 0.05, 0.3, 1.0}) {
      std::bernoulli_distribution kept(keep);
      std::vector<std::uint8_t> mask(static_cast<std::size_t>(s.rows * s.cols));
      for (auto& m : mask) m = kept(g);
      auto w = random_vec(s.rows * s.cols, g);
      // Values outside the mask must not be read: the dense twin sees zeros there.
      std::vector<float> w_masked(w.size());
      for (std::size_t i = 0; i < w.size(); ++i) w_masked[i] = mask[i] ? w[i] : 0.f;
      const auto x = random_vec(s.n * s.cols, g);
      const auto dy = random_vec(s.n * s.rows, g);
      const auto bias = random_vec(s.rows, g);
      const CsrPattern p = csr_pattern(mask.data(), s.rows, s.cols);
      std::vector<float> xt(s.n * s.cols);
      batch_major(x.data(), s.n, s.cols, xt.data());
      const float tol = 1e-5f * static_cast<float>(std::max(s.cols, s.n)) + 1e-5f;

      std::vector<float> y(s.n * s.rows, 7.f), y_ref(s.n * s.rows);
      for (std::int64_t i = 0; i < s.n; ++i)
        for (std::int64_t r = 0; r < s.rows; ++r) y_ref[i * s.rows + r] = bias[r];
      csr_forward(p, w.data(), bias.data(), xt.data(), s.n, y.data());
      sgemm_reference(false, true, s.n, s.rows, s.cols, 1.f, x.data(), s.cols, w_masked.data(),
                      s.cols, 1.f, y_ref.data(), s.rows);
      expect_near(y, y_ref, tol);

      std::vector<float> dx(s.n * s.cols, 7.f), dx_ref(s.n * s.cols);
      csr_backward(p, w.data(), xt.data(), dy.data(), s.n, dx.data(), nullptr);
      sgemm_reference(false, false, s.n, s.cols, s.rows, 1.f, dy.data(), s.rows, w_masked.data(),
                      s.cols, 0.f, dx_ref.data(), s.cols);
      expect_near(dx, dx_ref, tol);

      std::vector<float> dw(s.rows * s.cols, 7.f), dw_ref(s.rows * s.cols);
      csr_backward(p, w.data(), xt.data(), dy.data(), s.n, nullptr, dw.data());
      sgemm_reference(true, false, s.rows, s.cols, s.n, 1.f, dy.data(), s.rows, x.data(), s.cols,
                      0.f, dw_ref.data(), s.cols);
      for (std::size_t i = 0; i < mask.size(); ++i)  // the gradient only exists on the mask
        if (!mask[i]) dw_ref[i] = 0.f;
      expect_near(dw, dw_ref, tol);
    }
}

}  // namespace
}  // namespace verdant::kernels
