// Direct convolution for one input channel per group. The input planes get their padding
// made explicit once per call, so every tap of every output reads inside a plane and the hot
// loops have no bounds checks: a forward row is the sum over taps of a shifted input row
// times a broadcast weight, and a weight gradient is the dot product of an output-gradient
// plane with a shifted input plane.
#include "verdant/kernels/conv_direct.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "simd.hpp"

namespace verdant::kernels {
namespace {

using detail::kLanes;
using detail::v8;

constexpr int kForwardFilters = 4;  // filters sharing each input load in the forward pass
constexpr int kGradFilters = 2;     // and in the weight gradient
constexpr int kTapGroup = 5;        // weight-gradient taps of one kernel row held at once

// The planes [planes, H, W] with zero padding around each: [planes, PH, PW].
class PaddedPlanes {
 public:
  PaddedPlanes(const float* x, std::int64_t planes, const ConvGeometry& g)
      : x_(x), ph_(g.height + 2 * g.pad_h), pw_(g.width + 2 * g.pad_w) {
    if (g.pad_h == 0 && g.pad_w == 0) return;
    storage_.assign(static_cast<std::size_t>(planes * ph_ * pw_), 0.f);
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t y = 0; y < g.height; ++y)
        std::memcpy(storage_.data() + (p * ph_ + y + g.pad_h) * pw_ + g.pad_w,
                    x + (p * g.height + y) * g.width,
                    static_cast<std::size_t>(g.width) * sizeof(float));
  }
  const float* plane(std::int64_t p) const {
    return (storage_.empty() ? x_ : storage_.data()) + p * ph_ * pw_;
  }
  std::int64_t row_stride() const { return pw_; }

