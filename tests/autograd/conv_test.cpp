// conv2d and pooling forward against plain direct loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "gradcheck.hpp"
#include "verdant/core/error.hpp"
#include "verdant/kernels/conv.hpp"

namespace verdant::autograd {
namespace {

// oneDNN against the im2col twin: the largest difference, relative to the largest magnitude
// of the twin's tensor (float sums in another order differ by a few ulps of the largest term).
constexpr double kTwinRelTol = 1e-4;

Tensor direct_conv(const Tensor& x, const Tensor& w, const Tensor& b, int s, int p, int d = 1,
                   int groups = 1) {
  const auto N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const auto O = w.dim(0), K = w.dim(2), CG = C / groups, OG = O / groups;
  const auto span = d * (K - 1) + 1;
  const auto OH = (H + 2 * p - span) / s + 1, OW = (W + 2 * p - span) / s + 1;
  Tensor y({N, O, OH, OW}, DType::f32);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o)
      for (int oy = 0; oy < OH; ++oy)
        for (int ox = 0; ox < OW; ++ox) {
          double acc = b.at(o);
          for (int cg = 0; cg < CG; ++cg)
            for (int ky = 0; ky < K; ++ky)
              for (int kx = 0; kx < K; ++kx) {
                const int c = static_cast<int>(o / OG * CG + cg);
                const int iy = oy * s - p + ky * d, ix = ox * s - p + kx * d;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += static_cast<double>(x.at(((n * C + c) * H + iy) * W + ix)) *
                       w.at(((o * CG + cg) * K + ky) * K + kx);
              }
          y.data<float>()[((n * O + o) * OH + oy) * OW + ox] = static_cast<float>(acc);
        }
  return y;
}

TEST(Conv2d, ForwardMatchesDirectConvolution) {
  struct Case {
    Shape x, w;
    int s, p, d = 1, groups = 1;
  };
  for (const Case& c :
       {Case{{2, 1, 28, 28}, {20, 1, 5, 5}, 1, 0}, Case{{3, 4, 9, 7}, {5, 4, 3, 3}, 2, 1},
        Case{{1, 2, 5, 5}, {3, 2, 5, 5}, 1, 2}, Case{{2, 3, 11, 10}, {4, 3, 3, 3}, 1, 1, 2},
        Case{{2, 6, 8, 8}, {6, 1, 3, 3}, 1, 1, 1, 6},
        Case{{1, 4, 9, 9}, {8, 2, 3, 3}, 2, 2, 2, 2}}) {
    Tensor x = testing::random_tensor(c.x, 1), w = testing::random_tensor(c.w, 2),
           b = testing::random_tensor({c.w[0]}, 3);
    Variable y =
        conv2d(Variable(x), Variable(w), Variable(b), Conv2dParams(c.s, c.p, c.d, c.groups));
    Tensor ref = direct_conv(x, w, b, c.s, c.p, c.d, c.groups);
    ASSERT_EQ(y.shape(), ref.shape());
    for (std::int64_t i = 0; i < ref.numel(); ++i)
      ASSERT_NEAR(y.value().at(i), ref.at(i), 1e-4) << i;
  }
}

TEST(Conv2d, GroupsThatDoNotDivideTheChannelsAreOneLineErrors) {
  Variable x(Tensor::zeros({1, 4, 5, 5})), w(Tensor::zeros({3, 2, 3, 3}));
  EXPECT_THROW(conv2d(x, w, {}, Conv2dParams(1, 0, 1, 3)), Error);  // 4 channels, 3 groups
  EXPECT_THROW(conv2d(x, w, {}, Conv2dParams(1, 0, 1, 2)), Error);  // 3 filters, 2 groups
}

// Selects a conv2d path for one scope.
class PathGuard {
 public:
  explicit PathGuard(kernels::ConvPath p) : saved_(kernels::conv_path()) {
    kernels::set_conv_path(p);
  }
  ~PathGuard() { kernels::set_conv_path(saved_); }
  PathGuard(const PathGuard&) = delete;
  PathGuard& operator=(const PathGuard&) = delete;

