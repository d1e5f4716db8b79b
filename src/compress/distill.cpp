#include "verdant/compress/distill.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "verdant/core/error.hpp"

namespace verdant::compress {

namespace {
// log-softmax of row / t in double, stable.
void log_softmax(const float* row, std::int64_t c, double t, std::vector<double>& out) {
  double mx = -INFINITY;
  for (std::int64_t j = 0; j < c; ++j) mx = std::max(mx, double(row[j]) / t);
  double sum = 0;
  for (std::int64_t j = 0; j < c; ++j) sum += std::exp(double(row[j]) / t - mx);
  const double lse = mx + std::log(sum);
  for (std::int64_t j = 0; j < c; ++j) out[j] = double(row[j]) / t - lse;
}
}  // namespace

KdResult kd_loss(const Tensor& student, const Tensor& teacher, std::span<const std::int32_t> labels,
                 double alpha, double temperature) {
  if (student.ndim() != 2 || student.shape() != teacher.shape())
    throw Error("distillation: teacher output shape " + shape_str(teacher.shape()) +
                " differs from the student's " + shape_str(student.shape()));
  const std::int64_t n = student.dim(0), c = student.dim(1);
  if (static_cast<std::int64_t>(labels.size()) != n)
    throw Error("distillation: label count differs from the batch size");
  if (temperature <= 0) throw Error("distillation: temperature must be positive");
  KdResult r;
  r.grad = Tensor({n, c}, DType::f32);
  std::vector<double> ls(c), ls_t(c), lt_t(c);
  const double t = temperature;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* s = student.data<float>() + i * c;
    const float* te = teacher.data<float>() + i * c;
    const std::int32_t y = labels[i];
    if (y < 0 || y >= c) throw Error("distillation: label out of range");
    log_softmax(s, c, 1.0, ls);
    log_softmax(s, c, t, ls_t);
    log_softmax(te, c, t, lt_t);
    r.ce -= ls[y];
    float* g = r.grad.data<float>() + i * c;
    for (std::int64_t j = 0; j < c; ++j) {
      const double pt = std::exp(lt_t[j]), ps_t = std::exp(ls_t[j]);
      r.kl += pt * (lt_t[j] - ls_t[j]);
      // d/ds_j of CE = p_j - [j == y]; of T^2 KL = T (ps_t_j - pt_j).
      const double d_ce = std::exp(ls[j]) - (j == y ? 1.0 : 0.0);
      const double d_kl = t * (ps_t - pt);
      g[j] = static_cast<float>((alpha * d_ce + (1 - alpha) * d_kl) / double(n));
    }
  }
  r.ce /= double(n);
  r.kl /= double(n);
  r.loss = alpha * r.ce + (1 - alpha) * t * t * r.kl;
  return r;
}

}  // namespace verdant::compress
