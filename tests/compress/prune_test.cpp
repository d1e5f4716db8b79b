#include "verdant/compress/prune.hpp"

#include <gtest/gtest.h>

#include <random>

#include "verdant/compress/schedule.hpp"
#include "verdant/core/error.hpp"

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

namespace {
// True when every block of `mask` (viewed as [rows, numel/rows], blocks br x bc from the
// top-left corner) is all ones or all zeros.
bool block_aligned(const Tensor& mask, std::int64_t br, std::int64_t bc) {
  const std::int64_t rows = mask.dim(0), cols = mask.numel() / rows;
  const std::uint8_t* m = mask.data<std::uint8_t>();
  for (std::int64_t r0 = 0; r0 < rows; r0 += br)
    for (std::int64_t c0 = 0; c0 < cols; c0 += bc) {
      const std::uint8_t first = m[r0 * cols + c0];
      for (std::int64_t r = r0; r < std::min(r0 + br, rows); ++r)
        for (std::int64_t c = c0; c < std::min(c0 + bc, cols); ++c)
          if (m[r * cols + c] != first) return false;
    }
  return true;
}

double block_rms(const Tensor& w, std::int64_t r0, std::int64_t c0, std::int64_t br,
                 std::int64_t bc) {
  const std::int64_t rows = w.dim(0), cols = w.numel() / rows;
  double s = 0;
  std::int64_t n = 0;
  for (std::int64_t r = r0; r < std::min(r0 + br, rows); ++r)
    for (std::int64_t c = c0; c < std::min(c0 + bc, cols); ++c, ++n)
      s += double(w.at(r * cols + c)) * w.at(r * cols + c);
  return std::sqrt(s / double(n));
}
}  // namespace

TEST(BlockPrune, MaskIsBlockAlignedHitsSparsityAndKeepsStrongestBlocks) {
  std::vector<Tensor> w = {random_tensor({32, 64}, 11)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape())};
  vc::block_prune(w, m, 0.75, vc::PruneScope::layer, vc::Norm::l2, 4, 4);
  EXPECT_TRUE(block_aligned(m[0], 4, 4));
  EXPECT_DOUBLE_EQ(vc::sparsity_of(m[0]), 0.75);  // 96 of 128 equal blocks
  // Every pruned block is weaker (L2) than every kept one.
  double max_pruned = 0, min_kept = 1e30;
  for (std::int64_t r0 = 0; r0 < 32; r0 += 4)
    for (std::int64_t c0 = 0; c0 < 64; c0 += 4) {
      const double n = block_rms(w[0], r0, c0, 4, 4);
      if (m[0].data<std::uint8_t>()[r0 * 64 + c0])
        min_kept = std::min(min_kept, n);
      else
        max_pruned = std::max(max_pruned, n);
    }
  EXPECT_LE(max_pruned, min_kept);
}

TEST(BlockPrune, NonSquareBlocksAndL1) {
  std::vector<Tensor> w = {random_tensor({16, 30}, 12)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape())};
  vc::block_prune(w, m, 0.5, vc::PruneScope::layer, vc::Norm::l1, 2, 5);
  EXPECT_TRUE(block_aligned(m[0], 2, 5));
  EXPECT_FALSE(block_aligned(m[0], 4, 5));       // really 2-row blocks, not 4
  EXPECT_DOUBLE_EQ(vc::sparsity_of(m[0]), 0.5);  // 24 of 48 blocks of 10
}

