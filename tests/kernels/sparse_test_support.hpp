#pragma once
// What the sparse kernels' tests share: random operands and an element-wise comparison.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace verdant::kernels::testing {

inline std::vector<float> random_vec(std::int64_t n, std::mt19937& g) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

inline void expect_near(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol) << "at " << i;
}

}  // namespace verdant::kernels::testing
