#pragma once
// Convolution as im2col + GEMM one image at a time, an image per thread, through oneDNN's
// sgemm (the JIT kernel its gemm:jit convolution uses, single-threaded inside a parallel
// region). That convolution does the same per image but builds its columns (and scatters them
// back) one element at a time with a bounds check each; here a stride-1 row of outputs is a
// vector copy. For ungrouped convolutions at stride 1 without dilation, padded or not (lenet5's
// second layer, 3x3 "same" layers); the rest stays on oneDNN's primitives (conv.hpp).
#include <cstdint>

#include "verdant/kernels/im2col.hpp"

namespace verdant::kernels {

bool conv2d_gemm_applies(const ConvGeometry& g, std::int64_t groups);

// Layouts as in conv.hpp: x and dx [N, C, H, W], w and dw [OC, C, KH, KW], y and dy
// [N, OC, OH, OW], bias [OC]. Outputs are overwritten.

// y = conv(x, w) + bias; bias may be nullptr.
void conv2d_gemm_forward(const ConvGeometry& g, std::int64_t out_channels, const float* x,
                         const float* w, const float* bias, float* y);
// dx = gradient of the input from dy.
void conv2d_gemm_backward_data(const ConvGeometry& g, std::int64_t out_channels, const float* w,
                               const float* dy, float* dx);
// dw (and dbias unless nullptr) from x and dy, summed over the batch.
void conv2d_gemm_backward_weights(const ConvGeometry& g, std::int64_t out_channels, const float* x,
                                  const float* dy, float* dw, float* dbias);

}  // namespace verdant::kernels