 private:
  kernels::ConvPath saved_;
};

struct ConvResult {
  Tensor y, dx, dw, db;
};

ConvResult run_conv(kernels::ConvPath path, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Conv2dParams& p, std::uint32_t seed) {
  PathGuard guard(path);
  Variable vx(x.clone(), true), vw(w.clone(), true), vb(b.clone(), true);
  Variable y = conv2d(vx, vw, vb, p);
  y.backward(testing::random_tensor(y.shape(), seed));
  return {y.value(), vx.grad(), vw.grad(), vb.grad()};
}

void expect_twin(const Tensor& got, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(got.shape(), ref.shape()) << what;
  double scale = 1, worst = 0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    scale = std::max(scale, static_cast<double>(std::abs(ref.at(i))));
    worst = std::max(worst, static_cast<double>(std::abs(got.at(i) - ref.at(i))));
  }
  EXPECT_LE(worst, kTwinRelTol * scale) << what;
}

TEST(ConvDnnl, MatchesTheIm2colTwinInAllDirections) {
  int cases = 0;
  std::uint32_t seed = 1;
  for (int s : {1, 2})
    for (int pad : {0, 1, 2})
      for (int d : {1, 2})
        for (std::int64_t n : {1, 7})
          for (std::int64_t c : {1, 3, 6, 16})
            for (std::int64_t k : {1, 3, 5})
              for (int gi = 0; gi < 3; ++gi) {  // plain, two groups, depthwise
                const std::int64_t groups = gi == 0 ? 1 : gi == 1 ? 2 : c;
                if (c % groups != 0 || (gi > 0 && groups == 1)) continue;
                const std::int64_t H = 11, W = 9, span = d * (k - 1) + 1;
                if (H + 2 * pad < span || W + 2 * pad < span) continue;
                const std::int64_t oc = groups == 1 ? 5 : 2 * groups;
                Tensor x = testing::random_tensor({n, c, H, W}, ++seed);
                Tensor w = testing::random_tensor({oc, c / groups, k, k}, ++seed);
                Tensor b = testing::random_tensor({oc}, ++seed);
                const Conv2dParams p(s, pad, d, groups);
                const ConvResult ref = run_conv(kernels::ConvPath::im2col, x, w, b, p, seed);
                const ConvResult got = run_conv(kernels::ConvPath::dnnl, x, w, b, p, seed);
                const std::string what = "stride " + std::to_string(s) + " pad " +
                                         std::to_string(pad) + " dilation " + std::to_string(d) +
                                         " batch " + std::to_string(n) + " channels " +
                                         std::to_string(c) + " kernel " + std::to_string(k) +
                                         " groups " + std::to_string(groups);
                expect_twin(got.y, ref.y, "forward, " + what);
                expect_twin(got.dx, ref.dx, "backward-data, " + what);
                expect_twin(got.dw, ref.dw, "backward-weights, " + what);
                expect_twin(got.db, ref.db, "bias, " + what);
                ++cases;
              }
  EXPECT_GT(cases, 300);
}

// Only the gradients asked for: the weight alone, the bias alone, the input alone; padded
// (oneDNN's primitives) and unpadded (per-image im2col + GEMM).
TEST(ConvDnnl, PartialGradientsMatchTheTwin) {
  Tensor x = testing::random_tensor({3, 4, 10, 10}, 1), w = testing::random_tensor({6, 4, 3, 3}, 2),
         b = testing::random_tensor({6}, 3);
  for (int pad : {1, 0})
    for (int which = 0; which < 3; ++which) {
      const Tensor r = testing::random_tensor({3, 6, 8 + 2 * pad, 8 + 2 * pad}, 4);
      Tensor grads[2];
      for (int pass = 0; pass < 2; ++pass) {
        PathGuard guard(pass == 0 ? kernels::ConvPath::im2col : kernels::ConvPath::dnnl);
        Variable vx(x, which == 0), vw(w, which == 1), vb(b, which == 2);
        conv2d(vx, vw, vb, Conv2dParams(1, pad)).backward(r);
        grads[pass] = which == 0 ? vx.grad() : which == 1 ? vw.grad() : vb.grad();
        if (which != 0) EXPECT_FALSE(vx.grad().defined());
        if (which != 1) EXPECT_FALSE(vw.grad().defined());
      }
      expect_twin(grads[1], grads[0],
                  "gradient " + std::to_string(which) + " pad " + std::to_string(pad));
    }
}

