#pragma once
// Quantization math: affine parameters, fake-quant with a straight-through estimator,
// symmetric per-channel int8 weights, asymmetric activations with moving-average ranges
// (QAT) and post-training calibration (min-max, percentile, MSE).
#include <cstdint>
#include <span>
#include <vector>

#include "verdant/compress/recipe.hpp"
#include "verdant/core/tensor.hpp"

namespace verdant::compress {

// real = scale * (q - zero_point), q in [qmin, qmax].
struct QuantParams {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  std::int32_t qmin = -128;
  std::int32_t qmax = 127;
};

// Asymmetric parameters covering [lo, hi] (widened to include 0, so 0 is exact).
QuantParams asymmetric_params(float lo, float hi, int bits = 8);  // q in [0, 2^bits - 1]
// Symmetric parameters for |x| <= absmax: zero point 0, q in [-(2^(b-1)-1), 2^(b-1)-1].
QuantParams symmetric_params(float absmax, int bits = 8);

std::int32_t quantize_value(float x, const QuantParams& p);
inline float dequantize_value(std::int32_t q, const QuantParams& p) {
  return p.scale * static_cast<float>(q - p.zero_point);
}

// out = dequantize(quantize(x)). `pass`, if given (u8, same numel), receives 1 where x lies in
// the representable range: the straight-through estimator passes the gradient there only.
void fake_quantize(std::span<const float> x, std::span<float> out, const QuantParams& p,
                   std::span<std::uint8_t> pass = {});
// Backward of fake_quantize: grad_in = grad_out where pass, else 0.
void fake_quantize_backward(std::span<const float> grad_out, std::span<const std::uint8_t> pass,
                            std::span<float> grad_in);

// Symmetric per-output-channel parameters of a weight [out, ...].
std::vector<QuantParams> per_channel_params(const Tensor& weight, int bits = 8);
// Fake-quantizes each output channel of `weight` with its own parameters.
Tensor fake_quantize_per_channel(const Tensor& weight, const std::vector<QuantParams>& params,
                                 Tensor* pass_mask = nullptr);
// int8 codes of a weight (per channel), for the compact encoding.
Tensor quantize_per_channel(const Tensor& weight, const std::vector<QuantParams>& params);

// Moving-average min/max of activations (PyTorch's MovingAverageMinMaxObserver): the first
// batch sets the range, later ones move it by (1 - momentum).
class RangeObserver {
 public:
  explicit RangeObserver(double momentum = 0.99) : momentum_(momentum) {}
  void observe(std::span<const float> x);
  bool ready() const { return seen_; }
  float lo() const { return lo_; }
  float hi() const { return hi_; }
  QuantParams params(int bits = 8) const { return asymmetric_params(lo_, hi_, bits); }
  // The state a resumed run continues from (ready(), lo(), hi()).
  void restore(bool seen, float lo, float hi) {
    seen_ = seen;
    lo_ = lo;
    hi_ = hi;
  }

 private:
  double momentum_;
  bool seen_ = false;
  float lo_ = 0, hi_ = 0;
};

// Post-training calibration: collects a bounded sample of activations, then picks the range.
class Calibrator {
 public:
  explicit Calibrator(Calibration method, double percentile = 99.99,
                      std::size_t max_samples = 1 << 20);
  void observe(std::span<const float> x);
  QuantParams params(int bits = 8) const;
  std::size_t samples() const { return values_.size(); }

 private:
  Calibration method_;
  double percentile_;
  std::size_t max_samples_;
  std::size_t seen_ = 0;
  std::uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  float lo_ = 0, hi_ = 0;
  std::vector<float> values_;
};

// Mean squared error of quantizing `x` with `p` (used by MSE calibration and tests).
double quantization_mse(std::span<const float> x, const QuantParams& p);

}  // namespace verdant::compress
