// The per-image im2col + GEMM convolution against the batched reference twins (im2col_reference
// and sgemm_reference over the whole batch), in all three directions, on one and two threads:
// output widths of one vector, vectors + tail and tail only, a 1x1 kernel, padding (rows and
// row ends in it, a kernel wider than the image, a one-pixel-wide image), a batch smaller than the
// thread count (an idle thread's weight-gradient copy must count as zero) and an empty one.
#include "verdant/kernels/conv_gemm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "verdant/core/threading.hpp"
#include "verdant/kernels/gemm.hpp"

namespace verdant::kernels {
namespace {

struct Case {
  std::int64_t batch, channels, height, width, out_channels, kernel, pad;
};

void expect_close(const std::vector<float>& got, const std::vector<float>& ref,
                  const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double scale = 1, worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::abs(ref[i])));
    worst = std::max(worst, static_cast<double>(std::abs(got[i] - ref[i])));
  }
  EXPECT_LE(worst, 1e-5 * scale) << what;
}

TEST(ConvGemm, AllDirectionsMatchTheBatchedReference) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  auto random = [&](std::int64_t n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& e : v) e = d(gen);
    return v;
  };
  const int saved_threads = num_threads();
  for (int threads : {1, 2})
    for (const Case& c :
         {Case{2, 20, 12, 12, 50, 5, 0}, Case{1, 3, 11, 9, 5, 3, 0}, Case{5, 2, 7, 20, 4, 2, 0},
          Case{3, 4, 6, 6, 3, 1, 0}, Case{2, 3, 16, 16, 6, 3, 1}, Case{3, 2, 5, 11, 3, 5, 2},
          Case{1, 2, 3, 4, 2, 5, 2}, Case{2, 2, 3, 1, 3, 3, 1}, Case{0, 3, 8, 8, 2, 3, 1}}) {
      set_num_threads(threads);
      ConvGeometry g;
      g.batch = c.batch;
      g.channels = c.channels;
      g.height = c.height;
      g.width = c.width;
      g.kernel_h = g.kernel_w = c.kernel;
      g.pad_h = g.pad_w = c.pad;
      ASSERT_TRUE(conv2d_gemm_applies(g, 1));
      const std::int64_t oc = c.out_channels, ckk = g.col_rows(), np = g.col_cols();
      const std::int64_t plane = g.out_h() * g.out_w();
      const std::string what = "batch " + std::to_string(c.batch) + " channels " +
                               std::to_string(c.channels) + " " + std::to_string(c.height) + "x" +
                               std::to_string(c.width) + " kernel " + std::to_string(c.kernel) +
                               " pad " + std::to_string(c.pad) + ", " + std::to_string(threads) +
                               " threads";
      const auto x = random(c.batch * c.channels * c.height * c.width);
      const auto w = random(oc * ckk), b = random(oc), dy = random(c.batch * oc * plane);

      // The reference: [OC, N*P] products over the whole batch's columns.
      std::vector<float> cols(static_cast<std::size_t>(ckk * np)), dy2(dy.size());
      im2col_reference(x.data(), g, cols.data());
      for (std::int64_t n = 0; n < c.batch; ++n)
        for (std::int64_t o = 0; o < oc; ++o)
          std::copy_n(dy.data() + (n * oc + o) * plane, plane, dy2.data() + o * np + n * plane);
      std::vector<float> y2(dy.size()), y_ref(dy.size()), dcols(cols.size()), dx_ref(x.size());
      std::vector<float> dw_ref(w.size()), db_ref(b.size(), 0.f);
      sgemm_reference(false, false, oc, np, ckk, 1.f, w.data(), ckk, cols.data(), np, 0.f,
                      y2.data(), np);
      for (std::int64_t n = 0; n < c.batch; ++n)
        for (std::int64_t o = 0; o < oc; ++o)
          for (std::int64_t p = 0; p < plane; ++p) {
            y_ref[(n * oc + o) * plane + p] = y2[o * np + n * plane + p] + b[o];
            db_ref[o] += dy[(n * oc + o) * plane + p];
          }
      sgemm_reference(true, false, ckk, np, oc, 1.f, w.data(), ckk, dy2.data(), np, 0.f,
                      dcols.data(), np);
      if (c.batch > 0) col2im_reference(dcols.data(), g, dx_ref.data());  // memsets its output
      sgemm_reference(false, true, oc, ckk, np, 1.f, dy2.data(), np, cols.data(), np, 0.f,
                      dw_ref.data(), ckk);

      std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN), dw(w.size(), NAN), db(b.size(), NAN);
      conv2d_gemm_forward(g, oc, x.data(), w.data(), b.data(), y.data());
      conv2d_gemm_backward_data(g, oc, w.data(), dy.data(), dx.data());
      conv2d_gemm_backward_weights(g, oc, x.data(), dy.data(), dw.data(), db.data());
      expect_close(y, y_ref, "forward, " + what);
      expect_close(dx, dx_ref, "backward-data, " + what);
      expect_close(dw, dw_ref, "backward-weights, " + what);
      expect_close(db, db_ref, "bias, " + what);

      // Without a bias: the forward starts from zero and no bias gradient is written.
      for (std::size_t i = 0; i < y_ref.size(); ++i) y_ref[i] -= b[i / plane % oc];
      conv2d_gemm_forward(g, oc, x.data(), w.data(), nullptr, y.data());
      conv2d_gemm_backward_weights(g, oc, x.data(), dy.data(), dw.data(), nullptr);
      expect_close(y, y_ref, "forward without bias, " + what);
      expect_close(dw, dw_ref, "backward-weights without bias, " + what);
    }
  set_num_threads(saved_threads);
}

TEST(ConvGemm, AppliesOnlyUngroupedAtStrideOneWithoutDilation) {
  ConvGeometry g;
  g.channels = 4;
  g.height = g.width = 9;
  g.kernel_h = g.kernel_w = 3;
  EXPECT_TRUE(conv2d_gemm_applies(g, 1));
  EXPECT_FALSE(conv2d_gemm_applies(g, 2));
  for (std::int64_t* field : {&g.stride_h, &g.stride_w, &g.dilation_h, &g.dilation_w}) {
    *field = 2;
    EXPECT_FALSE(conv2d_gemm_applies(g, 1));
    *field = 1;
  }
  g.pad_h = g.pad_w = 1;
  EXPECT_TRUE(conv2d_gemm_applies(g, 1));
}

}  // namespace
}  // namespace verdant::kernels