TEST(ConvDnnl, GradientChecksPassOnBothPaths) {
  for (auto path : {kernels::ConvPath::dnnl, kernels::ConvPath::im2col}) {
    PathGuard guard(path);
    testing::expect_gradients_match(
        [](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dParams(2, 1, 2)); },
        {Variable(testing::random_tensor({2, 3, 7, 7}, 5), true),
         Variable(testing::random_tensor({4, 3, 3, 3}, 6), true),
         Variable(testing::random_tensor({4}, 7), true)});
  }
}

TEST(Pooling, ForwardValues) {
  Tensor x = Tensor::from({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  Variable m = max_pool2d(Variable(x), 2);
  EXPECT_EQ(m.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(m.value().at(0), 6.f);
  EXPECT_EQ(m.value().at(3), 16.f);
  Variable a = avg_pool2d(Variable(x), 2);
  EXPECT_FLOAT_EQ(a.value().at(0), 3.5f);
  EXPECT_FLOAT_EQ(a.value().at(3), 13.5f);
  // Padding: avg counts padded zeros (count_include_pad), max ignores them.
  Variable ap = avg_pool2d(Variable(x), 2, 2, 1);
  EXPECT_EQ(ap.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_FLOAT_EQ(ap.value().at(0), 0.25f);
  Variable mp = max_pool2d(Variable(Tensor::full({1, 1, 2, 2}, -5.f)), 2, 2, 1);
  EXPECT_FLOAT_EQ(mp.value().at(0), -5.f);
}

TEST(Pooling, MaxPoolPropagatesNaNInBothPaths) {
  for (int where = 0; where < 4; ++where) {
    Tensor x = Tensor::from({1, 1, 2, 2}, {1.f, 2.f, 3.f, 4.f});
    x.data<float>()[where] = std::nanf("");
    EXPECT_TRUE(std::isnan(max_pool2d(Variable(x), 2).value().at(0))) << where;     // fast path
    EXPECT_TRUE(std::isnan(max_pool2d(Variable(x), 2, 1).value().at(0))) << where;  // generic
  }
}

// The fused op against its definition, max_pool2d(relu(x)), to the bit: values and input
// gradients, on both pool paths, with negative, zero, tied and NaN windows.
TEST(Pooling, ReluMaxPoolIsMaxPoolOfRelu) {
  Tensor x = testing::random_tensor({2, 3, 8, 8}, 11);
  float* p = x.data<float>();
  for (int i = 0; i < 4; ++i) p[i] = -1.f - static_cast<float>(i);  // a negative window
  p[8 * 8 + 0] = p[8 * 8 + 1] = p[8 * 8 + 8] = p[8 * 8 + 9] = 0.f;  // a zero window
  p[2 * 64 + 2] = p[2 * 64 + 3] = 0.7f;                             // a tie
  p[3 * 64 + 10] = std::nanf("");                                   // a NaN
  for (auto [k, s, pad] : {std::tuple{2, 2, 0}, std::tuple{3, 2, 1}, std::tuple{2, 1, 0}}) {
    Variable a(x, true), b(x, true);
    Variable fused = relu_max_pool2d(a, k, s, pad);
    Variable plain = max_pool2d(relu(b), k, s, pad);
    ASSERT_EQ(fused.shape(), plain.shape());
    const Tensor upstream = testing::random_tensor(fused.shape(), 12);
    fused.backward(upstream);
    plain.backward(upstream);
    for (std::int64_t i = 0; i < fused.value().numel(); ++i)
      ASSERT_EQ(fused.value().at(i), plain.value().at(i)) << "value " << i << " k " << k;
    for (std::int64_t i = 0; i < x.numel(); ++i)
      ASSERT_EQ(a.grad().at(i), b.grad().at(i)) << "gradient " << i << " k " << k;
  }
}

}  // namespace
}  // namespace verdant::autograd
