// conv2d through oneDNN and our kernels (direct for one input channel per group, per-image
// im2col + GEMM for other stride-1 layers), or as one batched im2col + one GEMM per call (the
// fallback and the reference twin); pooling with OpenMP over planes.
#include <cstring>
#include <limits>

#include "internal.hpp"
#include "verdant/kernels/conv.hpp"
#include "verdant/kernels/conv_direct.hpp"
#include "verdant/kernels/conv_gemm.hpp"
#include "verdant/kernels/gemm.hpp"
#include "verdant/kernels/im2col.hpp"

namespace verdant::autograd {

using detail::require;
using detail::val;
using kernels::sgemm;

namespace {

// The bias of a convolution with OC output channels, or nullptr without one.
const float* bias_values(const Variable& bias, std::int64_t OC) {
  if (!bias.defined()) return nullptr;
  const Tensor& B = val(bias, "conv2d", "bias");
  require(B.numel() == OC, "conv2d: bias " + shape_str(B.shape()) + " for " + std::to_string(OC) +
                               " output channels");
  return B.data<float>();
}

// One input channel per group (depthwise, OC = C * multiplier): direct loops over the planes.
// im2col would copy every input pixel kh * kw times for a product with one row each.
Variable depthwise_conv2d(const Variable& x, const Variable& weight, const Variable& bias,
                          const kernels::ConvGeometry& g, std::int64_t OC) {
  const Tensor& X = x.value();
  const Tensor& W = weight.value();
  const std::int64_t N = g.batch, C = g.channels, H = g.height, Wd = g.width;
  const std::int64_t KH = g.kernel_h, KW = g.kernel_w, OH = g.out_h(), OW = g.out_w();
  const std::int64_t M = OC / C;  // filters per input channel
  const float* bptr = bias_values(bias, OC);
  // Calls f(oy, ox, iy, ix, k) for every tap that reads inside the input.
  auto taps = [g, OH, OW, KH, KW, H, Wd](auto&& f) {
    for (std::int64_t oy = 0; oy < OH; ++oy)
      for (std::int64_t ky = 0; ky < KH; ++ky) {
        const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
        if (iy < 0 || iy >= H) continue;
        for (std::int64_t ox = 0; ox < OW; ++ox)
          for (std::int64_t kx = 0; kx < KW; ++kx) {
            const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
            if (ix >= 0 && ix < Wd) f(oy, ox, iy, ix, ky * KW + kx);
          }
      }
  };
  Tensor Y({N, OC, OH, OW}, DType::f32);
  {
    const float* xp = X.data<float>();
    const float* wp = W.data<float>();
    float* yp = Y.data<float>();
#pragma omp parallel for schedule(static) if (N * OC * OH * OW >= detail::kParallelMin)
    for (std::int64_t no = 0; no < N * OC; ++no) {
      const std::int64_t n = no / OC, oc = no % OC;
      const float* src = xp + (n * C + oc / M) * H * Wd;
      const float* w = wp + oc * KH * KW;
      float* dst = yp + no * OH * OW;
      const float b = bptr ? bptr[oc] : 0.f;
      for (std::int64_t i = 0; i < OH * OW; ++i) dst[i] = b;
      taps([&](std::int64_t oy, std::int64_t ox, std::int64_t iy, std::int64_t ix, std::int64_t k) {
        dst[oy * OW + ox] += w[k] * src[iy * Wd + ix];
      });
    }
  }
  return make_result(
      std::move(Y), {x, weight, bias},
      [X, W, g, N, C, H, Wd, KH, KW, OH, OW, OC, M, taps](const Tensor& gy, Node& self) {
        const float* gp = gy.data<float>();
        const float* xp = X.data<float>();
        const float* wp = W.data<float>();
        if (self.needs_grad(1)) {
          Tensor dW(W.shape(), DType::f32);
          float* dw = dW.data<float>();
#pragma omp parallel for schedule(static) if (N * OC * OH * OW >= detail::kParallelMin)
          for (std::int64_t oc = 0; oc < OC; ++oc) {
            float* d = dw + oc * KH * KW;
            for (std::int64_t k = 0; k < KH * KW; ++k) d[k] = 0.f;
            for (std::int64_t n = 0; n < N; ++n) {
              const float* src = xp + (n * C + oc / M) * H * Wd;
              const float* go = gp + (n * OC + oc) * OH * OW;
              taps([&](std::int64_t oy, std::int64_t ox, std::int64_t iy, std::int64_t ix,
                       std::int64_t k) { d[k] += go[oy * OW + ox] * src[iy * Wd + ix]; });
            }
          }
          self.accumulate(1, std::move(dW));
        }
        if (self.needs_grad(2)) {
          Tensor dB({OC}, DType::f32);
          float* db = dB.data<float>();
          for (std::int64_t oc = 0; oc < OC; ++oc) {
            double acc = 0;
            for (std::int64_t n = 0; n < N; ++n)
              for (std::int64_t i = 0; i < OH * OW; ++i) acc += gp[(n * OC + oc) * OH * OW + i];
            db[oc] = static_cast<float>(acc);
          }
          self.accumulate(2, std::move(dB));
        }
        if (self.needs_grad(0)) {  // each input plane gathers from its M output planes
          Tensor dX({N, C, H, Wd}, DType::f32);
          float* dx = dX.data<float>();
#pragma omp parallel for schedule(static) if (N * OC * OH * OW >= detail::kParallelMin)
          for (std::int64_t nc = 0; nc < N * C; ++nc) {
            const std::int64_t n = nc / C, c = nc % C;
            float* d = dx + nc * H * Wd;
            for (std::int64_t i = 0; i < H * Wd; ++i) d[i] = 0.f;
            for (std::int64_t oc = c * M; oc < (c + 1) * M; ++oc) {
              const float* w = wp + oc * KH * KW;
              const float* go = gp + (n * OC + oc) * OH * OW;
              taps([&](std::int64_t oy, std::int64_t ox, std::int64_t iy, std::int64_t ix,
                       std::int64_t k) { d[iy * Wd + ix] += w[k] * go[oy * OW + ox]; });
            }
          }
          self.accumulate(0, std::move(dX));
        }
      },
      "conv2d");
}

// The bias gradient alone: gY [N, OC, P] summed over N and P.
Tensor bias_grad(const Tensor& gy, std::int64_t N, std::int64_t OC, std::int64_t P) {
  Tensor dB({OC}, DType::f32);
  kernels::conv2d_bias_gradient(gy.data<float>(), N, OC, P, dB.data<float>());
  return dB;
}

// All three directions through oneDNN or our kernels, straight on our NCHW / OIHW tensors.
// The backward keeps the input itself rather than its columns, which are kh * kw times larger.
// Measured on lenet5's layers (batch 64, 2 threads, AVX2), ms per call, oneDNN vs the batched
// im2col below: conv1 (1->20, 28x28) forward 0.55 vs 11, weights 1.7 vs 9.6, data 0.85 vs
// 6.8; conv2 (20->50, 12x12) forward 1.95 vs 2.05, weights 2.1-2.3 vs 1.8-2.3, data 2.2 vs
// 2.6-3.4: whole-batch columns spill the caches. Blocked layouts (format_tag::any plus
// reorders) were no faster: conv2 6.9 ms for all three vs 6.7 plain.
// One input channel per group at stride 1 (conv1; depthwise) takes our direct kernels for the
// forward pass and the weights instead, and other ungrouped stride-1 layers (conv2) our
// per-image im2col into oneDNN's sgemm in all three directions (bench_conv_paths, ours vs the
// primitives, ms per call): conv1 forward 0.28 vs 0.84, weights 0.51 vs 2.03; depthwise
// 32x28x28 k3 forward 3.4 vs 7.8, weights 3.6 vs 29.3; conv2 forward 2.31 vs 2.81, data 2.11
// vs 3.46, weights 2.79 vs 3.24.
Variable dnnl_conv2d(const Variable& x, const Variable& weight, const Variable& bias,
                     const kernels::ConvGeometry& g, std::int64_t OC, std::int64_t G) {
  const Tensor& X = x.value();
  const Tensor& W = weight.value();
  Tensor Y({g.batch, OC, g.out_h(), g.out_w()}, DType::f32);
  const bool direct = kernels::conv2d_direct_applies(g, OC, G);
  const bool per_image = !direct && kernels::conv2d_gemm_applies(g, G);
  if (direct)
    kernels::conv2d_direct_forward(g, OC, X.data<float>(), W.data<float>(), bias_values(bias, OC),
                                   Y.data<float>());
  else if (per_image)
    kernels::conv2d_gemm_forward(g, OC, X.data<float>(), W.data<float>(), bias_values(bias, OC),
                                 Y.data<float>());
  else
    kernels::conv2d_forward_dnnl(g, OC, G, X.data<float>(), W.data<float>(), bias_values(bias, OC),
                                 Y.data<float>());
  return make_result(
      std::move(Y), {x, weight, bias},
      [X, W, g, OC, G, direct, per_image](const Tensor& gy, Node& self) {
        if (self.needs_grad(1)) {  // one call gives the bias gradient too
          Tensor dW(W.shape(), DType::f32);
          Tensor dB = self.needs_grad(2) ? Tensor({OC}, DType::f32) : Tensor();
          float* db = dB.defined() ? dB.data<float>() : nullptr;
          if (direct)
            kernels::conv2d_direct_backward_weights(g, OC, X.data<float>(), gy.data<float>(),
                                                    dW.data<float>(), db);
          else if (per_image)
            kernels::conv2d_gemm_backward_weights(g, OC, X.data<float>(), gy.data<float>(),
                                                  dW.data<float>(), db);
          else
            kernels::conv2d_backward_weights_dnnl(g, OC, G, X.data<float>(), gy.data<float>(),
                                                  dW.data<float>(), db);
          self.accumulate(1, std::move(dW));
          if (dB.defined()) self.accumulate(2, std::move(dB));
        } else if (self.needs_grad(2)) {
          self.accumulate(2, bias_grad(gy, g.batch, OC, g.out_h() * g.out_w()));
        }
        if (self.needs_grad(0)) {
          Tensor dX(X.shape(), DType::f32);
          if (per_image)
            kernels::conv2d_gemm_backward_data(g, OC, W.data<float>(), gy.data<float>(),
                                               dX.data<float>());
          else
            kernels::conv2d_backward_data_dnnl(g, OC, G, W.data<float>(), gy.data<float>(),
                                               dX.data<float>());
          self.accumulate(0, std::move(dX));
        }
      },
      "conv2d");
}

}  // namespace

Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias, Conv2dParams p) {
  const Tensor& X = val(x, "conv2d", "input");
  const Tensor& W = val(weight, "conv2d", "weight");
  require(X.ndim() == 4, "conv2d: input must be [N, C, H, W], got " + shape_str(X.shape()));
  require(p.groups > 0 && X.dim(1) % p.groups == 0, "conv2d: " + std::to_string(X.dim(1)) +
                                                        " input channels cannot be split into " +
                                                        std::to_string(p.groups) + " groups");
  require(W.ndim() == 4 && W.dim(1) * p.groups == X.dim(1) && W.dim(0) % p.groups == 0,
          "conv2d: weight " + shape_str(W.shape()) + " does not fit input " + shape_str(X.shape()) +
              (p.groups > 1 ? " in " + std::to_string(p.groups) + " groups" : ""));
  require(p.stride_h > 0 && p.stride_w > 0 && p.pad_h >= 0 && p.pad_w >= 0 && p.dilation_h > 0 &&
              p.dilation_w > 0,
          "conv2d: stride and dilation must be positive and padding non-negative");
  kernels::ConvGeometry g;
  g.batch = X.dim(0);
  g.channels = X.dim(1);
  g.height = X.dim(2);
  g.width = X.dim(3);
  g.kernel_h = W.dim(2);
  g.kernel_w = W.dim(3);
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  require(g.height + 2 * g.pad_h >= g.span_h() && g.width + 2 * g.pad_w >= g.span_w(),
          "conv2d: kernel " + shape_str(W.shape()) + " larger than padded input " +
              shape_str(X.shape()));
  const std::int64_t OC = W.dim(0), N = g.batch, OH = g.out_h(), OW = g.out_w(), P = OH * OW;
  const std::int64_t CKK = g.col_rows(), NP = g.col_cols();
  // Group gi reads rows [gi * GK, (gi + 1) * GK) of the columns (its channels are contiguous)
  // and writes output channels [gi * GO, (gi + 1) * GO).
  const std::int64_t G = p.groups, GK = CKK / G, GO = OC / G;
  // An empty batch stays on the loops below, which need no special case for it.
  if (kernels::conv_path() == kernels::ConvPath::dnnl && N > 0)
    return dnnl_conv2d(x, weight, bias, g, OC, G);
  // One channel and one group is an ordinary convolution, which im2col + GEMM runs faster.
  if (G > 1 && G == g.channels) return depthwise_conv2d(x, weight, bias, g, OC);

  Tensor cols({CKK, NP}, DType::f32);
  kernels::im2col(X.data<float>(), g, cols.data<float>());
  Tensor Y2({OC, NP}, DType::f32);  // [OC, N*P]
  for (std::int64_t gi = 0; gi < G; ++gi)
    sgemm(false, false, GO, NP, GK, 1.f, W.data<float>() + gi * GO * GK, GK,
          cols.data<float>() + gi * GK * NP, NP, 0.f, Y2.data<float>() + gi * GO * NP, NP);

  // Permute [OC, N, P] -> [N, OC, P], adding the bias on the way.
  Tensor Y({N, OC, OH, OW}, DType::f32);
  const float* bptr = bias_values(bias, OC);
  {
    const float* y2 = Y2.data<float>();
    float* y = Y.data<float>();
#pragma omp parallel for schedule(static) if (N * OC * P >= detail::kParallelMin)
    for (std::int64_t no = 0; no < N * OC; ++no) {
      const std::int64_t n = no / OC, oc = no % OC;
      const float* src = y2 + oc * NP + n * P;
      float* dst = y + no * P;
      const float b = bptr ? bptr[oc] : 0.f;
      for (std::int64_t i = 0; i < P; ++i) dst[i] = src[i] + b;
    }
  }
  Y2 = Tensor();
  return make_result(
      std::move(Y), {x, weight, bias},
      [cols, W, g, OC, N, P, CKK, NP, G, GK, GO](const Tensor& gy, Node& self) {
        // gY [N, OC, P] -> gY2 [OC, N*P]
        Tensor gy2({OC, NP}, DType::f32);
        {
          const float* src = gy.data<float>();
          float* dst = gy2.data<float>();
#pragma omp parallel for schedule(static) if (N * OC * P >= detail::kParallelMin)
          for (std::int64_t no = 0; no < N * OC; ++no) {
            const std::int64_t n = no / OC, oc = no % OC;
            const float* s = src + no * P;
            float* d = dst + oc * NP + n * P;
            for (std::int64_t i = 0; i < P; ++i) d[i] = s[i];
          }
        }
        if (self.needs_grad(1)) {  // dW = gY2 cols^T, per group
          Tensor dW(W.shape(), DType::f32);
          for (std::int64_t gi = 0; gi < G; ++gi)
            sgemm(false, true, GO, GK, NP, 1.f, gy2.data<float>() + gi * GO * NP, NP,
                  cols.data<float>() + gi * GK * NP, NP, 0.f, dW.data<float>() + gi * GO * GK, GK);
          self.accumulate(1, std::move(dW));
        }
        if (self.needs_grad(2)) {
          Tensor dB({OC}, DType::f32);
          const float* s = gy2.data<float>();
          float* db = dB.data<float>();
#pragma omp parallel for schedule(static) if (OC * NP >= detail::kParallelMin)
          for (std::int64_t oc = 0; oc < OC; ++oc) {
            float acc = 0.f;
            for (std::int64_t i = 0; i < NP; ++i) acc += s[oc * NP + i];
            db[oc] = acc;
          }
          self.accumulate(2, std::move(dB));
        }
        if (self.needs_grad(0)) {  // dcols = W^T gY2 per group, then scatter back
          Tensor dcols({CKK, NP}, DType::f32);
          for (std::int64_t gi = 0; gi < G; ++gi)
            sgemm(true, false, GK, NP, GO, 1.f, W.data<float>() + gi * GO * GK, GK,
                  gy2.data<float>() + gi * GO * NP, NP, 0.f, dcols.data<float>() + gi * GK * NP,
                  NP);
          Tensor dX({g.batch, g.channels, g.height, g.width}, DType::f32);
          kernels::col2im(dcols.data<float>(), g, dX.data<float>());
          self.accumulate(0, std::move(dX));
        }
      },
      "conv2d");
}

