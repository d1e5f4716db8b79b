#include "verdant/kernels/im2col.hpp"

#include <cstring>

namespace verdant::kernels {

namespace {

// Small problems stay on the calling thread: waking the OpenMP team costs more.
constexpr std::int64_t kParallelMin = 1 << 16;

// One row of the column matrix: channel c, kernel offset (ky, kx), over the whole batch.
void im2col_row(const float* images, const ConvGeometry& g, std::int64_t row, float* out) {
  const std::int64_t kx = row % g.kernel_w;
  const std::int64_t ky = (row / g.kernel_w) % g.kernel_h;
  const std::int64_t c = row / (g.kernel_w * g.kernel_h);
  const std::int64_t oh = g.out_h(), ow = g.out_w();
  const std::int64_t plane = g.height * g.width;
  for (std::int64_t n = 0; n < g.batch; ++n) {
    const float* img = images + (n * g.channels + c) * plane;
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
      float* dst = out + (n * oh + oy) * ow;
      if (iy < 0 || iy >= g.height) {
        std::memset(dst, 0, sizeof(float) * ow);
        continue;
      }
      const float* src = img + iy * g.width;
      if (g.stride_w == 1 && g.pad_w == 0) {
        std::memcpy(dst, src + kx * g.dilation_w, sizeof(float) * ow);
      } else {
        for (std::int64_t ox = 0; ox < ow; ++ox) {
          const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
          dst[ox] = (ix >= 0 && ix < g.width) ? src[ix] : 0.f;
        }
      }
    }
  }
}

}  // namespace

void im2col(const float* images, const ConvGeometry& g, float* columns) {
  const std::int64_t rows = g.col_rows(), cols = g.col_cols();
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (std::int64_t r = 0; r < rows; ++r) im2col_row(images, g, r, columns + r * cols);
}

void col2im(const float* columns, const ConvGeometry& geom, float* images) {
  // Locals, not reads through `geom`: stores into `images` could alias it otherwise, which
  // blocks vectorisation of the inner loops.
  const std::int64_t N = geom.batch, C = geom.channels, H = geom.height, W = geom.width;
  const std::int64_t KH = geom.kernel_h, KW = geom.kernel_w, SH = geom.stride_h, SW = geom.stride_w;
  const std::int64_t PH = geom.pad_h, PW = geom.pad_w;
  const std::int64_t DH = geom.dilation_h, DW = geom.dilation_w;
  const std::int64_t oh = geom.out_h(), ow = geom.out_w(), cols = geom.col_cols();
  const std::int64_t plane = H * W;
  const bool dense = SW == 1 && PW == 0;
  // One thread per channel: it owns that channel's planes in every sample (no races) and
  // reads its rows of `columns` front to back, which streams well from memory.
#pragma omp parallel for schedule(static) if (geom.col_rows() * cols >= kParallelMin)
  for (std::int64_t c = 0; c < C; ++c) {
    for (std::int64_t n = 0; n < N; ++n)
      std::memset(images + (n * C + c) * plane, 0, sizeof(float) * plane);
    for (std::int64_t ky = 0; ky < KH; ++ky) {
      for (std::int64_t kx = 0; kx < KW; ++kx) {
        const float* __restrict__ row = columns + ((c * KH + ky) * KW + kx) * cols;
        for (std::int64_t n = 0; n < N; ++n) {
          float* __restrict__ img = images + (n * C + c) * plane;
          const float* __restrict__ src = row + n * oh * ow;
          for (std::int64_t oy = 0; oy < oh; ++oy) {
            const std::int64_t iy = oy * SH - PH + ky * DH;
            if (iy < 0 || iy >= H) continue;
            float* __restrict__ dst = img + iy * W;
            const float* __restrict__ s = src + oy * ow;
            if (dense) {
              float* __restrict__ d = dst + kx * DW;
              for (std::int64_t ox = 0; ox < ow; ++ox) d[ox] += s[ox];
            } else {
              for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t ix = ox * SW - PW + kx * DW;
                if (ix >= 0 && ix < W) dst[ix] += s[ox];
              }
            }
          }
        }
      }
    }
  }
}

void im2col_reference(const float* images, const ConvGeometry& g, float* columns) {
  const std::int64_t oh = g.out_h(), ow = g.out_w(), cols = g.col_cols();
  for (std::int64_t c = 0; c < g.channels; ++c)
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::int64_t kx = 0; kx < g.kernel_w; ++kx)
        for (std::int64_t n = 0; n < g.batch; ++n)
          for (std::int64_t oy = 0; oy < oh; ++oy)
            for (std::int64_t ox = 0; ox < ow; ++ox) {
              const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
              const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
              const std::int64_t row = (c * g.kernel_h + ky) * g.kernel_w + kx;
              const std::int64_t col = (n * oh + oy) * ow + ox;
              const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
              columns[row * cols + col] =
                  inside ? images[((n * g.channels + c) * g.height + iy) * g.width + ix] : 0.f;
            }
}

void col2im_reference(const float* columns, const ConvGeometry& g, float* images) {
  const std::int64_t oh = g.out_h(), ow = g.out_w(), cols = g.col_cols();
  std::memset(images, 0, sizeof(float) * g.batch * g.channels * g.height * g.width);
  for (std::int64_t c = 0; c < g.channels; ++c)
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::int64_t kx = 0; kx < g.kernel_w; ++kx)
        for (std::int64_t n = 0; n < g.batch; ++n)
          for (std::int64_t oy = 0; oy < oh; ++oy)
            for (std::int64_t ox = 0; ox < ow; ++ox) {
              const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
              const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
              if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
              const std::int64_t row = (c * g.kernel_h + ky) * g.kernel_w + kx;
              const std::int64_t col = (n * oh + oy) * ow + ox;
              images[((n * g.channels + c) * g.height + iy) * g.width + ix] +=
                  columns[row * cols + col];
            }
}

}  // namespace verdant::kernels
