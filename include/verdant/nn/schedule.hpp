#pragma once
// Learning-rate schedules as pure functions of a step index t (the caller chooses whether t
// counts epochs or iterations). Being stateless, they resume exactly: lr(t) after a restart
// is the same number. Use: optimizer.set_lr(schedule.lr(t)).
#include <cstdint>
#include <memory>
#include <vector>

namespace verdant::nn {

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  virtual double lr(std::int64_t t) const = 0;
};

class ConstantLR : public LRSchedule {
 public:
  explicit ConstantLR(double base_lr) : base_(base_lr) {}
  double lr(std::int64_t) const override { return base_; }

 private:
  double base_;
};

// base * gamma^(t / step_size) (integer division), like torch StepLR.
class StepLR : public LRSchedule {
 public:
  StepLR(double base_lr, std::int64_t step_size, double gamma = 0.1);
  double lr(std::int64_t t) const override;

 private:
  double base_;
  std::int64_t step_size_;
  double gamma_;
};

// min + (base - min) * (1 + cos(pi * t / total)) / 2 for t <= total, then min.
class CosineLR : public LRSchedule {
 public:
  CosineLR(double base_lr, std::int64_t total_steps, double min_lr = 0.0);
  double lr(std::int64_t t) const override;

 private:
  double base_;
  std::int64_t total_;
  double min_;
};

// Cosine with warm restarts (SGDR; torch's CosineAnnealingWarmRestarts): cycles of
// first_cycle, first_cycle * cycle_mult, ... steps, each a cosine from base to min. Unlike
// torch, the run always ends at the end of a cycle: a cycle that would end after total_steps
// is merged into the one before it, so the rate is min at the last step and a run shorter
// than two cycles is plain cosine. Why: each cycle's end is a finished model (the first
// one early), and the last is the best.
class CosineRestartsLR : public LRSchedule {
 public:
  CosineRestartsLR(double base_lr, std::int64_t first_cycle, std::int64_t cycle_mult,
                   std::int64_t total_steps, double min_lr = 0.0);
  double lr(std::int64_t t) const override;
  // The step at which each cycle starts, the first being 0.
  const std::vector<std::int64_t>& cycle_starts() const { return starts_; }

 private:
  double base_, min_;
  std::int64_t total_;
  std::vector<std::int64_t> starts_;
};

// Linear warm-up in front of another schedule: for t < warmup the rate rises linearly from
// start_factor * inner.lr(0) towards inner.lr(0) (reached at t = warmup); from then on it
// is inner.lr(t - warmup) (the inner schedule starts after the warm-up).
class WarmupLR : public LRSchedule {
 public:
  WarmupLR(std::shared_ptr<const LRSchedule> inner, std::int64_t warmup_steps,
           double start_factor = 0.0);
  double lr(std::int64_t t) const override;

 private:
  std::shared_ptr<const LRSchedule> inner_;
  std::int64_t warmup_;
  double start_factor_;
};

}  // namespace verdant::nn
