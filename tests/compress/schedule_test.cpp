#include "verdant/compress/schedule.hpp"

#include <gtest/gtest.h>

namespace vc = verdant::compress;

TEST(Schedule, CubicHalfway) {
  // s_i = 0, s_f = 0.9: 0.9 + (0 - 0.9) * 0.5^3 = 0.7875.
  EXPECT_NEAR(vc::cubic_sparsity(0.0, 0.9, 5.0, 0.0, 10.0), 0.7875, 1e-12);
  EXPECT_DOUBLE_EQ(vc::cubic_sparsity(0.0, 0.9, 0.0, 0.0, 10.0), 0.0);
  EXPECT_DOUBLE_EQ(vc::cubic_sparsity(0.0, 0.9, 10.0, 0.0, 10.0), 0.9);
  EXPECT_DOUBLE_EQ(vc::cubic_sparsity(0.0, 0.9, 25.0, 0.0, 10.0), 0.9);  // held after the end
  EXPECT_DOUBLE_EQ(vc::cubic_sparsity(0.2, 0.9, 1.0, 2.0, 10.0), 0.2);   // before the start
  EXPECT_DOUBLE_EQ(vc::cubic_sparsity(0.0, 0.8, 3.0, 3.0, 0.0), 0.8);    // one-shot
  // Monotone rise.
  double prev = -1;
  for (int t = 0; t <= 10; ++t) {
    const double s = vc::cubic_sparsity(0.0, 0.9, t, 0.0, 10.0);
    EXPECT_GT(s, prev);
    prev = s;
  }
}

TEST(Schedule, RiglCosineDropFraction) {
  EXPECT_NEAR(vc::rigl_drop_fraction(0.3, 0, 1000), 0.3, 1e-12);
  EXPECT_NEAR(vc::rigl_drop_fraction(0.3, 500, 1000), 0.15, 1e-12);
  EXPECT_NEAR(vc::rigl_drop_fraction(0.3, 1000, 1000), 0.0, 1e-12);
  EXPECT_EQ(vc::rigl_drop_fraction(0.3, 2000, 1000), 0.0);
}

TEST(Schedule, ErdosRenyiDensity) {
  const double d = vc::erdos_renyi_density(20, 784, 300);
  EXPECT_NEAR(d, 20.0 * (784 + 300) / (784.0 * 300.0), 1e-12);
  EXPECT_NEAR(d, 0.092, 0.0005);  // about 9.2%
  EXPECT_EQ(vc::erdos_renyi_density(20, 10, 10), 1.0);
}

TEST(Schedule, LayerDensitiesMeetTheBudget) {
  const std::vector<std::vector<std::int64_t>> mlp = {{300, 784}, {100, 300}, {10, 100}};
  for (auto rule : {vc::DensityRule::uniform, vc::DensityRule::er, vc::DensityRule::erk}) {
    const auto d = vc::layer_densities(mlp, 0.1, rule);
    double nnz = 0, total = 0;
    for (std::size_t i = 0; i < mlp.size(); ++i) {
      const double n = double(mlp[i][0] * mlp[i][1]);
      nnz += d[i] * n;
      total += n;
      EXPECT_LE(d[i], 1.0);
    }
    EXPECT_NEAR(nnz / total, 0.1, 1e-9);
  }
  const auto er = vc::layer_densities(mlp, 0.1, vc::DensityRule::er);
  EXPECT_LT(er[0], er[1]);  // bigger layers get sparser
  EXPECT_LT(er[1], er[2]);
  // ER is proportional to (n_in + n_out) / (n_in * n_out) among unsaturated layers.
  EXPECT_NEAR(er[0] / er[1], (1084.0 / 235200.0) / (400.0 / 30000.0), 1e-9);
  // ERK counts kernel dims: a 5x5 conv with few channels saturates and stays dense.
  const std::vector<std::vector<std::int64_t>> lenet = {
      {20, 1, 5, 5}, {50, 20, 5, 5}, {500, 800}, {10, 500}};
  const auto erk = vc::layer_densities(lenet, 0.1, vc::DensityRule::erk);
  EXPECT_DOUBLE_EQ(erk[0], 1.0);
}
