#pragma once
// im2col / col2im for batched 2-D convolution, so a whole convolution layer is one GEMM.
#include <cstdint>

namespace verdant::kernels {

struct ConvGeometry {
  std::int64_t batch = 1, channels = 1, height = 0, width = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  // Spacing of the kernel taps (1: adjacent); a dilated kernel covers dilation * (k - 1) + 1.
  std::int64_t dilation_h = 1, dilation_w = 1;

  std::int64_t span_h() const { return dilation_h * (kernel_h - 1) + 1; }
  std::int64_t span_w() const { return dilation_w * (kernel_w - 1) + 1; }
  std::int64_t out_h() const { return (height + 2 * pad_h - span_h()) / stride_h + 1; }
  std::int64_t out_w() const { return (width + 2 * pad_w - span_w()) / stride_w + 1; }
  // Rows of the column matrix: one per (channel, ky, kx).
  std::int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  // Columns of the column matrix: one per (sample, oy, ox), for the whole batch.
  std::int64_t col_cols() const { return batch * out_h() * out_w(); }
};

// images: [batch, channels, height, width] -> columns: [col_rows, col_cols] (row-major),
// column index = (n * out_h + oy) * out_w + ox. Padding reads as zero. OpenMP over rows.
void im2col(const float* images, const ConvGeometry& g, float* columns);
// Reverse scatter: images[...] = sum of the column entries that read them. Overwrites
// `images` (no need to zero it first).
void col2im(const float* columns, const ConvGeometry& g, float* images);

// Plain twins (single-threaded, obviously correct) for the tests.
void im2col_reference(const float* images, const ConvGeometry& g, float* columns);
void col2im_reference(const float* columns, const ConvGeometry& g, float* images);

}  // namespace verdant::kernels
