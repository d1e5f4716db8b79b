// Batch normalisation over [N, C] or [N, C, H, W] (statistics per channel C).
#include <cmath>

#include "internal.hpp"

namespace verdant::autograd {

using detail::require;
using detail::val;

Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias,
                    Tensor& running_mean, Tensor& running_var, bool training, float momentum,
                    float eps) {
  const Tensor& X = val(x, "batch_norm", "input");
  require(X.ndim() == 2 || X.ndim() == 4,
          "batch_norm: input must be [N, C] or [N, C, H, W], got " + shape_str(X.shape()));
  const std::int64_t N = X.dim(0), C = X.dim(1), S = X.ndim() == 4 ? X.dim(2) * X.dim(3) : 1;
  const std::int64_t M = N * S;
  require(running_mean.defined() && running_var.defined() && running_mean.numel() == C &&
              running_var.numel() == C,
          "batch_norm: running statistics must have " + std::to_string(C) + " elements");
  const float* w = nullptr;
  const float* b = nullptr;
  if (weight.defined()) {
    require(val(weight, "batch_norm", "weight").numel() == C,
            "batch_norm: weight size != channels");
    w = weight.value().data<float>();
  }
  if (bias.defined()) {
    require(val(bias, "batch_norm", "bias").numel() == C, "batch_norm: bias size != channels");
    b = bias.value().data<float>();
  }
  if (training) require(M > 1, "batch_norm: training needs more than one value per channel");

  Tensor xhat(X.shape(), DType::f32);
  Tensor invstd({C}, DType::f32);
  Tensor Y(X.shape(), DType::f32);
  const float* xp = X.data<float>();
  float* hp = xhat.data<float>();
  float* yp = Y.data<float>();
  float* is = invstd.data<float>();
  float* rm = running_mean.data<float>();
  float* rv = running_var.data<float>();
  for (std::int64_t c = 0; c < C; ++c) {
    double mu, var;
    if (training) {
      double s = 0.0, s2 = 0.0;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < S; ++i) s += xp[(n * C + c) * S + i];
      mu = s / M;
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < S; ++i) {
          const double d = xp[(n * C + c) * S + i] - mu;
          s2 += d * d;
        }
      var = s2 / M;
      rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * mu);
      rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * var * M / (M - 1));
    } else {
      mu = rm[c];
      var = rv[c];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    is[c] = inv;
    const float wc = w ? w[c] : 1.f, bc = b ? b[c] : 0.f;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t i = 0; i < S; ++i) {
        const std::int64_t j = (n * C + c) * S + i;
        hp[j] = static_cast<float>((xp[j] - mu) * inv);
        yp[j] = hp[j] * wc + bc;
      }
  }
  return make_result(
      std::move(Y), {x, weight, bias},
      [xhat, invstd, wt = weight.defined() ? weight.value() : Tensor(), training, N, C, S, M](
          const Tensor& gy, Node& self) {
        const float* g = gy.data<float>();
        const float* h = xhat.data<float>();
        const float* is = invstd.data<float>();
        Tensor dW({C}, DType::f32), dB({C}, DType::f32), dX;
        const bool need_x = self.needs_grad(0);
        if (need_x) dX = Tensor(xhat.shape(), DType::f32);
        for (std::int64_t c = 0; c < C; ++c) {
          double sg = 0.0, sgh = 0.0;
          for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t i = 0; i < S; ++i) {
              const std::int64_t j = (n * C + c) * S + i;
              sg += g[j];
              sgh += static_cast<double>(g[j]) * h[j];
            }
          dB.data<float>()[c] = static_cast<float>(sg);
          dW.data<float>()[c] = static_cast<float>(sgh);
          if (!need_x) continue;
          const float wc = wt.defined() ? wt.data<float>()[c] : 1.f;
          float* dx = dX.data<float>();
          if (training) {
            // dx = w * invstd / M * (M g - sum(g) - xhat * sum(g xhat))
            const double k = wc * is[c] / static_cast<double>(M);
            for (std::int64_t n = 0; n < N; ++n)
              for (std::int64_t i = 0; i < S; ++i) {
                const std::int64_t j = (n * C + c) * S + i;
                dx[j] = static_cast<float>(k * (M * static_cast<double>(g[j]) - sg - h[j] * sgh));
              }
          } else {
            const float k = wc * is[c];
            for (std::int64_t n = 0; n < N; ++n)
              for (std::int64_t i = 0; i < S; ++i) {
                const std::int64_t j = (n * C + c) * S + i;
                dx[j] = g[j] * k;
              }
          }
        }
        if (need_x) self.accumulate(0, std::move(dX));
        self.accumulate(1, std::move(dW));
        self.accumulate(2, std::move(dB));
      },
      "batch_norm");
}

}  // namespace verdant::autograd
