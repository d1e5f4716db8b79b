// A numerical gradient check for every op with a backward.
#include "gradcheck.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <tuple>

#include "verdant/kernels/block_sparse.hpp"
#include "verdant/kernels/csr.hpp"

namespace verdant::autograd {
namespace {

using testing::expect_gradients_match;
using testing::random_tensor;

Variable param(Shape s, std::uint32_t seed, float lo = -1.f, float hi = 1.f) {
  return Variable(random_tensor(std::move(s), seed, lo, hi), true);
}

// Values spaced at least `gap` apart in shuffled order: max-pool and relu stay away from
// ties and kinks under a +-step perturbation.
Variable spaced(Shape s, std::uint32_t seed, float gap = 0.05f) {
  Tensor t(std::move(s), DType::f32);
  std::vector<std::int64_t> idx(t.numel());
  for (std::int64_t i = 0; i < t.numel(); ++i) idx[i] = i;
  std::mt19937 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[idx[i]] = (static_cast<float>(i) - t.numel() / 2.f) * gap + gap / 2;
  return Variable(t, true);
}

TEST(GradCheck, Matmul) {
  expect_gradients_match([](auto& v) { return matmul(v[0], v[1]); },
                         {param({3, 4}, 1), param({4, 5}, 2)});
}

TEST(GradCheck, LinearWithAndWithoutBias) {
  expect_gradients_match([](auto& v) { return linear(v[0], v[1], v[2]); },
                         {param({4, 6}, 1), param({3, 6}, 2), param({3}, 3)});
  expect_gradients_match([](auto& v) { return linear(v[0], v[1]); },
                         {param({2, 5}, 4), param({3, 5}, 5)});
}

// The weight is zero outside its 4x4 blocks (a block-pruned layer). Off the blocks the op
// takes the weight as zero, so both the numeric and the analytic gradient there are 0.
TEST(GradCheck, BlockSparseLinear) {
  auto block_weight = [] {
    Variable w = param({6, 9}, 2);
    float* wv = w.value().data<float>();
    for (std::int64_t r = 0; r < 6; ++r)
      for (std::int64_t c = 0; c < 9; ++c)
        if ((r / 4 + c / 4) % 2 == 1) wv[r * 9 + c] = 0.f;  // ragged blocks included
    return w;
  };
  Variable w = block_weight();
  auto pattern = std::make_shared<const kernels::BlockPattern>(
      kernels::block_pattern(w.value().data<float>(), 6, 9));
  ASSERT_EQ(pattern->blocks(), 3);
  expect_gradients_match(
      [pattern](auto& v) { return block_sparse_linear(v[0], v[1], v[2], pattern); },
      {param({5, 9}, 1), w, param({6}, 3)});
  expect_gradients_match(
      [pattern](auto& v) { return block_sparse_linear(v[0], v[1], {}, pattern); },
      {param({3, 9}, 4), block_weight()});
}

// An unstructured mask (empty rows and columns included). Off the mask the op takes the
// weight as zero, so both gradients there are 0; a batch of 9 runs a vector and the tail.
std::shared_ptr<const kernels::CsrPattern> every_third(Variable& w) {
  const std::int64_t rows = w.value().dim(0), cols = w.value().dim(1);
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(rows * cols));
  for (std::int64_t i = 0; i < rows * cols; ++i) mask[i] = (i % 3 == 0) && (i / cols != 1);
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!mask[i]) w.value().data<float>()[i] = 0.f;
  return std::make_shared<const kernels::CsrPattern>(kernels::csr_pattern(mask.data(), rows, cols));
}

TEST(GradCheck, CsrLinear) {
  Variable w = param({5, 7}, 2);
  auto pattern = every_third(w);
  expect_gradients_match([pattern](auto& v) { return csr_linear(v[0], v[1], v[2], pattern); },
                         {param({9, 7}, 1), w, param({5}, 3)});
  Variable w2 = param({5, 7}, 5);
  expect_gradients_match([pattern](auto& v) { return csr_linear(v[0], v[1], {}, pattern); },
                         {param({3, 7}, 4), w2});
}

// RigL's growth step: the full weight gradient, the one linear() gives on the masked weight.
TEST(CsrLinear, DenseWeightGradientEqualsTheDenseOps) {
  Variable w = param({6, 11}, 7);
  auto pattern = every_third(w);
  Variable x = param({9, 11}, 8), b = param({6}, 9);
  Variable w_dense(w.value().clone(), true);
  sum(mul(csr_linear(x, w, b, pattern, true), param({9, 6}, 10))).backward();
  Tensor dx_sparse = x.grad().clone();
  x.zero_grad();
  sum(mul(linear(x, w_dense, b), param({9, 6}, 10))).backward();
  for (std::int64_t i = 0; i < w.value().numel(); ++i)
    EXPECT_NEAR(w.grad().at(i), w_dense.grad().at(i), 1e-5f) << "at " << i;
  for (std::int64_t i = 0; i < x.value().numel(); ++i)
    EXPECT_NEAR(dx_sparse.at(i), x.grad().at(i), 1e-5f) << "at " << i;
}

