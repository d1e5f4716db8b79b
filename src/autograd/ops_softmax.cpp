// softmax, log_softmax, fused cross-entropy, dropout.
#include <cmath>
#include <limits>

#include "internal.hpp"

namespace verdant::autograd {

using detail::require;
using detail::val;

namespace {

struct Axis {
  std::int64_t outer = 1, D = 1, inner = 1;
};

Axis split_axis(const Tensor& X, int dim, const char* op) {
  require(X.ndim() > 0, std::string(op) + ": input has no dimensions");
  const int d = dim < 0 ? dim + X.ndim() : dim;
  require(d >= 0 && d < X.ndim(), std::string(op) + ": dim " + std::to_string(dim) +
                                      " out of range for " + shape_str(X.shape()));
  Axis a;
  for (int i = 0; i < d; ++i) a.outer *= X.dim(i);
  a.D = X.dim(d);
  for (int i = d + 1; i < X.ndim(); ++i) a.inner *= X.dim(i);
  return a;
}

// y = log_softmax(x) along the axis (log == true) or softmax (log == false).
void softmax_forward(const float* x, float* y, const Axis& a, bool log) {
  for (std::int64_t o = 0; o < a.outer; ++o)
    for (std::int64_t i = 0; i < a.inner; ++i) {
      const float* xs = x + o * a.D * a.inner + i;
      float* ys = y + o * a.D * a.inner + i;
      float mx = -std::numeric_limits<float>::infinity();
      for (std::int64_t k = 0; k < a.D; ++k) mx = std::max(mx, xs[k * a.inner]);
      double s = 0.0;
      for (std::int64_t k = 0; k < a.D; ++k)
        s += std::exp(static_cast<double>(xs[k * a.inner] - mx));
      if (log) {
        const float lse = mx + static_cast<float>(std::log(s));
        for (std::int64_t k = 0; k < a.D; ++k) ys[k * a.inner] = xs[k * a.inner] - lse;
      } else {
        const double inv = 1.0 / s;
        for (std::int64_t k = 0; k < a.D; ++k)
          ys[k * a.inner] =
              static_cast<float>(std::exp(static_cast<double>(xs[k * a.inner] - mx)) * inv);
      }
    }
}

}  // namespace

Variable softmax(const Variable& x, int dim) {
  const Tensor& X = val(x, "softmax", "input");
  const Axis a = split_axis(X, dim, "softmax");
  Tensor Y(X.shape(), DType::f32);
  softmax_forward(X.data<float>(), Y.data<float>(), a, false);
  Tensor Ys = Y;
  return make_result(
      std::move(Y), {x},
      [Ys, a](const Tensor& gy, Node& self) {
        // dx = y * (g - sum(g * y))
        Tensor g = gy;
        float* gp = g.data<float>();
        const float* yp = Ys.data<float>();
        for (std::int64_t o = 0; o < a.outer; ++o)
          for (std::int64_t i = 0; i < a.inner; ++i) {
            const std::int64_t base = o * a.D * a.inner + i;
            double dot = 0.0;
            for (std::int64_t k = 0; k < a.D; ++k)
              dot += static_cast<double>(gp[base + k * a.inner]) * yp[base + k * a.inner];
            for (std::int64_t k = 0; k < a.D; ++k) {
              const std::int64_t j = base + k * a.inner;
              gp[j] = yp[j] * (gp[j] - static_cast<float>(dot));
            }
          }
        self.accumulate(0, std::move(g));
      },
      "softmax");
}

Variable log_softmax(const Variable& x, int dim) {
  const Tensor& X = val(x, "log_softmax", "input");
  const Axis a = split_axis(X, dim, "log_softmax");
  Tensor Y(X.shape(), DType::f32);
  softmax_forward(X.data<float>(), Y.data<float>(), a, true);
  Tensor Ys = Y;
  return make_result(
      std::move(Y), {x},
      [Ys, a](const Tensor& gy, Node& self) {
        // dx = g - exp(y) * sum(g)
        Tensor g = gy;
        float* gp = g.data<float>();
        const float* yp = Ys.data<float>();
        for (std::int64_t o = 0; o < a.outer; ++o)
          for (std::int64_t i = 0; i < a.inner; ++i) {
            const std::int64_t base = o * a.D * a.inner + i;
            double s = 0.0;
            for (std::int64_t k = 0; k < a.D; ++k) s += gp[base + k * a.inner];
            for (std::int64_t k = 0; k < a.D; ++k) {
              const std::int64_t j = base + k * a.inner;
              gp[j] -= std::exp(yp[j]) * static_cast<float>(s);
            }
          }
        self.accumulate(0, std::move(g));
      },
      "log_softmax");
}

Variable cross_entropy(const Variable& logits, const Tensor& labels, float label_smoothing) {
  const Tensor& X = val(logits, "cross_entropy", "logits");
  require(X.ndim() == 2, "cross_entropy: logits must be [N, C], got " + shape_str(X.shape()));
  require(labels.defined() && labels.dtype() == DType::i32,
          "cross_entropy: labels must be an i32 tensor");
  const std::int64_t N = X.dim(0), C = X.dim(1);
  require(labels.numel() == N, "cross_entropy: " + std::to_string(labels.numel()) + " labels for " +
                                   std::to_string(N) + " rows of logits");
  require(N > 0 && C > 0, "cross_entropy: empty logits " + shape_str(X.shape()));
  require(label_smoothing >= 0.f && label_smoothing < 1.f,
          "cross_entropy: label_smoothing must be in [0, 1)");
  const std::int32_t* lab = labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < N; ++i)
    require(lab[i] >= 0 && lab[i] < C, "cross_entropy: label " + std::to_string(lab[i]) +
                                           " at row " + std::to_string(i) + " outside [0, " +
                                           std::to_string(C) + ")");
  // Probabilities are kept for the backward pass: d loss / d logits = (p - target) / N.
  Tensor P(X.shape(), DType::f32);
  const float* xp = X.data<float>();
  float* pp = P.data<float>();
  const double off = label_smoothing / static_cast<double>(C);
  const double on = 1.0 - label_smoothing + off;
  double total = 0.0;
  for (std::int64_t r = 0; r < N; ++r) {
    const float* xs = xp + r * C;
    float* ps = pp + r * C;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::int64_t c = 0; c < C; ++c) mx = std::max(mx, xs[c]);
    double s = 0.0;
    for (std::int64_t c = 0; c < C; ++c) {
      const double e = std::exp(static_cast<double>(xs[c] - mx));
      ps[c] = static_cast<float>(e);
      s += e;
    }
    const double lse = mx + std::log(s);
    const double inv = 1.0 / s;
    double row = 0.0;
    for (std::int64_t c = 0; c < C; ++c) {
      ps[c] = static_cast<float>(ps[c] * inv);
      const double target = (c == lab[r] ? on : off);
      if (target != 0.0) row -= target * (xs[c] - lse);
    }
    total += row;
  }
  Tensor loss = Tensor::full({}, static_cast<float>(total / static_cast<double>(N)));
  return make_result(
      std::move(loss), {logits},
      [P, labels, N, C, on, off](const Tensor& gy, Node& self) {
        const float scale = gy.at(0) / static_cast<float>(N);
        Tensor dX(P.shape(), DType::f32);
        const float* pp = P.data<float>();
        const std::int32_t* lab = labels.data<std::int32_t>();
        float* d = dX.data<float>();
        for (std::int64_t r = 0; r < N; ++r)
          for (std::int64_t c = 0; c < C; ++c) {
            const double t = c == lab[r] ? on : off;
            d[r * C + c] = static_cast<float>((pp[r * C + c] - t) * scale);
          }
        self.accumulate(0, std::move(dX));
      },
      "cross_entropy");
}

Variable dropout(const Variable& x, float p, bool training, Generator& gen) {
  const Tensor& X = val(x, "dropout", "input");
  require(p >= 0.f && p <= 1.f, "dropout: p must be in [0, 1], got " + std::to_string(p));
  if (!training || p == 0.f) return x;
  Tensor mask(X.shape(), DType::f32);
  float* m = mask.data<float>();
  const float keep_scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  for (std::int64_t i = 0; i < X.numel(); ++i) m[i] = gen.uniform() < p ? 0.f : keep_scale;
  Tensor Y(X.shape(), DType::f32);
  const float* xp = X.data<float>();
  float* yp = Y.data<float>();
  for (std::int64_t i = 0; i < X.numel(); ++i) yp[i] = xp[i] * m[i];
  return make_result(
      std::move(Y), {x},
      [mask](const Tensor& gy, Node& self) {
        Tensor g = gy;
        float* gp = g.data<float>();
        const float* mp = mask.data<float>();
        for (std::int64_t i = 0; i < g.numel(); ++i) gp[i] *= mp[i];
        self.accumulate(0, std::move(g));
      },
      "dropout");
}

}  // namespace verdant::autograd
