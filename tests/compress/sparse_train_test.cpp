#include "verdant/compress/sparse_train.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "verdant/compress/prune.hpp"

namespace vc = verdant::compress;
using verdant::Tensor;

TEST(SparseTrain, RandomMaskHasTheDensity) {
  std::mt19937_64 rng(1);
  Tensor m = vc::random_mask({300, 784}, 0.0922, rng);
  EXPECT_EQ(vc::count_nonzero(m), std::llround(0.0922 * 300 * 784));
}

TEST(SparseTrain, RiglGrowsWhereTheGradientIsLargestAndStartsAtZero) {
  std::mt19937_64 rng(2);
  Tensor w = Tensor::from({2, 4}, {0.5f, -0.1f, 0.9f, 0, 0, 0.05f, 0, -0.7f});
  Tensor m = Tensor::zeros({2, 4}, verdant::DType::u8);
  for (int i : {0, 1, 2, 5, 7}) m.data<std::uint8_t>()[i] = 1;
  Tensor g = Tensor::from({2, 4}, {0, 0, 0, 0.1f, 3.0f, 0, 2.0f, 0});
  const auto moved = vc::drop_and_grow(w, m, g, 0.4, rng);  // 2 of 5 active
  EXPECT_EQ(moved, 2);
  const std::uint8_t* mp = m.data<std::uint8_t>();
  EXPECT_EQ(mp[1], 0);  // smallest magnitudes dropped
  EXPECT_EQ(mp[5], 0);
  EXPECT_EQ(mp[4], 1);  // largest gradients grown
  EXPECT_EQ(mp[6], 1);
  EXPECT_EQ(mp[3], 0);
  EXPECT_EQ(w.at(4), 0.0f);
  EXPECT_EQ(w.at(6), 0.0f);
  EXPECT_EQ(w.at(1), 0.0f);
  EXPECT_EQ(vc::count_nonzero(m), 5);
}

TEST(SparseTrain, RiglBreaksTiesByPositionAndGrowsWhereTheGradientIsNanLast) {
  std::mt19937_64 rng(4);
  // Active: 0, 1, 2, 3 with |w| 0.2, 0.1, 0.1, 0.3; inactive 4..9.
  Tensor w = Tensor::from({10}, {0.2f, -0.1f, 0.1f, 0.3f, 0, 0, 0, 0, 0, 0});
  Tensor m = Tensor::zeros({10}, verdant::DType::u8);
  for (int i : {0, 1, 2, 3}) m.data<std::uint8_t>()[i] = 1;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor g = Tensor::from({10}, {0, 0, 0, 0, nan, 1.f, -2.f, 1.f, 1.f, nan});
  std::vector<std::int64_t> changed;
  EXPECT_EQ(vc::drop_and_grow(w, m, g, 0.5, rng, &changed), 2);
  const std::uint8_t* mp = m.data<std::uint8_t>();
  // Dropped: 1 and 2 (|w| tied at 0.1); grown: 6 (|g| 2), then 5, the first of the ties at 1.
  EXPECT_EQ(std::vector<int>(mp, mp + 10), (std::vector<int>{1, 0, 0, 1, 0, 1, 1, 0, 0, 0}));
  EXPECT_EQ(changed.size(), 4u);
}

TEST(SparseTrain, SetKeepsCountAndRegrowsAtRandom) {
  std::mt19937_64 rng(3);
  Tensor w = Tensor::full({100, 100}, 1.0f);
  Tensor m = vc::random_mask(w.shape(), 0.1, rng);
  vc::apply_mask(w, m);
  const Tensor before = m.clone();
  const auto moved = vc::drop_and_grow(w, m, Tensor(), 0.3, rng);
  EXPECT_EQ(moved, 300);
  EXPECT_EQ(vc::count_nonzero(m), 1000);
  int changed = 0;
  for (std::int64_t i = 0; i < m.numel(); ++i)
    changed += m.data<std::uint8_t>()[i] != before.data<std::uint8_t>()[i];
  EXPECT_EQ(changed, 600);
  for (std::int64_t i = 0; i < w.numel(); ++i)
    if (!m.data<std::uint8_t>()[i]) {
      EXPECT_EQ(w.at(i), 0.0f);
    }
}