namespace {

struct PoolGeometry {
  std::int64_t N, C, H, W, k, s, pad, OH, OW;
};

PoolGeometry pool_geometry(const Tensor& X, std::int64_t kernel, std::int64_t stride,
                           std::int64_t padding, const char* op) {
  require(X.ndim() == 4,
          std::string(op) + ": input must be [N, C, H, W], got " + shape_str(X.shape()));
  require(kernel > 0 && stride >= 0 && padding >= 0,
          std::string(op) + ": kernel must be positive, stride and padding non-negative");
  require(2 * padding <= kernel, std::string(op) + ": padding must be at most half the kernel");
  PoolGeometry g{X.dim(0), X.dim(1), X.dim(2), X.dim(3), kernel, stride ? stride : kernel,
                 padding,  0,        0};
  require(g.H + 2 * g.pad >= g.k && g.W + 2 * g.pad >= g.k,
          std::string(op) + ": kernel larger than input " + shape_str(X.shape()));
  g.OH = (g.H + 2 * g.pad - g.k) / g.s + 1;
  g.OW = (g.W + 2 * g.pad - g.k) / g.s + 1;
  return g;
}

// max_pool2d, and with kRelu max_pool2d(relu(x)) in one pass, sparing relu's pass over the
// larger, unpooled tensor: each candidate goes through relu as it is read (NaN becomes 0, as
// in relu), and a winner of 0 (index -1) takes no gradient, as relu's derivative gives it none.
template <bool kRelu>
Variable max_pool(const Variable& x, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                  const char* name) {
  const Tensor& X = val(x, name, "input");
  const PoolGeometry g = pool_geometry(X, kernel, stride, padding, name);
  Tensor Y({g.N, g.C, g.OH, g.OW}, DType::f32);
  // Index of the winning element inside its input plane, for the backward scatter.
  Tensor arg({g.N, g.C, g.OH, g.OW}, DType::i32);
  const float* xp = X.data<float>();
  float* yp = Y.data<float>();
  std::int32_t* ap = arg.data<std::int32_t>();
  const std::int64_t planes = g.N * g.C, in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  const bool fast2 = g.k == 2 && g.s == 2 && g.pad == 0;  // the common case (LeNet)
  auto read = [](float v) {
    if constexpr (kRelu) return v > 0.f ? v : 0.f;
    return v;
  };
  auto store = [](float best, std::int32_t index, float* y, std::int32_t* a) {
    *y = best;
    *a = kRelu && !(best > 0.f) ? -1 : index;
  };
#pragma omp parallel for schedule(static) if (planes * in_plane >= detail::kParallelMin)
  for (std::int64_t pc = 0; pc < planes; ++pc) {
    const float* src = xp + pc * in_plane;
    if (fast2) {
      float* yrow = yp + pc * out_plane;
      std::int32_t* arow = ap + pc * out_plane;
      for (std::int64_t oy = 0; oy < g.OH; ++oy) {
        const float* r0 = src + 2 * oy * g.W;
        const float* r1 = r0 + g.W;
        for (std::int64_t ox = 0; ox < g.OW; ++ox) {
          // Branch-free: each candidate replaces the running max when larger or NaN (so NaN
          // propagates, like PyTorch); ties keep the first index.
          const float v0 = read(r0[2 * ox]), v1 = read(r0[2 * ox + 1]), v2 = read(r1[2 * ox]),
                      v3 = read(r1[2 * ox + 1]);
          float best = v0;
          std::int32_t off = 0;
          const bool t1 = !(v1 <= best) && best == best;
          best = t1 ? v1 : best;
          off = t1 ? 1 : off;
          const bool t2 = !(v2 <= best) && best == best;
          best = t2 ? v2 : best;
          off = t2 ? static_cast<std::int32_t>(g.W) : off;
          const bool t3 = !(v3 <= best) && best == best;
          best = t3 ? v3 : best;
          off = t3 ? static_cast<std::int32_t>(g.W + 1) : off;
          store(best, static_cast<std::int32_t>(2 * oy * g.W + 2 * ox) + off, yrow + oy * g.OW + ox,
                arow + oy * g.OW + ox);
        }
      }
      continue;
    }
    for (std::int64_t oy = 0; oy < g.OH; ++oy)
      for (std::int64_t ox = 0; ox < g.OW; ++ox) {
        float best = -std::numeric_limits<float>::infinity();
        std::int32_t best_i = -1;
        for (std::int64_t ky = 0; ky < g.k; ++ky) {
          const std::int64_t iy = oy * g.s - g.pad + ky;
          if (iy < 0 || iy >= g.H) continue;
          for (std::int64_t kx = 0; kx < g.k; ++kx) {
            const std::int64_t ix = ox * g.s - g.pad + kx;
            if (ix < 0 || ix >= g.W) continue;
            const float v = read(src[iy * g.W + ix]);
            // NaN wins, so it propagates like in PyTorch.
            if (v > best || best_i < 0 || v != v) {
              best = v;
              best_i = static_cast<std::int32_t>(iy * g.W + ix);
            }
          }
        }
        store(best, best_i, yp + pc * out_plane + oy * g.OW + ox,
              ap + pc * out_plane + oy * g.OW + ox);
      }
  }
  return make_result(
      std::move(Y), {x},
      [arg, g, planes, in_plane, out_plane](const Tensor& gy, Node& self) {
        Tensor dX({g.N, g.C, g.H, g.W}, DType::f32);
        const float* gp = gy.data<float>();
        const std::int32_t* a = arg.data<std::int32_t>();
        float* dx = dX.data<float>();
    // Each thread zeroes and fills its own planes.
#pragma omp parallel for schedule(static) if (planes * in_plane >= detail::kParallelMin)
        for (std::int64_t pc = 0; pc < planes; ++pc) {
          std::memset(dx + pc * in_plane, 0, sizeof(float) * in_plane);
          for (std::int64_t i = 0; i < out_plane; ++i) {
            const std::int32_t winner = a[pc * out_plane + i];
            if (kRelu && winner < 0) continue;
            dx[pc * in_plane + winner] += gp[pc * out_plane + i];
          }
        }
        self.accumulate(0, std::move(dX));
      },
      name);
}

}  // namespace

