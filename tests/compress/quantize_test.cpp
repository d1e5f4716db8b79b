#include "verdant/compress/quantize.hpp"

#include <gtest/gtest.h>

#include <random>

namespace vc = verdant::compress;
using verdant::Tensor;

TEST(Quantize, FakeQuantRoundTrip) {
  const auto p = vc::asymmetric_params(-1.0f, 3.0f);
  EXPECT_EQ(p.qmin, 0);
  EXPECT_EQ(p.qmax, 255);
  EXPECT_NEAR(p.scale, 4.0f / 255.0f, 1e-7f);
  std::vector<float> x, out(1001);
  for (int i = 0; i <= 1000; ++i) x.push_back(-1.0f + 4.0f * float(i) / 1000.0f);
  std::vector<std::uint8_t> pass(x.size());
  vc::fake_quantize(x, out, p, pass);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::fabs(out[i] - x[i]), p.scale / 2 + 1e-6f) << x[i];
    EXPECT_EQ(pass[i], 1);
  }
  // Zero is exactly representable; values on the grid survive unchanged.
  std::vector<float> grid = {0.0f, p.scale * 10, -p.scale * float(p.zero_point)}, back(3);
  vc::fake_quantize(grid, back, p);
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(back[i], grid[i]);
  // Quantizing again changes nothing (idempotent).
  std::vector<float> twice(out.size());
  vc::fake_quantize(out, twice, p);
  EXPECT_EQ(twice, out);
}

TEST(Quantize, StraightThroughEstimatorClipsOutsideRange) {
  const auto p = vc::symmetric_params(1.0f);
  std::vector<float> x = {-2.0f, -0.5f, 0.25f, 1.5f}, out(4);
  std::vector<std::uint8_t> pass(4);
  vc::fake_quantize(x, out, p, pass);
  EXPECT_FLOAT_EQ(out[0], -1.0f);
  EXPECT_FLOAT_EQ(out[3], 1.0f);
  std::vector<float> g = {1, 2, 3, 4}, gin(4);
  vc::fake_quantize_backward(g, pass, gin);
  EXPECT_EQ(gin, (std::vector<float>{0, 2, 3, 0}));
}

TEST(Quantize, PerChannelSymmetricInt8) {
  Tensor w = Tensor::from({2, 3}, {0.1f, -0.5f, 0.25f, 10.0f, 2.0f, -3.0f});
  const auto ps = vc::per_channel_params(w);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_FLOAT_EQ(ps[0].scale, 0.5f / 127);
  EXPECT_FLOAT_EQ(ps[1].scale, 10.0f / 127);
  EXPECT_EQ(ps[0].zero_point, 0);
  Tensor q = vc::quantize_per_channel(w, ps);
  EXPECT_EQ(q.data<std::int8_t>()[1], -127);
  EXPECT_EQ(q.data<std::int8_t>()[3], 127);
  Tensor fq = vc::fake_quantize_per_channel(w, ps);
  for (std::int64_t i = 0; i < 6; ++i) {
    const auto& p = ps[i / 3];
    EXPECT_FLOAT_EQ(fq.at(i), p.scale * float(q.data<std::int8_t>()[i]));
    EXPECT_LE(std::fabs(fq.at(i) - w.at(i)), p.scale / 2 + 1e-6f);
  }
}

TEST(Quantize, MovingAverageRange) {
  vc::RangeObserver obs(0.9);
  std::vector<float> a = {-1.0f, 2.0f}, b = {-3.0f, 12.0f};
  obs.observe(a);
  EXPECT_FLOAT_EQ(obs.lo(), -1.0f);
  EXPECT_FLOAT_EQ(obs.hi(), 2.0f);
  obs.observe(b);
  EXPECT_NEAR(obs.lo(), -1.2f, 1e-6f);
  EXPECT_NEAR(obs.hi(), 3.0f, 1e-6f);
  const auto p = obs.params();
  EXPECT_NEAR(p.scale, 4.2f / 255, 1e-6f);
  EXPECT_EQ(p.zero_point, std::lround(1.2f / p.scale));
}

TEST(Quantize, CalibrationMethodsClipOutliers) {
  std::mt19937_64 rng(4);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(20000);
  for (auto& v : x) v = std::fabs(nd(rng));  // a ReLU-like activation
  x[17] = 60.0f;                             // one outlier
  vc::Calibrator mm(vc::Calibration::minmax), pc(vc::Calibration::percentile, 99.9),
      mse(vc::Calibration::mse);
  for (auto* c : {&mm, &pc, &mse}) c->observe(x);
  const auto pm = mm.params(), pp = pc.params(), pe = mse.params();
  EXPECT_NEAR(pm.scale * 255, 60.0f, 1e-3f);
  EXPECT_EQ(pp.zero_point, 0);
  EXPECT_LT(pp.scale * 255, 5.0f);  // the 99.9th percentile of |N(0,1)| is ~3.3
  EXPECT_LT(pe.scale, pm.scale);
  EXPECT_LT(vc::quantization_mse(x, pe), vc::quantization_mse(x, pm));
}
