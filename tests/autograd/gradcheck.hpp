#pragma once
// Central-difference gradient check. The scalar probed is L = sum(f(x) * R) with a fixed
// random R, accumulated in double, so every output element's gradient path is exercised.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "verdant/autograd/ops.hpp"

namespace verdant::autograd::testing {

inline Tensor random_tensor(Shape s, std::uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(std::move(s), DType::f32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

struct GradCheckOptions {
  double step = 1e-2;  // central differences are O(step^2); float32 forward noise ~1e-7/step
  double atol = 2e-3;
  double rtol = 2e-2;
};

using Fn = std::function<Variable(const std::vector<Variable>&)>;

inline double probe(const Fn& f, const std::vector<Variable>& in, const Tensor& r) {
  NoGradGuard g;
  Variable y = f(in);
  double acc = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i)
    acc += static_cast<double>(y.value().at(i)) * r.at(i);
  return acc;
}

// Checks d/d(inputs[i]) for every i with requires_grad.
inline void expect_gradients_match(const Fn& f, std::vector<Variable> inputs,
                                   GradCheckOptions o = {}) {
  Variable y = f(inputs);
  Tensor r = random_tensor(y.shape(), 1234);
  Variable loss = sum(mul(y, Variable(r)));
  loss.backward();
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    Variable& x = inputs[k];
    if (!x.requires_grad()) continue;
    ASSERT_TRUE(x.grad().defined()) << "input " << k << " got no gradient";
    ASSERT_EQ(x.grad().numel(), x.numel());
    float* p = x.value().data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const float saved = p[i];
      p[i] = static_cast<float>(saved + o.step);
      const double plus = probe(f, inputs, r);
      p[i] = static_cast<float>(saved - o.step);
      const double minus = probe(f, inputs, r);
      p[i] = saved;
      const double numeric = (plus - minus) / (2 * o.step);
      const double analytic = x.grad().at(i);
      ASSERT_NEAR(analytic, numeric, o.atol + o.rtol * std::abs(numeric))
          << "input " << k << " element " << i;
    }
  }
}

}  // namespace verdant::autograd::testing
