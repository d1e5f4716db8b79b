#include "verdant/nn/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "verdant/core/error.hpp"

namespace verdant::nn {

namespace {

// From base at step 0 down to min at step length, along half a cosine.
double half_cosine(double base, double min, std::int64_t t, std::int64_t length) {
  const double c =
      std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(length));
  return min + (base - min) * (1.0 + c) / 2.0;
}

}  // namespace

StepLR::StepLR(double base_lr, std::int64_t step_size, double gamma)
    : base_(base_lr), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) throw Error("StepLR: step_size must be positive");
}

double StepLR::lr(std::int64_t t) const {
  return base_ * std::pow(gamma_, static_cast<double>(std::max<std::int64_t>(t, 0) / step_size_));
}

CosineLR::CosineLR(double base_lr, std::int64_t total_steps, double min_lr)
    : base_(base_lr), total_(total_steps), min_(min_lr) {
  if (total_steps <= 0) throw Error("CosineLR: total_steps must be positive");
}

double CosineLR::lr(std::int64_t t) const {
  if (t >= total_) return min_;
  if (t <= 0) return base_;
  return half_cosine(base_, min_, t, total_);
}

CosineRestartsLR::CosineRestartsLR(double base_lr, std::int64_t first_cycle,
                                   std::int64_t cycle_mult, std::int64_t total_steps, double min_lr)
    : base_(base_lr), min_(min_lr), total_(total_steps) {
  if (first_cycle <= 0) throw Error("CosineRestartsLR: first_cycle must be positive");
  if (cycle_mult < 1) throw Error("CosineRestartsLR: cycle_mult must be at least 1");
  if (total_steps <= 0) throw Error("CosineRestartsLR: total_steps must be positive");
  starts_.push_back(0);
  // A further cycle starts only where it also ends within the run.
  for (std::int64_t start = 0, length = first_cycle; start + length < total_steps;) {
    const std::int64_t next = start + length;
    if ((total_steps - next) / cycle_mult < length) break;  // no room for length * cycle_mult
    starts_.push_back(next);
    start = next;
    length *= cycle_mult;
  }
}

double CosineRestartsLR::lr(std::int64_t t) const {
  if (t >= total_) return min_;
  if (t <= 0) return base_;
  const auto next = std::upper_bound(starts_.begin(), starts_.end(), t);
  const std::int64_t start = *(next - 1);
  const std::int64_t end = next == starts_.end() ? total_ : *next;
  return half_cosine(base_, min_, t - start, end - start);
}

WarmupLR::WarmupLR(std::shared_ptr<const LRSchedule> inner, std::int64_t warmup_steps,
                   double start_factor)
    : inner_(std::move(inner)), warmup_(warmup_steps), start_factor_(start_factor) {
  if (!inner_) throw Error("WarmupLR: no inner schedule");
  if (warmup_steps < 0) throw Error("WarmupLR: warmup_steps must be non-negative");
  if (start_factor < 0 || start_factor > 1) throw Error("WarmupLR: start_factor must be in [0, 1]");
}

double WarmupLR::lr(std::int64_t t) const {
  if (t >= warmup_) return inner_->lr(t - warmup_);
  const double target = inner_->lr(0);
  const double f = start_factor_ + (1.0 - start_factor_) *
                                       static_cast<double>(std::max<std::int64_t>(t, 0)) /
                                       static_cast<double>(warmup_);
  return target * f;
}

}  // namespace verdant::nn
