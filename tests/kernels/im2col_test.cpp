#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "verdant/kernels/im2col.hpp"

namespace verdant::kernels {
namespace {

ConvGeometry geom(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t k,
                  std::int64_t s, std::int64_t p, std::int64_t d = 1) {
  ConvGeometry g;
  g.batch = n;
  g.channels = c;
  g.height = h;
  g.width = w;
  g.kernel_h = g.kernel_w = k;
  g.stride_h = g.stride_w = s;
  g.pad_h = g.pad_w = p;
  g.dilation_h = g.dilation_w = d;
  return g;
}

class Im2colTest : public ::testing::TestWithParam<ConvGeometry> {};

TEST_P(Im2colTest, MatchesReferenceAndIsAdjointOfCol2im) {
  const ConvGeometry g = GetParam();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> img(g.batch * g.channels * g.height * g.width);
  for (auto& v : img) v = d(rng);
  const std::size_t ncols = g.col_rows() * g.col_cols();
  std::vector<float> cols(ncols, 99.f), cols_ref(ncols, -99.f);
  im2col(img.data(), g, cols.data());
  im2col_reference(img.data(), g, cols_ref.data());
  EXPECT_EQ(cols, cols_ref);  // pure copies: exact

  std::vector<float> c(ncols);
  for (auto& v : c) v = d(rng);
  std::vector<float> back(img.size(), 123.f), back_ref(img.size());
  col2im(c.data(), g, back.data());
  col2im_reference(c.data(), g, back_ref.data());
  for (std::size_t i = 0; i < img.size(); ++i) ASSERT_NEAR(back[i], back_ref[i], 1e-5f);

  // <im2col(x), c> == <x, col2im(c)>: col2im is the exact adjoint.
  double lhs = 0, rhs = 0;
  for (std::size_t i = 0; i < ncols; ++i) lhs += static_cast<double>(cols[i]) * c[i];
  for (std::size_t i = 0; i < img.size(); ++i) rhs += static_cast<double>(img[i]) * back[i];
  EXPECT_NEAR(lhs, rhs, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Geometries, Im2colTest,
                         ::testing::Values(geom(2, 1, 8, 8, 5, 1, 0), geom(3, 2, 7, 6, 3, 2, 1),
                                           geom(1, 3, 5, 5, 3, 1, 2), geom(2, 4, 9, 9, 2, 2, 0),
                                           geom(1, 1, 4, 4, 1, 1, 0), geom(2, 2, 9, 8, 3, 1, 0, 2),
                                           geom(1, 3, 10, 10, 3, 2, 2, 3)));

TEST(Im2col, GeometryCounts) {
  const ConvGeometry g = geom(64, 20, 12, 12, 5, 1, 0);
  EXPECT_EQ(g.out_h(), 8);
  EXPECT_EQ(g.col_rows(), 500);
  EXPECT_EQ(g.col_cols(), 64 * 64);
  // A 3x3 kernel with dilation 2 spans 5x5.
  EXPECT_EQ(geom(1, 1, 12, 12, 3, 1, 0, 2).out_h(), 8);
}

}  // namespace
}  // namespace verdant::kernels
