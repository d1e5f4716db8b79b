#pragma once
// 2-D convolution through oneDNN on plain NCHW / OIHW buffers (no layout copies).
//
// Which path autograd's conv2d takes is chosen here. The default is oneDNN; the environment
// variable VERDANT_CONV=im2col (read once, at first use) forces the im2col + GEMM path, which
// stays as the fallback and as the reference twin the tests compare against.
// set_conv_path() overrides both, for tests and benchmarks.
#include <cstdint>

#include "verdant/kernels/im2col.hpp"

namespace verdant::kernels {

enum class ConvPath { dnnl, im2col };

// VERDANT_CONV: unset or "dnnl" -> dnnl, "im2col" -> im2col; anything else is an Error.
ConvPath conv_path();
void set_conv_path(ConvPath path);

// All three take the geometry of the input (g.channels is the total C), out_channels OC and
// groups (C and OC divisible by groups). Layouts: x and dx [N, C, H, W], w and dw
// [OC, C / groups, KH, KW], y and dy [N, OC, OH, OW], bias [OC]. Outputs are overwritten.
// A oneDNN failure is one verdant::Error.

// y = conv(x, w) + bias; bias may be nullptr.
void conv2d_forward_dnnl(const ConvGeometry& g, std::int64_t out_channels, std::int64_t groups,
                         const float* x, const float* w, const float* bias, float* y);
// dx = gradient of the input from dy.
void conv2d_backward_data_dnnl(const ConvGeometry& g, std::int64_t out_channels,
                               std::int64_t groups, const float* w, const float* dy, float* dx);
// dw (and dbias unless nullptr) = gradients of the weights and bias from x and dy.
void conv2d_backward_weights_dnnl(const ConvGeometry& g, std::int64_t out_channels,
                                  std::int64_t groups, const float* x, const float* dy, float* dw,
                                  float* dbias);

}  // namespace verdant::kernels