TEST(GradCheck, Conv2dStrideAndPadding) {
  for (auto [stride, pad] : {std::pair{1, 0}, std::pair{2, 1}, std::pair{1, 2}}) {
    expect_gradients_match(
        [stride, pad](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dParams(stride, pad)); },
        {param({2, 3, 6, 5}, 1), param({4, 3, 3, 3}, 2), param({4}, 3)});
  }
}

TEST(GradCheck, Conv2dDilation) {
  for (auto [stride, pad, dilation] : {std::tuple{1, 0, 2}, std::tuple{2, 2, 3}}) {
    expect_gradients_match(
        [=](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dParams(stride, pad, dilation)); },
        {param({2, 2, 8, 7}, 1), param({3, 2, 3, 3}, 2), param({3}, 3)});
  }
}

// Grouped (2 groups of 2 channels) and depthwise (one group per channel, two filters each).
TEST(GradCheck, Conv2dGroupsAndDepthwise) {
  expect_gradients_match([](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dParams(1, 1, 1, 2)); },
                         {param({2, 4, 5, 5}, 1), param({6, 2, 3, 3}, 2), param({6}, 3)});
  expect_gradients_match([](auto& v) { return conv2d(v[0], v[1], {}, Conv2dParams(2, 1, 1, 3)); },
                         {param({1, 3, 6, 6}, 4), param({6, 1, 3, 3}, 5)});
}

// One input channel per group at stride 1: the direct kernels (a first layer; depthwise).
TEST(GradCheck, Conv2dOneChannelPerGroup) {
  expect_gradients_match([](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dParams(1, 1)); },
                         {param({2, 1, 7, 10}, 1), param({5, 1, 3, 3}, 2), param({5}, 3)});
  expect_gradients_match([](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dParams(1, 0, 1, 3)); },
                         {param({2, 3, 6, 9}, 4), param({6, 1, 2, 5}, 5), param({6}, 6)});
}

TEST(GradCheck, Conv2dWithoutBias) {
  expect_gradients_match([](auto& v) { return conv2d(v[0], v[1]); },
                         {param({1, 2, 5, 5}, 6), param({3, 2, 2, 2}, 7)});
}

TEST(GradCheck, MaxPool) {
  expect_gradients_match([](auto& v) { return max_pool2d(v[0], 2); }, {spaced({2, 3, 6, 6}, 1)});
  expect_gradients_match([](auto& v) { return max_pool2d(v[0], 3, 2, 1); },
                         {spaced({1, 2, 7, 7}, 2)});
}

// Half the values negative: whole windows clamp to 0 and take no gradient.
TEST(GradCheck, ReluMaxPool) {
  expect_gradients_match([](auto& v) { return relu_max_pool2d(v[0], 2); },
                         {spaced({2, 3, 6, 6}, 3)});
  expect_gradients_match([](auto& v) { return relu_max_pool2d(v[0], 3, 2, 1); },
                         {spaced({1, 2, 7, 7}, 4)});
}

TEST(GradCheck, AvgPool) {
  expect_gradients_match([](auto& v) { return avg_pool2d(v[0], 2); }, {param({2, 3, 6, 6}, 1)});
  expect_gradients_match([](auto& v) { return avg_pool2d(v[0], 3, 2, 1); },
                         {param({1, 2, 7, 7}, 2)});
}

TEST(GradCheck, Activations) {
  expect_gradients_match([](auto& v) { return relu(v[0]); }, {spaced({4, 7}, 3)});
  expect_gradients_match([](auto& v) { return leaky_relu(v[0], 0.1f); }, {spaced({4, 7}, 9)});
  expect_gradients_match([](auto& v) { return tanh(v[0]); }, {param({4, 7}, 4, -2.f, 2.f)});
  expect_gradients_match([](auto& v) { return sigmoid(v[0]); }, {param({4, 7}, 5, -3.f, 3.f)});
  expect_gradients_match([](auto& v) { return gelu(v[0]); }, {param({4, 7}, 6, -3.f, 3.f)});
}

TEST(GradCheck, SoftmaxAndLogSoftmaxAlongEachDim) {
  for (int dim : {-1, 0, 1}) {
    expect_gradients_match([dim](auto& v) { return softmax(v[0], dim); },
                           {param({3, 4, 2}, 7, -2.f, 2.f)});
    expect_gradients_match([dim](auto& v) { return log_softmax(v[0], dim); },
                           {param({3, 4, 2}, 8, -2.f, 2.f)});
  }
}

TEST(GradCheck, CrossEntropyWithAndWithoutSmoothing) {
  Tensor labels = Tensor::zeros({5}, DType::i32);
  const std::int32_t lab[] = {0, 3, 2, 2, 1};
  std::copy(lab, lab + 5, labels.data<std::int32_t>());
  for (float ls : {0.f, 0.1f}) {
    expect_gradients_match([&labels, ls](auto& v) { return cross_entropy(v[0], labels, ls); },
                           {param({5, 4}, 9, -3.f, 3.f)});
  }
}

