#include "verdant/compress/distill.hpp"

#include <gtest/gtest.h>

#include <random>

#include "verdant/core/error.hpp"

namespace vc = verdant::compress;
using verdant::Tensor;

TEST(Distill, GradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0, 2);
  const std::int64_t n = 4, c = 5;
  Tensor s({n, c}, verdant::DType::f32), t({n, c}, verdant::DType::f32);
  for (std::int64_t i = 0; i < n * c; ++i) {
    s.data<float>()[i] = nd(rng);
    t.data<float>()[i] = nd(rng);
  }
  const std::vector<std::int32_t> y = {0, 3, 4, 1};
  for (double alpha : {0.0, 0.3, 1.0}) {
    for (double temp : {1.0, 4.0}) {
      const auto r = vc::kd_loss(s, t, y, alpha, temp);
      for (std::int64_t i = 0; i < n * c; ++i) {
        const float h = 1e-2f, orig = s.at(i);
        s.data<float>()[i] = orig + h;
        const double up = vc::kd_loss(s, t, y, alpha, temp).loss;
        s.data<float>()[i] = orig - h;
        const double down = vc::kd_loss(s, t, y, alpha, temp).loss;
        s.data<float>()[i] = orig;
        const double numeric = (up - down) / (2.0 * h);
        EXPECT_NEAR(r.grad.at(i), numeric, 2e-4 + 1e-3 * std::fabs(numeric))
            << "alpha " << alpha << " T " << temp << " i " << i;
      }
    }
  }
}

TEST(Distill, KlVanishesWhenStudentEqualsTeacher) {
  Tensor s = Tensor::from({1, 3}, {1.0f, 2.0f, 3.0f});
  const std::vector<std::int32_t> y = {2};
  const auto r = vc::kd_loss(s, s.clone(), y, 0.0, 3.0);
  EXPECT_NEAR(r.kl, 0.0, 1e-12);
  EXPECT_NEAR(r.loss, 0.0, 1e-12);
  const auto ce = vc::kd_loss(s, s.clone(), y, 1.0, 3.0);
  EXPECT_NEAR(ce.loss, -std::log(std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0))),
              1e-9);
}

TEST(Distill, TeacherShapeMismatchIsOneLineError) {
  Tensor s = Tensor::zeros({2, 10}), t = Tensor::zeros({2, 5});
  const std::vector<std::int32_t> y = {0, 1};
  try {
    vc::kd_loss(s, t, y, 0.5, 2.0);
    FAIL();
  } catch (const verdant::Error& e) {
    EXPECT_NE(std::string(e.what()).find("teacher output shape [2, 5]"), std::string::npos)
        << e.what();
  }
}