Variable max_pool2d(const Variable& x, std::int64_t kernel, std::int64_t stride,
                    std::int64_t padding) {
  return max_pool<false>(x, kernel, stride, padding, "max_pool2d");
}

Variable relu_max_pool2d(const Variable& x, std::int64_t kernel, std::int64_t stride,
                         std::int64_t padding) {
  return max_pool<true>(x, kernel, stride, padding, "relu_max_pool2d");
}

Variable avg_pool2d(const Variable& x, std::int64_t kernel, std::int64_t stride,
                    std::int64_t padding) {
  const Tensor& X = val(x, "avg_pool2d", "input");
  const PoolGeometry g = pool_geometry(X, kernel, stride, padding, "avg_pool2d");
  Tensor Y({g.N, g.C, g.OH, g.OW}, DType::f32);
  const float* xp = X.data<float>();
  float* yp = Y.data<float>();
  const std::int64_t planes = g.N * g.C, in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  const float scale = 1.f / static_cast<float>(g.k * g.k);  // padded zeros count
#pragma omp parallel for schedule(static) if (planes * in_plane >= detail::kParallelMin)
  for (std::int64_t pc = 0; pc < planes; ++pc) {
    const float* src = xp + pc * in_plane;
    for (std::int64_t oy = 0; oy < g.OH; ++oy)
      for (std::int64_t ox = 0; ox < g.OW; ++ox) {
        float acc = 0.f;
        for (std::int64_t ky = 0; ky < g.k; ++ky) {
          const std::int64_t iy = oy * g.s - g.pad + ky;
          if (iy < 0 || iy >= g.H) continue;
          for (std::int64_t kx = 0; kx < g.k; ++kx) {
            const std::int64_t ix = ox * g.s - g.pad + kx;
            if (ix >= 0 && ix < g.W) acc += src[iy * g.W + ix];
          }
        }
        yp[pc * out_plane + oy * g.OW + ox] = acc * scale;
      }
  }
  return make_result(
      std::move(Y), {x},
      [g, planes, in_plane, out_plane, scale](const Tensor& gy, Node& self) {
        Tensor dX({g.N, g.C, g.H, g.W}, DType::f32);
        const float* gp = gy.data<float>();
        float* dx = dX.data<float>();
#pragma omp parallel for schedule(static) if (planes * in_plane >= detail::kParallelMin)
        for (std::int64_t pc = 0; pc < planes; ++pc) {
          float* dst = dx + pc * in_plane;
          std::memset(dst, 0, sizeof(float) * in_plane);
          for (std::int64_t oy = 0; oy < g.OH; ++oy)
            for (std::int64_t ox = 0; ox < g.OW; ++ox) {
              const float v = gp[pc * out_plane + oy * g.OW + ox] * scale;
              for (std::int64_t ky = 0; ky < g.k; ++ky) {
                const std::int64_t iy = oy * g.s - g.pad + ky;
                if (iy < 0 || iy >= g.H) continue;
                for (std::int64_t kx = 0; kx < g.k; ++kx) {
                  const std::int64_t ix = ox * g.s - g.pad + kx;
                  if (ix >= 0 && ix < g.W) dst[iy * g.W + ix] += v;
                }
              }
            }
        }
        self.accumulate(0, std::move(dX));
      },
      "avg_pool2d");
}

}  // namespace verdant::autograd
