// Optimizer updates against hand-computed PyTorch formulas; schedules; state round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "verdant/core/error.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"

namespace verdant::nn {
namespace {

Variable param(std::initializer_list<float> v) {
  return Variable(Tensor::from({static_cast<std::int64_t>(v.size())}, v), true);
}
void set_grad(Variable& p, std::initializer_list<float> g) {
  p.set_grad(Tensor::from({static_cast<std::int64_t>(g.size())}, g));
}

TEST(SGD, PlainWithWeightDecay) {
  Variable p = param({1.f, -2.f});
  SGD opt({p}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(p, {0.2f, 0.4f});
  opt.step();
  // p -= lr * (g + wd * p)
  EXPECT_FLOAT_EQ(p.value().at(0), 1.f - 0.1f * (0.2f + 0.5f));
  EXPECT_FLOAT_EQ(p.value().at(1), -2.f - 0.1f * (0.4f - 1.f));
  EXPECT_EQ(opt.step_count(), 1);
}

TEST(SGD, MomentumAndDampening) {
  Variable p = param({1.f});
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  set_grad(p, {1.f});
  opt.step();  // buf = g (first step, no dampening) = 1
  EXPECT_FLOAT_EQ(p.value().at(0), 0.9f);
  set_grad(p, {2.f});
  opt.step();  // buf = 0.9 * 1 + 0.5 * 2 = 1.9
  EXPECT_FLOAT_EQ(p.value().at(0), 0.9f - 0.19f);
  EXPECT_FLOAT_EQ(opt.state_dict()[1].second.at(0), 1.9f);
  EXPECT_EQ(opt.state_dict()[1].first, "0.momentum_buffer");
}

TEST(SGD, Nesterov) {
  Variable p = param({1.f});
  SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
  set_grad(p, {1.f});
  opt.step();
  // d = 1 + 0.1*1 = 1.1; buf = 1.1; update d + 0.9 buf = 2.09
  const float p1 = 1.f - 0.1f * 2.09f;
  EXPECT_FLOAT_EQ(p.value().at(0), p1);
  set_grad(p, {0.5f});
  opt.step();
  const float d = 0.5f + 0.1f * p1, buf = 0.9f * 1.1f + d;
  EXPECT_NEAR(p.value().at(0), p1 - 0.1f * (d + 0.9f * buf), 1e-6);
  EXPECT_THROW(SGD({p}, {.lr = 0.1, .momentum = 0.0, .nesterov = true}), Error);
}

TEST(SGD, SkipsParametersWithoutGradient) {
  Variable p = param({1.f}), q = param({2.f});
  SGD opt({p, q}, {.lr = 1.0});
  set_grad(p, {1.f});
  opt.step();
  EXPECT_FLOAT_EQ(p.value().at(0), 0.f);
  EXPECT_FLOAT_EQ(q.value().at(0), 2.f);
}

TEST(Adam, BiasCorrectedUpdates) {
  Variable p = param({1.f});
  Adam opt({p}, {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8});
  double m = 0, v = 0, w = 1;
  const float grads[] = {0.5f, -0.2f, 0.3f};
  for (int t = 1; t <= 3; ++t) {
    set_grad(p, {grads[t - 1]});
    opt.step();
    m = 0.9 * m + 0.1 * grads[t - 1];
    v = 0.999 * v + 0.001 * grads[t - 1] * grads[t - 1];
    const double mhat = m / (1 - std::pow(0.9, t)), vhat = v / (1 - std::pow(0.999, t));
    w -= 0.01 * mhat / (std::sqrt(vhat) + 1e-8);
    EXPECT_NEAR(p.value().at(0), w, 1e-6) << "step " << t;
  }
  // First step moves by exactly lr (bias correction).
  Variable q = param({0.f});
  Adam o2({q}, {.lr = 0.05});
  set_grad(q, {123.f});
  o2.step();
  EXPECT_NEAR(q.value().at(0), -0.05f, 1e-6);
}

TEST(Adam, L2VersusDecoupledWeightDecay) {
  Variable a = param({2.f}), b = param({2.f});
  Adam adam({a}, {.lr = 0.1, .weight_decay = 0.5});
  AdamW adamw({b}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(a, {0.f});
  set_grad(b, {0.f});
  adam.step();
  adamw.step();
  // Adam: g = 0 + 0.5*2 = 1 -> first step moves by lr.
  EXPECT_NEAR(a.value().at(0), 2.f - 0.1f, 1e-6);
  // AdamW: p *= 1 - lr*wd, and the zero gradient gives no Adam step.
  EXPECT_NEAR(b.value().at(0), 2.f * (1 - 0.05f), 1e-6);
  EXPECT_TRUE(adamw.options().decoupled_weight_decay);
}

TEST(Optimizer, StateRoundTripGivesIdenticalTrajectories) {
  auto run = [](Optimizer& opt, Variable& p, int from, int to) {
    for (int t = from; t < to; ++t) {
      set_grad(p, {std::sin(t * 1.f), std::cos(t * 0.5f)});
      opt.step();
    }
  };
  for (int kind = 0; kind < 2; ++kind) {
    auto make = [kind](Variable& p) -> std::unique_ptr<Optimizer> {
      if (kind == 0)
        return std::make_unique<SGD>(Named<Variable>{{"w", p}},
                                     SGDOptions{.lr = 0.1, .momentum = 0.9});
      return std::make_unique<Adam>(Named<Variable>{{"w", p}}, AdamOptions{.lr = 0.1});
    };
    Variable ref = param({1.f, 2.f});
    auto ref_opt = make(ref);
    run(*ref_opt, ref, 0, 10);

    Variable p = param({1.f, 2.f});
    auto first = make(p);
    run(*first, p, 0, 4);
    // "Checkpoint": deep copies of weights and state.
    Tensor saved_w = p.value().clone();
    Named<Tensor> saved;
    for (auto& [n, t] : first->state_dict()) saved.emplace_back(n, t.clone());

    Variable q(saved_w, true);
    auto resumed = make(q);
    resumed->load_state_dict(saved);
    EXPECT_EQ(resumed->step_count(), 4);
    run(*resumed, q, 4, 10);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(q.value().at(i), ref.value().at(i)) << "kind " << kind;
  }
}

TEST(Optimizer, LoadStateRejectsMismatches) {
  Variable p = param({1.f, 2.f});
  SGD opt(Named<Variable>{{"w", p}}, {.lr = 0.1, .momentum = 0.9});
  auto good = opt.state_dict();
  EXPECT_EQ(good.size(), 2u);
  Named<Tensor> missing{good[0]};
  EXPECT_THROW(opt.load_state_dict(missing), Error);
  Named<Tensor> wrong_shape{good[0], {"w.momentum_buffer", Tensor::zeros({3})}};
  EXPECT_THROW(opt.load_state_dict(wrong_shape), Error);
  Named<Tensor> extra = good;
  extra.emplace_back("x.momentum_buffer", Tensor::zeros({2}));
  EXPECT_THROW(opt.load_state_dict(extra), Error);
  try {
    opt.load_state_dict(missing);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("w.momentum_buffer"), std::string::npos);
  }
}

TEST(Optimizer, ZeroGradReleasesOrZeroesTheGradients) {
  Variable p = param({1.f});
  SGD opt({p}, {.lr = 0.1});
  set_grad(p, {3.f});
  opt.zero_grad(false);
  ASSERT_TRUE(p.grad().defined());
  EXPECT_EQ(p.grad().at(0), 0.f);
  opt.zero_grad();  // PyTorch's default, set_to_none
  EXPECT_FALSE(p.grad().defined());
  // The next backward pass stores its gradient, and a step without one leaves p alone.
  opt.step();
  EXPECT_EQ(p.value().at(0), 1.f);
  autograd::sum(autograd::mul(p, 2.f)).backward();
  EXPECT_EQ(p.grad().at(0), 2.f);
  opt.set_lr(0.5);
  EXPECT_EQ(opt.lr(), 0.5);
}

// Sparse training's case: off the kept positions value, gradient and state are zero, so an
// update restricted to the kept positions must give exactly the full update, for every rule;
// sizes on both sides of the threshold where the restricted loop goes parallel.
TEST(Optimizer, RestrictedUpdatesEqualFullOnesWhereTheRestIsZero) {
  for (const std::int64_t n : {std::int64_t{1000}, std::int64_t{100000}}) {
    auto kept = std::make_shared<std::vector<std::uint32_t>>();
    for (std::int64_t i = 0; i < n; i += 7) kept->push_back(static_cast<std::uint32_t>(i));
    for (int kind = 0; kind < 5; ++kind) {
      auto make = [kind](Variable& p) -> std::unique_ptr<Optimizer> {
        const Named<Variable> ps{{"w", p}};
        switch (kind) {
          case 0:
            return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .weight_decay = 0.01});
          case 1:
            return std::make_unique<SGD>(
                ps, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
          case 2:
            return std::make_unique<SGD>(
                ps, SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
          case 3:
            return std::make_unique<Adam>(ps, AdamOptions{.lr = 0.01, .weight_decay = 0.01});
          default:
            return std::make_unique<AdamW>(ps, AdamOptions{.lr = 0.01});
        }
      };
      Tensor w0 = Tensor::zeros({n});
      for (auto i : *kept) w0.data<float>()[i] = std::sin(0.1f * static_cast<float>(i));
      Variable full(w0.clone(), true), sparse(w0.clone(), true);
      auto full_opt = make(full), sparse_opt = make(sparse);
      sparse_opt->restrict_updates("w", kept);
      for (int t = 0; t < 4; ++t) {
        Tensor g = Tensor::zeros({n});
        for (auto i : *kept) g.data<float>()[i] = std::cos(0.3f * static_cast<float>(i + t));
        full.set_grad(g.clone());
        sparse.set_grad(g);
        full_opt->step();
        sparse_opt->step();
      }
      for (std::int64_t i = 0; i < n; ++i)
        ASSERT_EQ(sparse.value().at(i), full.value().at(i)) << "kind " << kind << " at " << i;
      const auto a = full_opt->state_dict(), b = sparse_opt->state_dict();
      for (std::size_t s = 0; s < a.size(); ++s)
        for (std::int64_t i = 0; a[s].second.dtype() == DType::f32 && i < a[s].second.numel(); ++i)
          ASSERT_EQ(a[s].second.data<float>()[i], b[s].second.data<float>()[i]) << a[s].first;
    }
  }
}

TEST(Optimizer, RestrictedUpdatesLeaveTheRestAndCanBeLifted) {
  Variable p = param({1.f, 2.f, 3.f});
  SGD opt(Named<Variable>{{"w", p}}, {.lr = 0.5});
  opt.restrict_updates(
      "w", std::make_shared<std::vector<std::uint32_t>>(std::vector<std::uint32_t>{0, 2}));
  set_grad(p, {1.f, 1.f, 1.f});
  opt.step();
  EXPECT_EQ(p.value().at(0), 0.5f);
  EXPECT_EQ(p.value().at(1), 2.f);  // not listed: untouched
  EXPECT_EQ(p.value().at(2), 2.5f);
  opt.restrict_updates("w", nullptr);
  opt.step();
  EXPECT_EQ(p.value().at(1), 1.5f);
  opt.restrict_updates("other", nullptr);  // not held: ignored, as in reset_state_at
  auto positions = [](std::vector<std::uint32_t> v) {
    return std::make_shared<std::vector<std::uint32_t>>(std::move(v));
  };
  EXPECT_THROW(opt.restrict_updates("w", positions({2, 0})), Error);  // unsorted
  EXPECT_THROW(opt.restrict_updates("w", positions({0, 3})), Error);  // past the end
}

TEST(Schedules, StepCosineWarmup) {
  StepLR step(1.0, 3, 0.5);
  EXPECT_DOUBLE_EQ(step.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(step.lr(2), 1.0);
  EXPECT_DOUBLE_EQ(step.lr(3), 0.5);
  EXPECT_DOUBLE_EQ(step.lr(7), 0.25);

  CosineLR cos(1.0, 10, 0.1);
  EXPECT_DOUBLE_EQ(cos.lr(0), 1.0);
  EXPECT_NEAR(cos.lr(5), 0.55, 1e-12);
  EXPECT_DOUBLE_EQ(cos.lr(10), 0.1);
  EXPECT_DOUBLE_EQ(cos.lr(20), 0.1);
  EXPECT_GT(cos.lr(3), cos.lr(4));

  auto inner = std::make_shared<CosineLR>(0.4, 10);
  WarmupLR warm(inner, 4, 0.0);
  EXPECT_DOUBLE_EQ(warm.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(warm.lr(2), 0.2);
  EXPECT_DOUBLE_EQ(warm.lr(4), 0.4);
  EXPECT_DOUBLE_EQ(warm.lr(9), inner->lr(5));
  WarmupLR warm_step(std::make_shared<StepLR>(0.1, 2), 2, 0.5);
  EXPECT_DOUBLE_EQ(warm_step.lr(0), 0.05);
  EXPECT_DOUBLE_EQ(warm_step.lr(4), 0.01);
  EXPECT_DOUBLE_EQ(ConstantLR(0.3).lr(99), 0.3);

  EXPECT_THROW(StepLR(1.0, 0), Error);
  EXPECT_THROW(CosineLR(1.0, 0), Error);
  EXPECT_THROW(WarmupLR(nullptr, 3), Error);
}

TEST(Schedules, RestartsEndEveryCycleAndTheRunAtTheMinimum) {
  // 15 epochs of 10 steps, first cycle 4 epochs, doubling: the 8-epoch cycle would be followed
  // by a 16-epoch one that does not fit, so the second cycle runs to the end (steps 40-150).
  CosineRestartsLR sgdr(1.0, 40, 2, 150, 0.1);
  EXPECT_EQ(sgdr.cycle_starts(), (std::vector<std::int64_t>{0, 40}));
  const CosineLR first(1.0, 40, 0.1), second(1.0, 110, 0.1);
  for (std::int64_t t = 0; t < 40; ++t) EXPECT_DOUBLE_EQ(sgdr.lr(t), first.lr(t)) << t;
  for (std::int64_t t = 40; t < 150; ++t) EXPECT_DOUBLE_EQ(sgdr.lr(t), second.lr(t - 40)) << t;
  EXPECT_DOUBLE_EQ(sgdr.lr(150), 0.1);
  EXPECT_LT(sgdr.lr(39), 0.11);  // the first cycle ends near the minimum, then restarts
  EXPECT_DOUBLE_EQ(sgdr.lr(40), 1.0);

  // Equal cycles (torch's T_mult = 1): the remainder joins the last whole cycle.
  EXPECT_EQ(CosineRestartsLR(1.0, 4, 1, 15).cycle_starts(), (std::vector<std::int64_t>{0, 4, 8}));
  // Cycles that fit exactly: 3 + 6 + 12.
  EXPECT_EQ(CosineRestartsLR(1.0, 3, 2, 21).cycle_starts(), (std::vector<std::int64_t>{0, 3, 9}));
  // A run shorter than two cycles is one cosine.
  const CosineRestartsLR short_run(1.0, 40, 2, 100);
  EXPECT_EQ(short_run.cycle_starts(), (std::vector<std::int64_t>{0}));
  for (std::int64_t t = 0; t <= 100; ++t)
    EXPECT_DOUBLE_EQ(short_run.lr(t), CosineLR(1.0, 100).lr(t)) << t;

  // A factor too large for the run's length: one cycle, no overflow.
  EXPECT_EQ(CosineRestartsLR(1.0, 4, std::numeric_limits<std::int64_t>::max(), 15).cycle_starts(),
            (std::vector<std::int64_t>{0}));
  EXPECT_THROW(CosineRestartsLR(1.0, 0, 2, 10), Error);
  EXPECT_THROW(CosineRestartsLR(1.0, 4, 0, 10), Error);
  EXPECT_THROW(CosineRestartsLR(1.0, 4, 2, 0), Error);
}

}  // namespace
}  // namespace verdant::nn
