#pragma once
// Carbon-aware training: binds a CarbonAwareController to the training loop. It is its own
// target, verdant::carbon_training, linking both verdant::schedule and verdant::train, so the
// schedule library itself stays independent of the tensor engine.
//
// How a pause works: the callback records each optimizer step on the controller's clock
// and, when the policy says so, asks the trainer to stop. The trainer finishes the step and
// writes its checkpoint; the driver sleeps on the clock until the next low-intensity slot
// (a simulated clock jumps there; the system clock really sleeps), builds a fresh Trainer
// (make_next), resumes it from that checkpoint and fits on.
//
// Step cost: on a simulated clock each step counts as SimulatedStepCost::duration; on a
// real clock the callback measures each step's wall time. Either way the energy is
// SimulatedStepCost::watts (an assumed power) x that time, so the figures are estimates.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "verdant/schedule/policy.hpp"
#include "verdant/train/callback.hpp"
#include "verdant/train/run.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::schedule {

inline constexpr const char* kCarbonPauseReason = "carbon-aware pause";

// What one optimizer step costs on the simulated clock. The energy is an assumption
// (watts x duration), so every emission figure from a simulated run is an estimate.
struct SimulatedStepCost {
  std::chrono::seconds duration{60};
  double watts = 250;
  InterruptibleJob::StepCost cost() const {
    return {duration, watts * static_cast<double>(duration.count())};
  }
};

class CarbonAwareCallback : public train::TrainerCallback {
 public:
  CarbonAwareCallback(CarbonAwareController& controller, SimulatedStepCost cost)
      : controller_(controller), cost_(cost) {}
  // Real clock: the next step's time is measured from here (call after every wait, so
  // paused time is never charged as training).
  void mark() { last_ = std::chrono::steady_clock::now(); }
  void on_step_end(train::Trainer& trainer, const train::StepInfo&) override;

 private:
  InterruptibleJob::StepCost step_cost();

  CarbonAwareController& controller_;
  SimulatedStepCost cost_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

struct CarbonTrainingResult {
  train::FitResult fit;  // of the last fit(); its epochs include those before pauses
  RunReport report;
  std::unique_ptr<train::Trainer> last;  // the last rebuilt trainer (null: no pause)
};

using MakeTrainer = std::function<std::unique_ptr<train::Trainer>()>;
// Called at every pause (checkpoint written), before sleeping until `until`.
using OnPause = std::function<void(const RunReport&, std::optional<energy::UtcSeconds> until)>;

// Fits `first` (resume it yourself for a resumed run; its options().checkpoint_path must be
// set: pauses go through that file). After every pause, `make_next()` returns a new trainer
// over the same model, optimizer and data, which is resumed from the checkpoint here.
CarbonTrainingResult train_carbon_aware(train::Trainer& first, const MakeTrainer& make_next,
                                        CarbonAwareController& controller, SimulatedStepCost cost,
                                        const OnPause& on_pause);

// `verdant train --carbon-aware wait|pause`, as settings.
struct CarbonTrainingOptions {
  std::string policy;               // wait or pause
  std::string zone;                 // bundled EIA zone or intensity series file
  std::optional<double> threshold;  // pause: gCO2eq/kWh above which to pause (default: median)
  std::string simulate_clock;       // replay the series from this UTC time; empty: real clock
  std::string sim_step = "60s";     // simulated time per optimizer step
  double sim_power_w = 250;         // assumed power while training
  std::string horizon = "24h";      // wait: how long the start may be delayed
  std::string max_delay = "7d";     // pause: most total pausing before running on
  std::function<void(const std::string&)> log;  // progress lines; null: silent
};

// Plugs carbon-aware placement into train::run_training: it drives the loop (pausing and
// resuming it) and writes OUT/carbon_aware.json. Its figures are estimates from the assumed
// power, so the run's own energy tracker is left off.
class CarbonAwareExtension : public train::TrainingExtension {
 public:
  explicit CarbonAwareExtension(CarbonTrainingOptions options);
  void attach(train::TrainingContext& context) override;
  bool drives_loop() const override { return true; }
  std::optional<train::FitResult> fit(train::TrainingContext& context) override;

 private:
  CarbonTrainingOptions options_;
  std::unique_ptr<train::Trainer> last_;  // keeps the trainer the run ended on alive
};

}  // namespace verdant::schedule
