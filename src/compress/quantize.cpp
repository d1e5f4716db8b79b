#include "verdant/compress/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "verdant/core/error.hpp"

namespace verdant::compress {

QuantParams asymmetric_params(float lo, float hi, int bits) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  QuantParams p;
  p.qmin = 0;
  p.qmax = (1 << bits) - 1;
  const float range = hi - lo;
  p.scale = range > 0 ? range / float(p.qmax - p.qmin) : 1.0f;
  p.zero_point = std::clamp<std::int32_t>(
      static_cast<std::int32_t>(std::lround(p.qmin - lo / p.scale)), p.qmin, p.qmax);
  return p;
}

QuantParams symmetric_params(float absmax, int bits) {
  QuantParams p;
  p.qmax = (1 << (bits - 1)) - 1;
  p.qmin = -p.qmax;
  p.zero_point = 0;
  p.scale = absmax > 0 ? absmax / float(p.qmax) : 1.0f;
  return p;
}

std::int32_t quantize_value(float x, const QuantParams& p) {
  const float q = std::nearbyint(x / p.scale) + float(p.zero_point);
  if (std::isnan(q)) return p.zero_point;  // a NaN weight must not become UB in the cast
  return static_cast<std::int32_t>(std::clamp(q, float(p.qmin), float(p.qmax)));
}

void fake_quantize(std::span<const float> x, std::span<float> out, const QuantParams& p,
                   std::span<std::uint8_t> pass) {
  const float inv = 1.0f / p.scale;
  const float qmin = float(p.qmin), qmax = float(p.qmax), zp = float(p.zero_point);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float q = std::nearbyint(x[i] * inv) + zp;
    const float c = std::isnan(q) ? zp : std::clamp(q, qmin, qmax);
    if (!pass.empty()) pass[i] = q >= qmin && q <= qmax;
    out[i] = (c - zp) * p.scale;
  }
}

void fake_quantize_backward(std::span<const float> grad_out, std::span<const std::uint8_t> pass,
                            std::span<float> grad_in) {
  for (std::size_t i = 0; i < grad_out.size(); ++i) grad_in[i] = pass[i] ? grad_out[i] : 0.0f;
}

std::vector<QuantParams> per_channel_params(const Tensor& weight, int bits) {
  const std::int64_t rows = weight.dim(0), cols = weight.numel() / rows;
  const float* w = weight.data<float>();
  std::vector<QuantParams> out(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    float m = 0;
    for (std::int64_t c = 0; c < cols; ++c) m = std::max(m, std::fabs(w[r * cols + c]));
    out[r] = symmetric_params(m, bits);
  }
  return out;
}

Tensor fake_quantize_per_channel(const Tensor& weight, const std::vector<QuantParams>& params,
                                 Tensor* pass_mask) {
  const std::int64_t rows = weight.dim(0), cols = weight.numel() / rows;
  if (static_cast<std::int64_t>(params.size()) != rows)
    throw Error("fake_quantize_per_channel: one parameter set per output channel is needed");
  Tensor out(weight.shape(), DType::f32);
  if (pass_mask) *pass_mask = Tensor(weight.shape(), DType::u8);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::span<const float> src(weight.data<float>() + r * cols, static_cast<std::size_t>(cols));
    std::span<float> dst(out.data<float>() + r * cols, static_cast<std::size_t>(cols));
    std::span<std::uint8_t> pass;
    if (pass_mask)
      pass = {pass_mask->data<std::uint8_t>() + r * cols, static_cast<std::size_t>(cols)};
    fake_quantize(src, dst, params[r], pass);
  }
  return out;
}

Tensor quantize_per_channel(const Tensor& weight, const std::vector<QuantParams>& params) {
  const std::int64_t rows = weight.dim(0), cols = weight.numel() / rows;
  Tensor out(weight.shape(), DType::i8);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      out.data<std::int8_t>()[r * cols + c] =
          static_cast<std::int8_t>(quantize_value(weight.data<float>()[r * cols + c], params[r]));
  return out;
}

void RangeObserver::observe(std::span<const float> x) {
  if (x.empty()) return;
  const auto [mn, mx] = std::minmax_element(x.begin(), x.end());
  if (!seen_) {
    lo_ = *mn;
    hi_ = *mx;
    seen_ = true;
    return;
  }
  const float c = static_cast<float>(1.0 - momentum_);
  lo_ += c * (*mn - lo_);
  hi_ += c * (*mx - hi_);
}

Calibrator::Calibrator(Calibration method, double percentile, std::size_t max_samples)
    : method_(method), percentile_(percentile), max_samples_(max_samples) {
  if (percentile <= 0 || percentile > 100)
    throw Error("calibration percentile must be in (0, 100]");
}

void Calibrator::observe(std::span<const float> x) {
  for (float v : x) {
    if (seen_ == 0) lo_ = hi_ = v;
    lo_ = std::min(lo_, v);
    hi_ = std::max(hi_, v);
    ++seen_;
    // Reservoir sampling keeps a uniform sample of everything observed.
    if (values_.size() < max_samples_) {
      values_.push_back(v);
    } else {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      const std::size_t j = rng_ % seen_;
      if (j < max_samples_) values_[j] = v;
    }
  }
}

double quantization_mse(std::span<const float> x, const QuantParams& p) {
  double err = 0;
  for (float v : x) {
    const float r = dequantize_value(quantize_value(v, p), p);
    err += double(r - v) * double(r - v);
  }
  return x.empty() ? 0.0 : err / double(x.size());
}

QuantParams Calibrator::params(int bits) const {
  if (seen_ == 0) throw Error("calibration saw no activations");
  if (method_ == Calibration::minmax) return asymmetric_params(lo_, hi_, bits);
  std::vector<float> v = values_;
  if (method_ == Calibration::percentile) {
    const double tail = (100.0 - percentile_) / 100.0;
    const auto at = [&](double q) {
      const auto k = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * double(v.size() - 1));
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
      return v[k];
    };
    // Clip only the tails that are actually present (a ReLU output has no negative tail).
    const float lo = lo_ < 0 ? at(tail) : lo_;
    const float hi = hi_ > 0 ? at(1.0 - tail) : hi_;
    return asymmetric_params(lo, hi, bits);
  }
  // MSE: shrink the min-max range by steps and keep the one with the least error.
  QuantParams best = asymmetric_params(lo_, hi_, bits);
  double best_err = quantization_mse(v, best);
  for (int i = 1; i < 100; ++i) {
    const float f = 1.0f - 0.01f * float(i);
    const QuantParams p = asymmetric_params(lo_ * f, hi_ * f, bits);
    const double e = quantization_mse(v, p);
    if (e < best_err) {
      best_err = e;
      best = p;
    }
  }
  return best;
}

}  // namespace verdant::compress