TEST(BlockPrune, RaggedEdgesAndConvWeightsFlattened) {
  // Conv2d [out 10, in 3, 3, 3]: a 10 x 27 matrix; 4x4 blocks leave a 2-row bottom edge and a
  // 3-column right edge.
  std::vector<Tensor> w = {random_tensor({10, 3, 3, 3}, 13)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape())};
  vc::block_prune(w, m, 0.6, vc::PruneScope::layer, vc::Norm::l2, 4, 4);
  const Tensor flat = m[0].reshape({10, 27});
  EXPECT_TRUE(block_aligned(flat, 4, 4));
  // To the nearest block: the largest block has 16 weights.
  EXPECT_NEAR(vc::sparsity_of(m[0]), 0.6, 8.0 / 270.0);
  // An edge block made of the strongest weights of the layer is never pruned, whatever its size.
  for (std::int64_t r = 8; r < 10; ++r)
    for (std::int64_t c = 24; c < 27; ++c) w[0].data<float>()[r * 27 + c] = 100.0f;
  m[0] = vc::ones_mask(w[0].shape());
  vc::block_prune(w, m, 0.9, vc::PruneScope::layer, vc::Norm::l2, 4, 4);
  EXPECT_TRUE(block_aligned(m[0].reshape({10, 27}), 4, 4));
  EXPECT_EQ(m[0].data<std::uint8_t>()[9 * 27 + 26], 1);
  // Blocks larger than the layer: one block, all or nothing.
  std::vector<Tensor> tiny = {random_tensor({3, 3}, 14)};
  std::vector<Tensor> tm = {vc::ones_mask(tiny[0].shape())};
  vc::block_prune(tiny, tm, 0.4, vc::PruneScope::layer, vc::Norm::l2, 4, 4);
  EXPECT_EQ(vc::count_nonzero(tm[0]), 9);  // 0 is nearer to 40% than 100% is
  vc::block_prune(tiny, tm, 0.6, vc::PruneScope::layer, vc::Norm::l2, 4, 4);
  EXPECT_EQ(vc::count_nonzero(tm[0]), 0);
}

TEST(BlockPrune, GlobalScopeRanksAcrossLayers) {
  Tensor small = random_tensor({16, 16}, 15), big = random_tensor({16, 16}, 16);
  for (std::int64_t i = 0; i < big.numel(); ++i) big.data<float>()[i] *= 10.0f;
  std::vector<Tensor> w = {small, big};
  std::vector<Tensor> m = {vc::ones_mask(small.shape()), vc::ones_mask(big.shape())};
  vc::block_prune(w, m, 0.5, vc::PruneScope::global, vc::Norm::l2, 4, 4);
  EXPECT_TRUE(block_aligned(m[0], 4, 4));
  EXPECT_TRUE(block_aligned(m[1], 4, 4));
  EXPECT_EQ(vc::count_nonzero(m[0]) + vc::count_nonzero(m[1]), 256);
  EXPECT_GT(vc::sparsity_of(m[0]), vc::sparsity_of(m[1]));
}

TEST(BlockPrune, GradualBlockPruningNeverRevivesABlock) {
  std::vector<Tensor> w = {random_tensor({40, 36}, 17)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape())};
  Tensor prev = m[0].clone();
  for (int t = 0; t <= 10; ++t) {
    const double s = vc::cubic_sparsity(0.0, 0.92, t, 0, 10);
    // Pruned weights are zero; the rest drift as in training, so block ranks change.
    Tensor noise = random_tensor(w[0].shape(), 200 + t);
    for (std::int64_t i = 0; i < w[0].numel(); ++i) w[0].data<float>()[i] += 0.5f * noise.at(i);
    vc::apply_mask(w[0], m[0]);
    vc::block_prune(w, m, s, vc::PruneScope::layer, vc::Norm::l2, 4, 4);
    EXPECT_TRUE(block_aligned(m[0], 4, 4));
    // Half a block off at most, plus the rounding of the target to whole weights.
    EXPECT_NEAR(vc::sparsity_of(m[0]), s, 8.5 / 1440.0) << "t=" << t;
    for (std::int64_t i = 0; i < prev.numel(); ++i)
      if (!prev.data<std::uint8_t>()[i]) ASSERT_EQ(m[0].data<std::uint8_t>()[i], 0) << i;
    prev = m[0].clone();
  }
  EXPECT_NEAR(vc::sparsity_of(m[0]), 0.92, 8.0 / 1440.0);
}

TEST(BlockPrune, BadArgumentsThrow) {
  std::vector<Tensor> w = {random_tensor({4, 4}, 18)};
  std::vector<Tensor> m = {vc::ones_mask(w[0].shape())};
  EXPECT_THROW(vc::block_prune(w, m, 0.5, vc::PruneScope::layer, vc::Norm::l2, 0, 4),
               verdant::Error);
  std::vector<Tensor> none;
  EXPECT_THROW(vc::block_prune(w, none, 0.5, vc::PruneScope::layer, vc::Norm::l2, 4, 4),
               verdant::Error);
}
