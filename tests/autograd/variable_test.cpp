#include <gtest/gtest.h>

#include "gradcheck.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/core/error.hpp"

namespace verdant::autograd {
namespace {

TEST(Variable, LeafGradAccumulatesAcrossBackwardCalls) {
  Variable x(Tensor::from({2}, {1.f, 2.f}), true);
  sum(mul(x, x)).backward();
  EXPECT_FLOAT_EQ(x.grad().at(0), 2.f);
  EXPECT_FLOAT_EQ(x.grad().at(1), 4.f);
  sum(x).backward();
  EXPECT_FLOAT_EQ(x.grad().at(0), 3.f);
  x.zero_grad();
  EXPECT_FLOAT_EQ(x.grad().at(1), 0.f);
}

TEST(Variable, SameInputTwiceGetsBothContributions) {
  Variable x(Tensor::from({3}, {1.f, -2.f, 3.f}), true);
  sum(add(x, x)).backward();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(x.grad().at(i), 2.f);
}

TEST(Variable, DiamondGraphSumsPaths) {
  // y = relu(x) * tanh(x) + x: x is used by three consumers.
  Variable x(Tensor::from({2}, {0.5f, 1.5f}), true);
  Variable y = add(mul(relu(x), tanh(x)), x);
  sum(y).backward();
  for (int i = 0; i < 2; ++i) {
    const float v = x.value().at(i), t = std::tanh(v);
    EXPECT_NEAR(x.grad().at(i), t + v * (1 - t * t) + 1.f, 1e-6);
  }
}

TEST(Variable, NoGradGuardRecordsNothing) {
  Variable x(Tensor::from({2}, {1.f, 2.f}), true);
  {
    NoGradGuard g;
    Variable y = mul(x, x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_TRUE(mul(x, x).requires_grad());
}

TEST(Variable, InputsWithoutGradGetNone) {
  Variable x(Tensor::from({1, 2}, {1.f, 2.f}), false);
  Variable w(Tensor::from({1, 2}, {3.f, 4.f}), true);
  sum(linear(x, w)).backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FLOAT_EQ(w.grad().at(0), 1.f);
  EXPECT_FLOAT_EQ(w.grad().at(1), 2.f);
}

TEST(Variable, InteriorGradsAreNotKeptAndSecondBackwardThrows) {
  Variable x(Tensor::from({2}, {1.f, 2.f}), true);
  Variable h = mul(x, 3.f);
  Variable loss = sum(h);
  loss.backward();
  EXPECT_FALSE(h.grad().defined());
  EXPECT_THROW(loss.backward(), Error);
}

TEST(Variable, BackwardErrors) {
  Variable x(Tensor::from({2}, {1.f, 2.f}), true);
  EXPECT_THROW(mul(x, 2.f).backward(), Error);  // two elements, no seed
  Variable c(Tensor::from({1}, {1.f}), false);
  EXPECT_THROW(c.backward(), Error);
  EXPECT_THROW(mul(x, 2.f).backward(Tensor::zeros({3})), Error);
  Variable y = mul(x, 2.f);
  y.backward(Tensor::from({2}, {1.f, 10.f}));
  EXPECT_FLOAT_EQ(x.grad().at(1), 20.f);
}

TEST(Ops, ShapeErrorsThrowOneLine) {
  Variable a(Tensor::zeros({2, 3})), b(Tensor::zeros({2, 3}));
  try {
    matmul(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos);
  }
  EXPECT_THROW(add(a, Variable(Tensor::zeros({4}))), Error);
  EXPECT_THROW(conv2d(a, b), Error);
  EXPECT_THROW(max_pool2d(Variable(Tensor::zeros({1, 1, 2, 2})), 3), Error);
  EXPECT_THROW(softmax(a, 2), Error);
  EXPECT_THROW(reshape(a, {4, -1}), Error);
  EXPECT_THROW(linear(a, Variable(Tensor::zeros({4, 2}))), Error);
}

TEST(Ops, CrossEntropyRejectsBadLabels) {
  Variable x(Tensor::zeros({2, 3}));
  Tensor lab = Tensor::zeros({2}, DType::i32);
  lab.data<std::int32_t>()[1] = 3;
  EXPECT_THROW(cross_entropy(x, lab), Error);
  lab.data<std::int32_t>()[1] = -1;
  EXPECT_THROW(cross_entropy(x, lab), Error);
  EXPECT_THROW(cross_entropy(x, Tensor::zeros({3}, DType::i32)), Error);
  EXPECT_THROW(cross_entropy(x, Tensor::zeros({2})), Error);  // f32 labels
  EXPECT_THROW(cross_entropy(x, Tensor::zeros({2}, DType::i32), 1.f), Error);
}

TEST(Ops, CrossEntropyIsStableForHugeLogits) {
  Variable x(Tensor::from({1, 3}, {1000.f, -1000.f, 0.f}), true);
  Tensor lab = Tensor::zeros({1}, DType::i32);
  Variable l = cross_entropy(x, lab);
  EXPECT_NEAR(l.item(), 0.f, 1e-6);
  l.backward();
  EXPECT_TRUE(std::isfinite(x.grad().at(0)));
}

TEST(Ops, SoftmaxRowsSumToOne) {
  Variable x(testing::random_tensor({4, 6}, 3, -5.f, 5.f));
  Variable y = softmax(x);
  for (int r = 0; r < 4; ++r) {
    double s = 0;
    for (int c = 0; c < 6; ++c) s += y.value().at(r * 6 + c);
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
}

TEST(Ops, DropoutStatisticsAndEvalIdentity) {
  Generator gen(5);
  Variable x(Tensor::full({10000}, 1.f));
  Variable y = dropout(x, 0.25f, true, gen);
  int zeros = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    const float v = y.value().at(i);
    if (v == 0.f)
      ++zeros;
    else
      ASSERT_FLOAT_EQ(v, 1.f / 0.75f);
  }
  EXPECT_NEAR(zeros / 10000.0, 0.25, 0.02);
  Variable e = dropout(x, 0.25f, false, gen);
  EXPECT_TRUE(e.value().same_storage(x.value()));
  Variable all = dropout(x, 1.f, true, gen);
  EXPECT_FLOAT_EQ(all.value().at(0), 0.f);
}

TEST(Ops, BatchNormUpdatesRunningStatsLikePyTorch) {
  // Channel values {1, 3} and {2, 6}: mean 2 / 4, biased var 1 / 4, unbiased 2 / 8.
  Variable x(Tensor::from({2, 2}, {1.f, 2.f, 3.f, 6.f}));
  Tensor rm = Tensor::zeros({2}), rv = Tensor::full({2}, 1.f);
  Variable y = batch_norm(x, {}, {}, rm, rv, true, 0.1f, 0.f);
  EXPECT_NEAR(rm.at(0), 0.2f, 1e-6);
  EXPECT_NEAR(rm.at(1), 0.4f, 1e-6);
  EXPECT_NEAR(rv.at(0), 0.9f + 0.1f * 2.f, 1e-6);
  EXPECT_NEAR(rv.at(1), 0.9f + 0.1f * 8.f, 1e-6);
  EXPECT_NEAR(y.value().at(0), -1.f, 1e-5);
  EXPECT_NEAR(y.value().at(3), 1.f, 1e-5);
  // Eval uses the running statistics.
  Variable e = batch_norm(x, {}, {}, rm, rv, false, 0.1f, 0.f);
  EXPECT_NEAR(e.value().at(0), (1.f - 0.2f) / std::sqrt(1.1f), 1e-5);
}

TEST(Ops, BroadcastShapes) {
  Variable a(Tensor::zeros({2, 1, 4})), b(Tensor::zeros({3, 1}));
  EXPECT_EQ(add(a, b).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(sum(Variable(Tensor::zeros({2, 3})), 1).shape(), (Shape{2}));
  EXPECT_EQ(mean(Variable(Tensor::zeros({2, 3})), 0, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(flatten(Variable(Tensor::zeros({2, 3, 4, 5}))).shape(), (Shape{2, 60}));
}

TEST(Generator, SameSeedSameStreamAndStateRoundTrip) {
  Generator a(42), b(42);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  const auto s = a.state();
  const float u1 = a.uniform(), n1 = a.normal();
  Generator c(1);
  c.set_state(s);
  EXPECT_EQ(c.uniform(), u1);
  EXPECT_EQ(c.normal(), n1);
  Generator d(43);
  EXPECT_NE(Generator(42).next_u64(), d.next_u64());
  for (int i = 0; i < 1000; ++i) {
    const float u = a.uniform();
    ASSERT_GE(u, 0.f);
    ASSERT_LT(u, 1.f);
    ASSERT_LT(a.below(7), 7u);
  }
}

}  // namespace
}  // namespace verdant::autograd
