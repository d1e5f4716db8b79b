// conv2d and pooling forward against plain direct loops.
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.hpp"
#include "verdant/core/error.hpp"

namespace verdant::autograd {
namespace {

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

}  // namespace
}  // namespace verdant::autograd
