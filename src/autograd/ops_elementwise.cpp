// Activations, broadcasting arithmetic, reductions and reshapes.
#include <cmath>

#include "internal.hpp"

namespace verdant::autograd {

using detail::kParallelMin;
using detail::require;
using detail::val;

namespace {

// Applies y[i] = f(x[i]) and records dx[i] = gy[i] * d(x[i], y[i]).
template <typename F, typename D>
Variable unary(const Variable& x, const char* name, F f, D d) {
  const Tensor& X = val(x, name, "input");
  Tensor Y(X.shape(), DType::f32);
  const float* xp = X.data<float>();
  float* yp = Y.data<float>();
  const std::int64_t n = X.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
  Tensor Ysaved = Y;
  return make_result(
      std::move(Y), {x},
      [X, Ysaved, d, n](const Tensor& gy, Node& self) {
        // The incoming gradient belongs to this backward pass: reuse it.
        Tensor g = gy;
        float* gp = g.data<float>();
        const float* xp = X.data<float>();
        const float* yp = Ysaved.data<float>();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
        for (std::int64_t i = 0; i < n; ++i) gp[i] *= d(xp[i], yp[i]);
        self.accumulate(0, std::move(g));
      },
      name);
}

}  // namespace

Variable relu(const Variable& x) {
  return unary(
      x, "relu", [](float v) { return v > 0.f ? v : 0.f; },
      [](float v, float) { return v > 0.f ? 1.f : 0.f; });
}

Variable leaky_relu(const Variable& x, float negative_slope) {
  return unary(
      x, "leaky_relu", [negative_slope](float v) { return v > 0.f ? v : negative_slope * v; },
      [negative_slope](float v, float) { return v > 0.f ? 1.f : negative_slope; });
}

Variable tanh(const Variable& x) {
  return unary(
      x, "tanh", [](float v) { return std::tanh(v); }, [](float, float y) { return 1.f - y * y; });
}

Variable sigmoid(const Variable& x) {
  return unary(
      x, "sigmoid", [](float v) { return 1.f / (1.f + std::exp(-v)); },
      [](float, float y) { return y * (1.f - y); });
}

Variable gelu(const Variable& x) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  constexpr float kInvSqrt2Pi = 0.39894228040143268f;
  return unary(
      x, "gelu", [](float v) { return 0.5f * v * (1.f + std::erf(v * kInvSqrt2)); },
      [](float v, float) {
        return 0.5f * (1.f + std::erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * std::exp(-0.5f * v * v);
      });
}

// ---------------------------------------------------------------- broadcasting
namespace {

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                  " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides of `s` seen through the broadcast output shape (0 along broadcast dims).
std::vector<std::int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<std::int64_t> st(out.size(), 0);
  std::int64_t stride = 1;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::size_t i = s.size() - 1 - k;
    const std::size_t o = out.size() - 1 - k;
    st[o] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
  return st;
}

// Calls f(out_index, a_index, b_index) for every output element, in order.
template <typename F>
void for_each_broadcast(const Shape& out, const std::vector<std::int64_t>& sa,
                        const std::vector<std::int64_t>& sb, F f) {
  const std::size_t nd = out.size();
  const std::int64_t total = shape_numel(out);
  if (nd == 0) {
    f(0, 0, 0);
    return;
  }
  const std::int64_t inner = out[nd - 1];
  const std::int64_t ia = sa[nd - 1], ib = sb[nd - 1];
  std::vector<std::int64_t> idx(nd, 0);
  std::int64_t oa = 0, ob = 0;
  for (std::int64_t o = 0; o < total; o += inner) {
    for (std::int64_t j = 0; j < inner; ++j) f(o + j, oa + j * ia, ob + j * ib);
    // Advance the outer multi-index (dims 0..nd-2).
    for (std::size_t k = nd - 1; k-- > 0;) {
      ++idx[k];
      oa += sa[k];
      ob += sb[k];
      if (idx[k] < out[k]) break;
      oa -= sa[k] * out[k];
      ob -= sb[k] * out[k];
      idx[k] = 0;
    }
  }
}

// Sums `g` (shaped like `out`) down to `target` (broadcast-compatible).
Tensor reduce_to(const Tensor& g, const Shape& target, const Shape& out) {
  if (target == out) return g;
  Tensor r = Tensor::zeros(target);
  const auto st = broadcast_strides(target, out);
  const std::vector<std::int64_t> zero(out.size(), 0);
  const float* gp = g.data<float>();
  float* rp = r.data<float>();
  for_each_broadcast(out, st, zero,
                     [&](std::int64_t o, std::int64_t t, std::int64_t) { rp[t] += gp[o]; });
  return r;
}

enum class BinOp { add, sub, mul };

Variable binary(const Variable& a, const Variable& b, BinOp op, const char* name) {
  const Tensor& A = val(a, name, "a");
  const Tensor& B = val(b, name, "b");
  const Shape out = broadcast_shape(A.shape(), B.shape(), name);
  Tensor Y(out, DType::f32);
  const float* ap = A.data<float>();
  const float* bp = B.data<float>();
  float* yp = Y.data<float>();
  if (A.shape() == B.shape()) {
    const std::int64_t n = Y.numel();
    switch (op) {
      case BinOp::add:
        for (std::int64_t i = 0; i < n; ++i) yp[i] = ap[i] + bp[i];
        break;
      case BinOp::sub:
        for (std::int64_t i = 0; i < n; ++i) yp[i] = ap[i] - bp[i];
        break;
      case BinOp::mul:
        for (std::int64_t i = 0; i < n; ++i) yp[i] = ap[i] * bp[i];
        break;
    }
  } else {
    const auto sa = broadcast_strides(A.shape(), out), sb = broadcast_strides(B.shape(), out);
    switch (op) {
      case BinOp::add:
        for_each_broadcast(out, sa, sb, [&](auto o, auto i, auto j) { yp[o] = ap[i] + bp[j]; });
        break;
      case BinOp::sub:
        for_each_broadcast(out, sa, sb, [&](auto o, auto i, auto j) { yp[o] = ap[i] - bp[j]; });
        break;
      case BinOp::mul:
        for_each_broadcast(out, sa, sb, [&](auto o, auto i, auto j) { yp[o] = ap[i] * bp[j]; });
        break;
    }
  }
  // mul needs the operands; add/sub do not.
  Tensor As = op == BinOp::mul ? A : Tensor(), Bs = op == BinOp::mul ? B : Tensor();
  return make_result(
      std::move(Y), {a, b},
      [As, Bs, ash = A.shape(), bsh = B.shape(), out, op](const Tensor& gy, Node& self) {
        const std::int64_t n = gy.numel();
        const float* g = gy.data<float>();
        if (op == BinOp::mul) {
          const auto sa = broadcast_strides(ash, out), sb = broadcast_strides(bsh, out);
          const float* ap = As.data<float>();
          const float* bp = Bs.data<float>();
          if (self.needs_grad(0)) {
            Tensor t(out, DType::f32);
            float* tp = t.data<float>();
            for_each_broadcast(out, sa, sb, [&](auto o, auto, auto j) { tp[o] = g[o] * bp[j]; });
            self.accumulate(0, reduce_to(t, ash, out));
          }
          if (self.needs_grad(1)) {
            Tensor t(out, DType::f32);
            float* tp = t.data<float>();
            for_each_broadcast(out, sa, sb, [&](auto o, auto i, auto) { tp[o] = g[o] * ap[i]; });
            self.accumulate(1, reduce_to(t, bsh, out));
          }
          return;
        }
        if (self.needs_grad(1)) {
          Tensor gb = reduce_to(gy, bsh, out);
          if (gb.same_storage(gy) || op == BinOp::sub) {
            // gy also goes to input 0 (or gets negated): take a private copy.
            gb = gb.same_storage(gy) ? gy.clone() : gb;
            if (op == BinOp::sub) {
              float* p = gb.data<float>();
              for (std::int64_t i = 0; i < gb.numel(); ++i) p[i] = -p[i];
            }
          }
          self.accumulate(1, std::move(gb));
        }
        (void)n;
        if (self.needs_grad(0)) self.accumulate(0, reduce_to(gy, ash, out));
      },
      name);
}

}  // namespace

