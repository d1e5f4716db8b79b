#pragma once
// Direct convolution for one input channel per group: the first layer of an image model
// (C = 1) and depthwise layers (groups = C). Each output plane reads a single input plane, so
// im2col + GEMM (and oneDNN's gemm:jit, which does the same) copies every pixel kh * kw times
// for a product of one row. Here a row of outputs is a sum of shifted input rows instead, with
// the weights broadcast, four filters at a time (an AVX2 + FMA clone chosen at load time).
#include <cstdint>

#include "verdant/kernels/im2col.hpp"

namespace verdant::kernels {

// Whether the direct kernels take this convolution: one input channel per group, stride 1
// and no dilation. Padding is any.
bool conv2d_direct_applies(const ConvGeometry& g, std::int64_t out_channels, std::int64_t groups);

// Layouts as in conv.hpp: x [N, C, H, W], w and dw [OC, 1, KH, KW], y and dy [N, OC, OH, OW],
// bias [OC]; filter oc reads input channel oc / (OC / C). Outputs are overwritten.

// y = conv(x, w) + bias; bias may be nullptr.
void conv2d_direct_forward(const ConvGeometry& g, std::int64_t out_channels, const float* x,
                           const float* w, const float* bias, float* y);
// dw (and dbias unless nullptr) from x and dy, summed over the batch.
void conv2d_direct_backward_weights(const ConvGeometry& g, std::int64_t out_channels,
                                    const float* x, const float* dy, float* dw, float* dbias);

// Any convolution's bias gradient: db[oc] = the sum of dy [N, OC, P] over N and P.
void conv2d_bias_gradient(const float* dy, std::int64_t n, std::int64_t out_channels,
                          std::int64_t plane, float* db);

}  // namespace verdant::kernels
