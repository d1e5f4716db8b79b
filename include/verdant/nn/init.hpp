#pragma once
// Weight initialisation, in place, drawing from a Generator (PyTorch formulas).
#include "verdant/autograd/generator.hpp"
#include "verdant/core/tensor.hpp"

namespace verdant::nn::init {

using autograd::Generator;

// fan_in / fan_out of a weight [out, in, ...kernel]: in * receptive field, out * field.
std::int64_t fan_in(const Tensor& w);
std::int64_t fan_out(const Tensor& w);

void uniform(Tensor& t, float lo, float hi, Generator& gen);
void normal(Tensor& t, float mean, float stddev, Generator& gen);
void constant(Tensor& t, float value);
// gain for ReLU is sqrt(2). bound = gain * sqrt(3 / fan_in).
void kaiming_uniform(Tensor& w, Generator& gen, float gain = 1.41421356f);
void kaiming_normal(Tensor& w, Generator& gen, float gain = 1.41421356f);
// bound = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform(Tensor& w, Generator& gen, float gain = 1.f);
void xavier_normal(Tensor& w, Generator& gen, float gain = 1.f);

}  // namespace verdant::nn::init
