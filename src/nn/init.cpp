#include "verdant/nn/init.hpp"

#include <cmath>

#include "verdant/core/error.hpp"

namespace verdant::nn::init {

namespace {
std::int64_t receptive_field(const Tensor& w) {
  if (w.ndim() < 2)
    throw Error("init: fan in/out needs a weight with at least 2 dimensions, got " +
                shape_str(w.shape()));
  std::int64_t r = 1;
  for (int i = 2; i < w.ndim(); ++i) r *= w.dim(i);
  return r;
}
}  // namespace

std::int64_t fan_in(const Tensor& w) {
  return w.dim(1) * receptive_field(w);
}
std::int64_t fan_out(const Tensor& w) {
  return w.dim(0) * receptive_field(w);
}

void uniform(Tensor& t, float lo, float hi, Generator& gen) {
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform(lo, hi);
}

void normal(Tensor& t, float mean, float stddev, Generator& gen) {
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal(mean, stddev);
}

void constant(Tensor& t, float value) {
  t.fill(value);
}

void kaiming_uniform(Tensor& w, Generator& gen, float gain) {
  const float bound = gain * std::sqrt(3.f / static_cast<float>(fan_in(w)));
  uniform(w, -bound, bound, gen);
}

void kaiming_normal(Tensor& w, Generator& gen, float gain) {
  normal(w, 0.f, gain / std::sqrt(static_cast<float>(fan_in(w))), gen);
}

void xavier_uniform(Tensor& w, Generator& gen, float gain) {
  const float bound = gain * std::sqrt(6.f / static_cast<float>(fan_in(w) + fan_out(w)));
  uniform(w, -bound, bound, gen);
}

void xavier_normal(Tensor& w, Generator& gen, float gain) {
  normal(w, 0.f, gain * std::sqrt(2.f / static_cast<float>(fan_in(w) + fan_out(w))), gen);
}

}  // namespace verdant::nn::init