TEST(GradCheck, CrossEntropyMatchesLogSoftmaxNll) {
  Variable x = param({3, 4}, 10);
  Tensor labels = Tensor::zeros({3}, DType::i32);
  labels.data<std::int32_t>()[1] = 3;
  labels.data<std::int32_t>()[2] = 1;
  Variable ls = log_softmax(x);
  const double nll = -(ls.value().at(0) + ls.value().at(4 + 3) + ls.value().at(8 + 1)) / 3.0;
  EXPECT_NEAR(cross_entropy(x, labels).item(), nll, 1e-6);
  // Smoothing eps mixes in the mean of -log p over classes.
  double mean_all = 0;
  for (int i = 0; i < 12; ++i) mean_all -= ls.value().at(i);
  mean_all /= 12.0;
  EXPECT_NEAR(cross_entropy(x, labels, 0.2f).item(), 0.8 * nll + 0.2 * mean_all, 1e-6);
}

TEST(GradCheck, DropoutWithFixedMask) {
  Generator gen(77);
  const Generator::State start = gen.state();
  expect_gradients_match(
      [&gen, start](auto& v) {
        gen.set_state(start);  // same mask on every probe
        return dropout(v[0], 0.4f, true, gen);
      },
      {param({6, 5}, 11)});
}

TEST(GradCheck, BatchNormTrainAndEval) {
  for (bool training : {true, false}) {
    for (Shape s : {Shape{6, 3}, Shape{3, 2, 3, 2}}) {
      Tensor rm = random_tensor({s[1]}, 3), rv = random_tensor({s[1]}, 4, 0.5f, 2.f);
      expect_gradients_match(
          [&, training](auto& v) {
            Tensor m = rm.clone(), var = rv.clone();  // keep probes independent
            return batch_norm(v[0], v[1], v[2], m, var, training);
          },
          {param(s, 12, -2.f, 2.f), param({s[1]}, 13, 0.5f, 1.5f), param({s[1]}, 14)},
          {.step = 1e-2, .atol = 5e-3, .rtol = 3e-2});
    }
  }
}

TEST(GradCheck, ReshapeAndFlatten) {
  expect_gradients_match([](auto& v) { return reshape(v[0], {3, -1}); }, {param({2, 3, 2}, 15)});
  expect_gradients_match([](auto& v) { return flatten(v[0]); }, {param({2, 3, 2, 2}, 16)});
}

TEST(GradCheck, BroadcastingAddSubMul) {
  const std::vector<std::pair<Shape, Shape>> shapes = {{{3, 4}, {3, 4}},
                                                       {{3, 4}, {4}},
                                                       {{2, 1, 4}, {3, 1}},
                                                       {{1}, {2, 3}},
                                                       {{2, 3, 1, 2}, {3, 5, 1}}};
  for (const auto& [sa, sb] : shapes) {
    expect_gradients_match([](auto& v) { return add(v[0], v[1]); }, {param(sa, 17), param(sb, 18)});
    expect_gradients_match([](auto& v) { return sub(v[0], v[1]); }, {param(sa, 19), param(sb, 20)});
    expect_gradients_match([](auto& v) { return mul(v[0], v[1]); }, {param(sa, 21), param(sb, 22)});
  }
  expect_gradients_match([](auto& v) { return v[0] * 2.5f; }, {param({3, 2}, 23)});
}

TEST(GradCheck, Reductions) {
  expect_gradients_match([](auto& v) { return sum(v[0]); }, {param({3, 4}, 24)});
  expect_gradients_match([](auto& v) { return mean(v[0]); }, {param({3, 4}, 25)});
  for (int dim : {0, 1, -1})
    for (bool keep : {false, true}) {
      expect_gradients_match([dim, keep](auto& v) { return sum(v[0], dim, keep); },
                             {param({2, 3, 4}, 26)});
      expect_gradients_match([dim, keep](auto& v) { return mean(v[0], dim, keep); },
                             {param({2, 3, 4}, 27)});
    }
}

TEST(GradCheck, SmallNetworkEndToEnd) {
  // conv -> relu -> pool -> flatten -> linear -> cross-entropy, all parameters at once.
  Tensor labels = Tensor::zeros({2}, DType::i32);
  labels.data<std::int32_t>()[1] = 2;
  expect_gradients_match(
      [&labels](auto& v) {
        Variable h = max_pool2d(relu(conv2d(v[0], v[1], v[2], Conv2dParams(1, 1))), 2);
        return cross_entropy(linear(flatten(h), v[3], v[4]), labels);
      },
      {param({2, 1, 4, 4}, 28), param({2, 1, 3, 3}, 29), param({2}, 30), param({3, 8}, 31),
       param({3}, 32)},
      {.step = 1e-3, .atol = 2e-3, .rtol = 3e-2});
}

}  // namespace
}  // namespace verdant::autograd
