#include "verdant/compress/sparse_train.hpp"

#include <gtest/gtest.h>

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