Variable add(const Variable& a, const Variable& b) {
  return binary(a, b, BinOp::add, "add");
}
Variable sub(const Variable& a, const Variable& b) {
  return binary(a, b, BinOp::sub, "sub");
}
Variable mul(const Variable& a, const Variable& b) {
  return binary(a, b, BinOp::mul, "mul");
}
Variable operator+(const Variable& a, const Variable& b) {
  return add(a, b);
}
Variable operator-(const Variable& a, const Variable& b) {
  return sub(a, b);
}
Variable operator*(const Variable& a, const Variable& b) {
  return mul(a, b);
}

Variable mul(const Variable& a, float s) {
  const Tensor& A = val(a, "mul", "a");
  Tensor Y(A.shape(), DType::f32);
  const float* ap = A.data<float>();
  float* yp = Y.data<float>();
  for (std::int64_t i = 0; i < A.numel(); ++i) yp[i] = ap[i] * s;
  return make_result(
      std::move(Y), {a},
      [s](const Tensor& gy, Node& self) {
        Tensor g = gy;
        float* p = g.data<float>();
        for (std::int64_t i = 0; i < g.numel(); ++i) p[i] *= s;
        self.accumulate(0, std::move(g));
      },
      "mul_scalar");
}
Variable operator*(const Variable& a, float s) {
  return mul(a, s);
}
Variable operator*(float s, const Variable& a) {
  return mul(a, s);
}

