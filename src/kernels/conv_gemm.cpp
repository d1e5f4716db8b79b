// Per-image im2col + oneDNN's sgemm (its C API; conv_dnnl.cpp holds the primitives).
#include "verdant/kernels/conv_gemm.hpp"

#include <omp.h>

#include <oneapi/dnnl/dnnl.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "simd.hpp"
#include "verdant/core/error.hpp"
#include "verdant/kernels/conv_direct.hpp"

namespace verdant::kernels {

namespace {

using detail::kLanes;

// C [m, n] = op(A) op(B) + beta C, row-major. Inside a parallel region oneDNN runs it on the
// calling thread. A failure is counted in `failures` (no exception may leave the region).
void gemm(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc, std::atomic<int>& failures) {
  if (dnnl_sgemm(trans_a, trans_b, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
    ++failures;
}

void throw_if_failed(const std::atomic<int>& failures) {
  if (failures.load() != 0) throw Error("conv2d: oneDNN sgemm failed");
}

// Calls row(columns_offset, image_offset, x0, x1) for every output row oy of every window
// (c, ky, kx) of one image's columns [C*KH*KW, OH*OW], in column order: at stride 1 its OW
// columns start at columns_offset, and columns [x0, x1) read the consecutive pixels from
// image_offset on; the rest read padding (all of them, and image_offset is -1, when the row
// lies outside the image). Inlined into each clone below, so the row bodies vectorise there.
template <typename Row>
__attribute__((always_inline)) inline void each_window_row(const ConvGeometry& g, Row row) {
  const std::int64_t h = g.height, w = g.width, ph = g.pad_h, pw = g.pad_w;
  const std::int64_t oh = g.out_h(), ow = g.out_w();
  std::int64_t offset = 0;
  if (ph == 0 && pw == 0) {
    // Every row whole and inside: a loop nest with no bounds to work out, which at lenet5's
    // 8-wide rows cost more than the copy itself (half the time of the columns).
    for (std::int64_t c = 0; c < g.channels; ++c)
      for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
        for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
          std::int64_t pixel = (c * h + ky) * w + kx;
          for (std::int64_t oy = 0; oy < oh; ++oy, offset += ow, pixel += w)
            row(offset, pixel, std::int64_t{0}, ow);
        }
    return;
  }
  for (std::int64_t c = 0; c < g.channels; ++c)
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const std::int64_t x0 = std::max<std::int64_t>(0, pw - kx), x1 = std::min(ow, w + pw - kx);
        for (std::int64_t oy = 0; oy < oh; ++oy, offset += ow) {
          const std::int64_t iy = oy + ky - ph;
          const bool outside = iy < 0 || iy >= h || x0 >= x1;
          row(offset, outside ? -1 : (c * h + iy) * w + (x0 + kx - pw), x0, outside ? x0 : x1);
        }
      }
}

// The columns of one image: each window row copied, zeros where it hangs over the padding.
VERDANT_CLONES
void image_to_columns(const float* image, ConvGeometry g, float* columns) {
  const std::int64_t ow = g.out_w();
  each_window_row(g,
                  [=](std::int64_t offset, std::int64_t pixel, std::int64_t x0, std::int64_t x1) {
                    float* dst = columns + offset;
                    for (std::int64_t ox = 0; ox < x0; ++ox) dst[ox] = 0.f;
                    for (std::int64_t ox = x1; ox < ow; ++ox) dst[ox] = 0.f;
                    if (pixel < 0) return;
                    const float* src = image + pixel;
                    float* out = dst + x0;
                    const std::int64_t n = x1 - x0;
                    std::int64_t i = 0;
                    for (; i + kLanes <= n; i += kLanes)
                      VERDANT_STORE(out + i, VERDANT_LOAD(src + i));
                    for (; i < n; ++i) out[i] = src[i];
                  });
}

// The reverse: image = the sum of the column entries that read each pixel.
VERDANT_CLONES
void columns_to_image(const float* columns, ConvGeometry g, float* image) {
  std::memset(image, 0, sizeof(float) * g.channels * g.height * g.width);
  each_window_row(g,
                  [=](std::int64_t offset, std::int64_t pixel, std::int64_t x0, std::int64_t x1) {
                    if (pixel < 0) return;
                    float* dst = image + pixel;
                    const float* in = columns + offset + x0;
                    const std::int64_t n = x1 - x0;
                    std::int64_t i = 0;
                    for (; i + kLanes <= n; i += kLanes)
                      VERDANT_STORE(dst + i, VERDANT_LOAD(dst + i) + VERDANT_LOAD(in + i));
                    for (; i < n; ++i) dst[i] += in[i];
                  });
}

struct Shape {
  std::int64_t ckk, plane, in_image, out_image;
};

Shape shape(const ConvGeometry& g, std::int64_t out_channels) {
  const std::int64_t plane = g.out_h() * g.out_w();
  return {g.col_rows(), plane, g.channels * g.height * g.width, out_channels * plane};
}

// body(n, columns, failures) for every image n, the images split over the threads, each thread
// with its own columns [C*KH*KW, OH*OW]. A failed product inside is thrown after the region.
template <typename Body>
void each_image(std::int64_t batch, const Shape& s, Body body) {
  std::atomic<int> failures{0};
#pragma omp parallel
  {
    std::vector<float> columns(static_cast<std::size_t>(s.ckk * s.plane));
#pragma omp for schedule(static)
    for (std::int64_t n = 0; n < batch; ++n) body(n, columns.data(), failures);
  }
  throw_if_failed(failures);
}

}  // namespace

bool conv2d_gemm_applies(const ConvGeometry& g, std::int64_t groups) {
  return groups == 1 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
         g.dilation_w == 1;
}

void conv2d_gemm_forward(const ConvGeometry& g, std::int64_t out_channels, const float* x,
                         const float* w, const float* bias, float* y) {
  const Shape s = shape(g, out_channels);
  each_image(g.batch, s, [&](std::int64_t n, float* columns, std::atomic<int>& failures) {
    float* out = y + n * s.out_image;
    image_to_columns(x + n * s.in_image, g, columns);
    if (bias)
      for (std::int64_t oc = 0; oc < out_channels; ++oc)
        for (std::int64_t p = 0; p < s.plane; ++p) out[oc * s.plane + p] = bias[oc];
    gemm('N', 'N', out_channels, s.plane, s.ckk, w, s.ckk, columns, s.plane, bias ? 1.f : 0.f, out,
         s.plane, failures);
  });
}

void conv2d_gemm_backward_data(const ConvGeometry& g, std::int64_t out_channels, const float* w,
                               const float* dy, float* dx) {
  const Shape s = shape(g, out_channels);
  each_image(g.batch, s, [&](std::int64_t n, float* columns, std::atomic<int>& failures) {
    gemm('T', 'N', s.ckk, s.plane, out_channels, w, s.ckk, dy + n * s.out_image, s.plane, 0.f,
         columns, s.plane, failures);
    columns_to_image(columns, g, dx + n * s.in_image);
  });
}

void conv2d_gemm_backward_weights(const ConvGeometry& g, std::int64_t out_channels, const float* x,
                                  const float* dy, float* dw, float* dbias) {
  const Shape s = shape(g, out_channels);
  const std::int64_t weights = out_channels * s.ckk;
  // Each thread sums its images into its own copy of dw (zeroed here, so the copy of a thread
  // without images adds nothing); the copies are added at the end.
  const int copies = omp_get_max_threads();
  std::vector<float> partial(static_cast<std::size_t>(copies * weights));
  each_image(g.batch, s, [&](std::int64_t n, float* columns, std::atomic<int>& failures) {
    image_to_columns(x + n * s.in_image, g, columns);
    gemm('N', 'T', out_channels, s.ckk, s.plane, dy + n * s.out_image, s.plane, columns, s.plane,
         1.f, partial.data() + omp_get_thread_num() * weights, s.ckk, failures);
  });
#pragma omp parallel for schedule(static) if (weights * copies >= (1 << 16))
  for (std::int64_t i = 0; i < weights; ++i) {
    float sum = 0.f;
    for (int t = 0; t < copies; ++t) sum += partial[t * weights + i];
    dw[i] = sum;
  }
  if (dbias) conv2d_bias_gradient(dy, g.batch, out_channels, s.plane, dbias);
}

}  // namespace verdant::kernels