 private:
  const float* x_;
  std::int64_t ph_, pw_;
  std::vector<float> storage_;
};

// y[f][at, at + 8 * NV) = init[f] + sum over taps of w[f][tap] * the input row segment under
// it, for F filters.
template <int F, int NV>
[[gnu::always_inline]] inline void forward_segment(const float* src, std::int64_t pw,
                                                   std::int64_t kh, std::int64_t kw,
                                                   const float* const* w, const float* init,
                                                   float* const* y, std::int64_t at) {
  v8 acc[F][NV];
  for (int f = 0; f < F; ++f)
    for (int v = 0; v < NV; ++v) acc[f][v] = v8{} + init[f];
  for (std::int64_t ky = 0; ky < kh; ++ky)
    for (std::int64_t kx = 0; kx < kw; ++kx) {
      const float* s = src + ky * pw + kx;
      v8 xv[NV];
      for (int v = 0; v < NV; ++v) xv[v] = VERDANT_LOAD(s + v * kLanes);
      const std::int64_t t = ky * kw + kx;
      for (int f = 0; f < F; ++f) {
        const float wf = w[f][t];
        for (int v = 0; v < NV; ++v) acc[f][v] += wf * xv[v];
      }
    }
  for (int f = 0; f < F; ++f)
    for (int v = 0; v < NV; ++v) VERDANT_STORE(y[f] + at + v * kLanes, acc[f][v]);
}

// The [OH, OW] outputs of F filters over one padded plane: rows in runs of three, two or one
// vectors, then a scalar tail.
template <int F>
[[gnu::always_inline]] inline void forward_rows(const float* src, std::int64_t pw, std::int64_t oh,
                                                std::int64_t ow, std::int64_t kh, std::int64_t kw,
                                                const float* const* w, const float* init,
                                                float* const* y) {
  constexpr std::int64_t step = 3 * kLanes;
  for (std::int64_t oy = 0; oy < oh; ++oy) {
    const float* row = src + oy * pw;
    const std::int64_t at = oy * ow;
    std::int64_t ox = 0;
    for (; ox + step <= ow; ox += step)
      forward_segment<F, 3>(row + ox, pw, kh, kw, w, init, y, at + ox);
    if (ow - ox >= 2 * kLanes) {
      forward_segment<F, 2>(row + ox, pw, kh, kw, w, init, y, at + ox);
      ox += 2 * kLanes;
    } else if (ow - ox >= kLanes) {
      forward_segment<F, 1>(row + ox, pw, kh, kw, w, init, y, at + ox);
      ox += kLanes;
    }
    for (; ox < ow; ++ox)
      for (int f = 0; f < F; ++f) {
        float s = init[f];
        for (std::int64_t ky = 0; ky < kh; ++ky)
          for (std::int64_t kx = 0; kx < kw; ++kx) s += w[f][ky * kw + kx] * row[ky * pw + ox + kx];
        y[f][at + ox] = s;
      }
  }
}

VERDANT_CLONES
void forward_plane(int filters, const float* src, std::int64_t pw, std::int64_t oh, std::int64_t ow,
                   std::int64_t kh, std::int64_t kw, const float* const* w, const float* init,
                   float* const* y) {
  switch (filters) {
    case 4:
      forward_rows<4>(src, pw, oh, ow, kh, kw, w, init, y);
      break;
    case 3:
      forward_rows<3>(src, pw, oh, ow, kh, kw, w, init, y);
      break;
    case 2:
      forward_rows<2>(src, pw, oh, ow, kh, kw, w, init, y);
      break;
    default:
      forward_rows<1>(src, pw, oh, ow, kh, kw, w, init, y);
      break;
  }
}

// For taps t = ky * kw + kx0 + j, j < NK, of F filters: acc[f][t] += the lane-wise products
// of the output gradient's vector columns with the shifted input, tail[f][t] += the rest of
// the row.
template <int F, int NK>
[[gnu::always_inline]] inline void grad_taps(const float* src, std::int64_t pw, std::int64_t oh,
                                             std::int64_t ow, std::int64_t ky, std::int64_t kx0,
                                             std::int64_t kw, const float* const* dy,
                                             float* const* acc, float* const* tail) {
  const std::int64_t full = ow / kLanes * kLanes, t = ky * kw + kx0;
  v8 a[F][NK];
  for (int f = 0; f < F; ++f)
    for (int j = 0; j < NK; ++j) a[f][j] = VERDANT_LOAD(acc[f] + (t + j) * kLanes);
  for (std::int64_t oy = 0; oy < oh; ++oy) {
    const float* s = src + (oy + ky) * pw + kx0;
    const std::int64_t at = oy * ow;
    for (std::int64_t ox = 0; ox < full; ox += kLanes) {
      v8 g[F];
      for (int f = 0; f < F; ++f) g[f] = VERDANT_LOAD(dy[f] + at + ox);
      for (int j = 0; j < NK; ++j) {
        const v8 xv = VERDANT_LOAD(s + ox + j);
        for (int f = 0; f < F; ++f) a[f][j] += g[f] * xv;
      }
    }
  }
  // The columns past the last whole vector, in a pass of their own: scalar work inside the
  // loop above would take registers its accumulators need.
  for (std::int64_t oy = 0; full < ow && oy < oh; ++oy) {
    const float* s = src + (oy + ky) * pw + kx0;
    for (std::int64_t ox = full; ox < ow; ++ox)
      for (int f = 0; f < F; ++f)
        for (int j = 0; j < NK; ++j) tail[f][t + j] += dy[f][oy * ow + ox] * s[ox + j];
  }
  for (int f = 0; f < F; ++f)
    for (int j = 0; j < NK; ++j) VERDANT_STORE(acc[f] + (t + j) * kLanes, a[f][j]);
}

// One image's share of F filters' weight gradients: acc[f][tap] (vectors) and tail[f][tap]
// (scalars) accumulate over the images. A kernel row is taken in groups of up to kTapGroup
// taps, each group size with its own loop: taps past the row would read past the plane.
template <int F>
[[gnu::always_inline]] inline void grad_rows(const float* src, std::int64_t pw, std::int64_t oh,
                                             std::int64_t ow, std::int64_t kh, std::int64_t kw,
                                             const float* const* dy, float* const* acc,
                                             float* const* tail) {
  for (std::int64_t ky = 0; ky < kh; ++ky)
    for (std::int64_t kx0 = 0; kx0 < kw; kx0 += kTapGroup) {
      switch (std::min<std::int64_t>(kTapGroup, kw - kx0)) {
        case 5:
          grad_taps<F, 5>(src, pw, oh, ow, ky, kx0, kw, dy, acc, tail);
          break;
        case 4:
          grad_taps<F, 4>(src, pw, oh, ow, ky, kx0, kw, dy, acc, tail);
          break;
        case 3:
          grad_taps<F, 3>(src, pw, oh, ow, ky, kx0, kw, dy, acc, tail);
          break;
        case 2:
          grad_taps<F, 2>(src, pw, oh, ow, ky, kx0, kw, dy, acc, tail);
          break;
        default:
          grad_taps<F, 1>(src, pw, oh, ow, ky, kx0, kw, dy, acc, tail);
          break;
      }
    }
}

VERDANT_CLONES
void grad_plane(int filters, const float* src, std::int64_t pw, std::int64_t oh, std::int64_t ow,
                std::int64_t kh, std::int64_t kw, const float* const* dy, float* const* acc,
                float* const* tail) {
  if (filters == 2)
    grad_rows<2>(src, pw, oh, ow, kh, kw, dy, acc, tail);
  else
    grad_rows<1>(src, pw, oh, ow, kh, kw, dy, acc, tail);
}

// The sum of p[0, n), in eight-lane partial sums.
VERDANT_CLONES
double plane_sum(const float* p, std::int64_t n) {
  v8 a[4] = {};
  std::int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes)
    for (int u = 0; u < 4; ++u) a[u] += VERDANT_LOAD(p + i + u * kLanes);
  double s = 0;
  for (int u = 0; u < 4; ++u)
    for (std::int64_t l = 0; l < kLanes; ++l) s += a[u][l];
  for (; i < n; ++i) s += p[i];
  return s;
}