// ---------------------------------------------------------------- reductions
Variable sum(const Variable& x) {
  const Tensor& X = val(x, "sum", "input");
  double acc = 0.0;
  const float* p = X.data<float>();
  for (std::int64_t i = 0; i < X.numel(); ++i) acc += p[i];
  return make_result(
      Tensor::full({}, static_cast<float>(acc)), {x},
      [shape = X.shape()](const Tensor& gy, Node& self) {
        self.accumulate(0, Tensor::full(shape, gy.at(0)));
      },
      "sum");
}

Variable mean(const Variable& x) {
  const std::int64_t n = val(x, "mean", "input").numel();
  require(n > 0, "mean: empty input");
  return mul(sum(x), 1.f / static_cast<float>(n));
}

namespace {
int normalize_dim(int dim, int ndim, const char* op) {
  const int d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    throw Error(std::string(op) + ": dim " + std::to_string(dim) + " out of range for " +
                std::to_string(ndim) + " dimensions");
  return d;
}
}  // namespace

Variable sum(const Variable& x, int dim, bool keepdim) {
  const Tensor& X = val(x, "sum", "input");
  const int d = normalize_dim(dim, X.ndim(), "sum");
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= X.dim(i);
  for (int i = d + 1; i < X.ndim(); ++i) inner *= X.dim(i);
  const std::int64_t D = X.dim(d);
  Shape out = X.shape();
  if (keepdim)
    out[d] = 1;
  else
    out.erase(out.begin() + d);
  Tensor Y = Tensor::zeros(out);
  const float* xp = X.data<float>();
  float* yp = Y.data<float>();
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t k = 0; k < D; ++k)
      for (std::int64_t i = 0; i < inner; ++i) yp[o * inner + i] += xp[(o * D + k) * inner + i];
  return make_result(
      std::move(Y), {x},
      [shape = X.shape(), outer, D, inner](const Tensor& gy, Node& self) {
        Tensor dX(shape, DType::f32);
        const float* g = gy.data<float>();
        float* dx = dX.data<float>();
        for (std::int64_t o = 0; o < outer; ++o)
          for (std::int64_t k = 0; k < D; ++k)
            for (std::int64_t i = 0; i < inner; ++i) dx[(o * D + k) * inner + i] = g[o * inner + i];
        self.accumulate(0, std::move(dX));
      },
      "sum_dim");
}

Variable mean(const Variable& x, int dim, bool keepdim) {
  const Tensor& X = val(x, "mean", "input");
  const std::int64_t D = X.dim(normalize_dim(dim, X.ndim(), "mean"));
  require(D > 0, "mean: empty dimension");
  return mul(sum(x, dim, keepdim), 1.f / static_cast<float>(D));
}

// ---------------------------------------------------------------- shapes
Variable reshape(const Variable& x, Shape shape) {
  const Tensor& X = val(x, "reshape", "input");
  Tensor Y = X.reshape(std::move(shape));  // shares storage, like a PyTorch view
  return make_result(
      std::move(Y), {x},
      [in = X.shape()](const Tensor& gy, Node& self) { self.accumulate(0, gy.reshape(in)); },
      "reshape");
}

Variable flatten(const Variable& x, int start_dim) {
  const Tensor& X = val(x, "flatten", "input");
  if (X.ndim() == 0) return reshape(x, {1});
  const int s = normalize_dim(start_dim, X.ndim(), "flatten");
  Shape out(X.shape().begin(), X.shape().begin() + s);
  std::int64_t rest = 1;
  for (int i = s; i < X.ndim(); ++i) rest *= X.dim(i);
  out.push_back(rest);
  return reshape(x, std::move(out));
}

}  // namespace verdant::autograd
