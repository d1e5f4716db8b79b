#include "verdant/compress/prune.hpp"

#include <gtest/gtest.h>

#include <random>

#include "verdant/compress/schedule.hpp"

namespace vc = verdant::compress;
using verdant::Tensor;

namespace {
Tensor random_tensor(verdant::Shape shape, std::uint64_t seed) {
  Tensor t(shape, verdant::DType::f32);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
  return t;
}
}  // namespace

TEST(Prune, PerLayerMagnitudeHitsSparsityAndKeepsLargest) {
  std::vector<Tensor> w = {random_tensor({30, 40}, 1), random_tensor({10, 30}, 2)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape()), vc::ones_mask(w[1].shape())};
  vc::magnitude_prune(w, m, 0.75, vc::PruneScope::layer);
  for (std::size_t l = 0; l < w.size(); ++l) {
    EXPECT_NEAR(vc::sparsity_of(m[l]), 0.75, 1.0 / double(w[l].numel()));
    float max_pruned = 0, min_kept = 1e30f;
    for (std::int64_t i = 0; i < w[l].numel(); ++i) {
      const float a = std::fabs(w[l].at(i));
      if (m[l].data<std::uint8_t>()[i])
        min_kept = std::min(min_kept, a);
      else
        max_pruned = std::max(max_pruned, a);
    }
    EXPECT_LE(max_pruned, min_kept);
  }
}

TEST(Prune, GlobalScopeUsesOneThreshold) {
  Tensor small = random_tensor({20, 20}, 3), big = random_tensor({20, 20}, 4);
  for (std::int64_t i = 0; i < big.numel(); ++i) big.data<float>()[i] *= 10.0f;
  std::vector<Tensor> w = {small, big};
  std::vector<Tensor> m = {vc::ones_mask(small.shape()), vc::ones_mask(big.shape())};
  vc::magnitude_prune(w, m, 0.5, vc::PruneScope::global);
  const double total = double(vc::count_nonzero(m[0]) + vc::count_nonzero(m[1]));
  EXPECT_NEAR(total / 800.0, 0.5, 1e-9);
  EXPECT_GT(vc::sparsity_of(m[0]), vc::sparsity_of(m[1]));  // the small layer loses more
}

TEST(Prune, GradualPruningNeverRevivesWeights) {
  std::vector<Tensor> w = {random_tensor({50, 50}, 5)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape())};
  Tensor prev = m[0].clone();
  for (int t = 0; t <= 10; ++t) {
    const double s = vc::cubic_sparsity(0.0, 0.9, t, 0, 10);
    // Weights drift between updates, as in training.
    Tensor noise = random_tensor(w[0].shape(), 100 + t);
    for (std::int64_t i = 0; i < w[0].numel(); ++i) w[0].data<float>()[i] += 0.3f * noise.at(i);
    vc::apply_mask(w[0], m[0]);
    vc::magnitude_prune(w, m, s, vc::PruneScope::layer);
    for (std::int64_t i = 0; i < m[0].numel(); ++i)
      if (!prev.data<std::uint8_t>()[i]) {
        ASSERT_EQ(m[0].data<std::uint8_t>()[i], 0);
      }
    EXPECT_NEAR(vc::sparsity_of(m[0]), s, 1.0 / 2500.0);
    prev = m[0].clone();
  }
}

TEST(Prune, MaskHoldsAfterManyOptimizerSteps) {
  // Plain SGD with momentum on a quadratic pulling every weight away from zero: without the
  // mask the pruned weights would come back.
  Tensor w = random_tensor({16, 16}, 6);
  std::vector<Tensor> ws = {w};
  std::vector<Tensor> ms = {vc::ones_mask(w.shape())};
  vc::magnitude_prune(ws, ms, 0.8, vc::PruneScope::layer);
  vc::apply_mask(w, ms[0]);
  Tensor velocity = Tensor::zeros(w.shape());
  for (int step = 0; step < 500; ++step) {
    for (std::int64_t i = 0; i < w.numel(); ++i) {
      const float grad = w.at(i) - 1.0f;  // d/dw of (w - 1)^2 / 2
      float& v = velocity.data<float>()[i];
      v = 0.9f * v + grad;
      w.data<float>()[i] -= 0.05f * v;
    }
    vc::apply_mask(w, ms[0]);
  }
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    if (ms[0].data<std::uint8_t>()[i])
      EXPECT_NEAR(w.at(i), 1.0f, 1e-3f);
    else
      EXPECT_EQ(w.at(i), 0.0f);
  }
  EXPECT_NEAR(vc::sparsity_of(w), 0.8, 1.0 / 256.0);
}

TEST(Prune, StructuredRemovesWeakestRowsByNorm) {
  Tensor w = random_tensor({10, 6}, 7);
  for (std::int64_t c = 0; c < 6; ++c) {
    w.data<float>()[3 * 6 + c] = 0.01f;  // row 3 and 7 are the weakest
    w.data<float>()[7 * 6 + c] = -0.02f;
  }
  for (auto norm : {vc::Norm::l1, vc::Norm::l2}) {
    std::vector<Tensor> ws = {w};
    std::vector<Tensor> ms = {vc::ones_mask(w.shape())};
    vc::structured_prune(ws, ms, 0.2, norm);
    const auto keep = vc::kept_rows(ms[0]);
    EXPECT_EQ(keep, (std::vector<std::int64_t>{0, 1, 2, 4, 5, 6, 8, 9}));
  }
}

TEST(Prune, PhysicalRemovalShrinksBothLayers) {
  // Linear 4 -> 3 -> 2; keep neurons 0 and 2 of the hidden layer.
  Tensor w1 = Tensor::from({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  Tensor w2 = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  const std::vector<std::int64_t> keep = {0, 2};
  Tensor s1 = vc::take_rows(w1, keep);
  Tensor s2 = vc::take_input_columns(w2, keep, 1);
  EXPECT_EQ(s1.shape(), (verdant::Shape{2, 4}));
  EXPECT_EQ(s2.shape(), (verdant::Shape{2, 2}));
  EXPECT_EQ(s1.at(4), 9.0f);
  EXPECT_EQ(s2.at(0), 1.0f);
  EXPECT_EQ(s2.at(1), 3.0f);
  EXPECT_EQ(s2.at(3), 6.0f);
  // Conv [3,1,2,2] feeding a flatten (3 channels x 2 spatial) into Linear [2, 6].
  Tensor fc = Tensor::from({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor sf = vc::take_input_columns(fc, {1}, 2);
  EXPECT_EQ(sf.shape(), (verdant::Shape{2, 2}));
  EXPECT_EQ(sf.at(0), 2.0f);
  EXPECT_EQ(sf.at(3), 9.0f);
  // Conv -> conv: next weight [2, 3, 1, 1], keep input channel 2.
  Tensor c2 = Tensor::from({2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
  Tensor sc = vc::take_input_columns(c2, {2}, 1);
  EXPECT_EQ(sc.shape(), (verdant::Shape{2, 1, 1, 1}));
  EXPECT_EQ(sc.at(0), 3.0f);
  EXPECT_EQ(sc.at(1), 6.0f);
}