bool parallel_worth(const ConvGeometry& g, std::int64_t oc) {
  return !omp_in_parallel() && omp_get_max_threads() > 1 &&
         g.batch * oc * g.out_h() * g.out_w() * g.kernel_h * g.kernel_w >= (1 << 16);
}

}  // namespace

bool conv2d_direct_applies(const ConvGeometry& g, std::int64_t out_channels, std::int64_t groups) {
  return groups == g.channels && out_channels % g.channels == 0 && g.stride_h == 1 &&
         g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1;
}

void conv2d_direct_forward(const ConvGeometry& g, std::int64_t out_channels, const float* x,
                           const float* w, const float* bias, float* y) {
  const std::int64_t C = g.channels, M = out_channels / C, taps = g.kernel_h * g.kernel_w;
  const std::int64_t OH = g.out_h(), OW = g.out_w(), P = OH * OW;
  const PaddedPlanes in(x, g.batch * C, g);
  const std::int64_t runs_per_plane = (M + kForwardFilters - 1) / kForwardFilters;
  const std::int64_t tasks = g.batch * C * runs_per_plane;
#pragma omp parallel for schedule(static) if (parallel_worth(g, out_channels))
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t plane = task / runs_per_plane;  // n * C + c
    const std::int64_t n = plane / C, c = plane % C;
    const std::int64_t first = c * M + (task % runs_per_plane) * kForwardFilters;
    const int count =
        static_cast<int>(std::min<std::int64_t>(kForwardFilters, (c + 1) * M - first));
    const float* filters[kForwardFilters];
    float init[kForwardFilters];
    float* out[kForwardFilters];
    for (int f = 0; f < count; ++f) {
      filters[f] = w + (first + f) * taps;
      init[f] = bias ? bias[first + f] : 0.f;
      out[f] = y + (n * out_channels + first + f) * P;
    }
    forward_plane(count, in.plane(plane), in.row_stride(), OH, OW, g.kernel_h, g.kernel_w, filters,
                  init, out);
  }
}

void conv2d_direct_backward_weights(const ConvGeometry& g, std::int64_t out_channels,
                                    const float* x, const float* dy, float* dw, float* dbias) {
  const std::int64_t C = g.channels, M = out_channels / C, taps = g.kernel_h * g.kernel_w;
  const std::int64_t OH = g.out_h(), OW = g.out_w(), P = OH * OW;
  const PaddedPlanes in(x, g.batch * C, g);
  const std::int64_t runs_per_plane = (M + kGradFilters - 1) / kGradFilters;
  const std::int64_t runs = C * runs_per_plane;
  // Lane-wise partial sums per filter and tap: the lanes are added once, after the batch.
  // (Plain floats: std::vector drops a vector type's alignment.)
  std::vector<float> acc(static_cast<std::size_t>(out_channels * taps * kLanes), 0.f);
  std::vector<float> tail(static_cast<std::size_t>(out_channels * taps), 0.f);
#pragma omp parallel for schedule(static) if (parallel_worth(g, out_channels))
  for (std::int64_t ri = 0; ri < runs; ++ri) {
    const std::int64_t c = ri / runs_per_plane;
    const std::int64_t first = c * M + (ri % runs_per_plane) * kGradFilters;
    const int count = static_cast<int>(std::min<std::int64_t>(kGradFilters, (c + 1) * M - first));
    float* a[kGradFilters];
    float* t[kGradFilters];
    for (int f = 0; f < count; ++f) {
      a[f] = acc.data() + (first + f) * taps * kLanes;
      t[f] = tail.data() + (first + f) * taps;
    }
    for (std::int64_t n = 0; n < g.batch; ++n) {
      const float* grads[kGradFilters];
      for (int f = 0; f < count; ++f) grads[f] = dy + (n * out_channels + first + f) * P;
      grad_plane(count, in.plane(n * C + c), in.row_stride(), OH, OW, g.kernel_h, g.kernel_w, grads,
                 a, t);
    }
    for (int f = 0; f < count; ++f) {
      const std::int64_t oc = first + f;
      for (std::int64_t k = 0; k < taps; ++k) {
        float s = t[f][k];
        for (std::int64_t l = 0; l < kLanes; ++l) s += a[f][k * kLanes + l];
        dw[oc * taps + k] = s;
      }
    }
  }
  if (dbias) conv2d_bias_gradient(dy, g.batch, out_channels, P, dbias);
}

void conv2d_bias_gradient(const float* dy, std::int64_t n, std::int64_t out_channels,
                          std::int64_t plane, float* db) {
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && \
                                              n * out_channels * plane >= (1 << 16))
  for (std::int64_t oc = 0; oc < out_channels; ++oc) {
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i)
      s += plane_sum(dy + (i * out_channels + oc) * plane, plane);
    db[oc] = static_cast<float>(s);
  }
}

}  // namespace verdant::kernels
