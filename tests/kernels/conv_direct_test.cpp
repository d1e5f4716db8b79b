// The direct one-channel-per-group convolution kernels against plain loops in double: every
// row split the forward kernel has (three, two and one vectors, and a scalar tail), every tap
// group size of the weight gradient, short filter runs, padding, depthwise multipliers.
#include "verdant/kernels/conv_direct.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace verdant::kernels {
namespace {

struct Case {
  std::int64_t batch, channels, multiplier, height, width, kernel, pad;
};

std::string describe(const Case& c) {
  return "batch " + std::to_string(c.batch) + " channels " + std::to_string(c.channels) + " x" +
         std::to_string(c.multiplier) + " " + std::to_string(c.height) + "x" +
         std::to_string(c.width) + " kernel " + std::to_string(c.kernel) + " pad " +
         std::to_string(c.pad);
}

ConvGeometry geometry(const Case& c) {
  ConvGeometry g;
  g.batch = c.batch;
  g.channels = c.channels;
  g.height = c.height;
  g.width = c.width;
  g.kernel_h = g.kernel_w = c.kernel;
  g.pad_h = g.pad_w = c.pad;
  return g;
}

// Calls f(n, oc, oy, ox, input index, tap) for every tap that reads inside the input.
template <typename F>
void each_tap(const ConvGeometry& g, std::int64_t oc_n, F f) {
  const std::int64_t m = oc_n / g.channels, k = g.kernel_h;
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t oc = 0; oc < oc_n; ++oc)
      for (std::int64_t oy = 0; oy < g.out_h(); ++oy)
        for (std::int64_t ox = 0; ox < g.out_w(); ++ox)
          for (std::int64_t ky = 0; ky < k; ++ky)
            for (std::int64_t kx = 0; kx < k; ++kx) {
              const std::int64_t iy = oy - g.pad_h + ky, ix = ox - g.pad_w + kx;
              if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
              f(n, oc, oy, ox, ((n * g.channels + oc / m) * g.height + iy) * g.width + ix,
                ky * k + kx);
            }
}

void expect_close(const std::vector<float>& got, const std::vector<double>& ref,
                  const std::string& what) {
  double scale = 1, worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::abs(ref[i]));
    worst = std::max(worst, std::abs(got[i] - ref[i]));
  }
  EXPECT_LE(worst, 1e-5 * scale) << what;
}

TEST(ConvDirect, ForwardAndWeightGradientMatchPlainLoops) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  auto random = [&](std::size_t n) {
    std::vector<float> v(n);
    for (auto& e : v) e = d(gen);
    return v;
  };
  int cases = 0;
  // Output widths 24, 16, 8 + tail, tail only, 30 (3 + 0 vectors + 6), kernels of one to seven
  // taps per row (tap groups 1-4 and 4 + 3), one to nine filters per plane.
  for (const Case& c :
       {Case{2, 1, 20, 28, 28, 5, 0}, Case{1, 1, 3, 20, 20, 5, 0}, Case{3, 1, 9, 12, 13, 3, 1},
        Case{1, 1, 5, 6, 7, 1, 0}, Case{2, 3, 1, 9, 30, 1, 0}, Case{2, 4, 2, 11, 28, 3, 1},
        Case{1, 2, 5, 10, 31, 7, 2}, Case{2, 3, 3, 8, 18, 2, 1}, Case{1, 1, 4, 9, 12, 6, 2},
        Case{0, 1, 4, 9, 12, 3, 0}}) {
    const ConvGeometry g = geometry(c);
    const std::int64_t oc = c.channels * c.multiplier, taps = c.kernel * c.kernel;
    const std::int64_t out_plane = g.out_h() * g.out_w();
    ASSERT_TRUE(conv2d_direct_applies(g, oc, c.channels)) << describe(c);
    const auto x = random(static_cast<std::size_t>(c.batch * c.channels * c.height * c.width));
    const auto w = random(static_cast<std::size_t>(oc * taps));
    const auto b = random(static_cast<std::size_t>(oc));
    const auto dy = random(static_cast<std::size_t>(c.batch * oc * out_plane));

    std::vector<double> y_ref(dy.size()), dw_ref(w.size(), 0.0), db_ref(b.size(), 0.0);
    for (std::int64_t n = 0; n < c.batch; ++n)
      for (std::int64_t o = 0; o < oc; ++o)
        for (std::int64_t i = 0; i < out_plane; ++i) {
          y_ref[(n * oc + o) * out_plane + i] = b[o];
          db_ref[o] += dy[(n * oc + o) * out_plane + i];
        }
    each_tap(g, oc, [&](auto n, auto o, auto oy, auto ox, auto xi, auto t) {
      const std::int64_t yi = (n * oc + o) * out_plane + oy * g.out_w() + ox;
      y_ref[yi] += static_cast<double>(x[xi]) * w[o * taps + t];
      dw_ref[o * taps + t] += static_cast<double>(x[xi]) * dy[yi];
    });

    std::vector<float> y(dy.size(), NAN), dw(w.size(), NAN), db(b.size(), NAN);
    conv2d_direct_forward(g, oc, x.data(), w.data(), b.data(), y.data());
    conv2d_direct_backward_weights(g, oc, x.data(), dy.data(), dw.data(), db.data());
    expect_close(y, y_ref, "forward, " + describe(c));
    expect_close(dw, dw_ref, "weights, " + describe(c));
    expect_close(db, db_ref, "bias, " + describe(c));

    // Without a bias: the forward starts from zero and the bias gradient is not written.
    for (std::size_t i = 0; i < y_ref.size(); ++i) y_ref[i] -= b[i / out_plane % oc];
    conv2d_direct_forward(g, oc, x.data(), w.data(), nullptr, y.data());
    conv2d_direct_backward_weights(g, oc, x.data(), dy.data(), dw.data(), nullptr);
    expect_close(y, y_ref, "forward without bias, " + describe(c));
    expect_close(dw, dw_ref, "weights without bias, " + describe(c));
    ++cases;
  }
  EXPECT_EQ(cases, 10);
}

TEST(ConvDirect, AppliesOnlyToOneChannelPerGroupAtStrideOne) {
  ConvGeometry g = geometry({1, 1, 4, 9, 9, 3, 1});
  EXPECT_TRUE(conv2d_direct_applies(g, 4, 1));
  g.channels = 2;
  EXPECT_FALSE(conv2d_direct_applies(g, 4, 1));  // two channels in one group
  EXPECT_TRUE(conv2d_direct_applies(g, 4, 2));   // depthwise
  g.stride_w = 2;
  EXPECT_FALSE(conv2d_direct_applies(g, 4, 2));
  g.stride_w = 1;
  g.dilation_h = 2;
  EXPECT_FALSE(conv2d_direct_applies(g, 4, 2));
}

}  // namespace
}  // namespace verdant::kernels
