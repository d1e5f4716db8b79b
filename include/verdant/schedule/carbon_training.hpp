#pragma once
// Carbon-aware training: binds a CarbonAwareController to verdant::train::Trainer.
// Header-only, so that the schedule library itself does not depend on the tensor engine;
// include it only where verdant::train is linked (the CLI, tests).
//
// How a pause works: the callback records each optimizer step on the controller's clock
// and, when the policy says so, asks the trainer to stop. The trainer finishes the step and
// writes its checkpoint; the driver sleeps on the clock until the next low-intensity slot
// (a simulated clock jumps there; the system clock really sleeps), builds a fresh Trainer
// (make_trainer), resumes it from that checkpoint and fits on.
//
// Step cost: on a simulated clock each step counts as SimulatedStepCost::duration; on a
// real clock the callback measures each step's wall time. Either way the energy is
// SimulatedStepCost::watts (an assumed power) x that time, so the figures are estimates.
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

#include "verdant/core/error.hpp"
#include "verdant/schedule/policy.hpp"
#include "verdant/train/callback.hpp"
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
  void on_step_end(train::Trainer& trainer, const train::StepInfo&) override {
    controller_.record_step(step_cost());
    if (controller_.should_pause()) trainer.request_stop(kCarbonPauseReason);
  }

 private:
  InterruptibleJob::StepCost step_cost() {
    if (controller_.clock().simulated()) return cost_.cost();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    // Whole seconds for the span (a sub-second step is charged at the current slot);
    // the energy uses the exact time.
    return {std::chrono::seconds(static_cast<std::int64_t>(seconds)), cost_.watts * seconds};
  }

  CarbonAwareController& controller_;
  SimulatedStepCost cost_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

struct CarbonTrainingResult {
  train::FitResult fit;  // of the last fit(); its epochs include those before pauses
  RunReport report;
  std::unique_ptr<train::Trainer> last;  // the last rebuilt trainer (null: no pause)
};

// Fits `first` (resume it yourself for --resume; its options().checkpoint_path must be set:
// pauses go through that file). After every pause, `make_next()` returns a new
// std::unique_ptr<train::Trainer> over the same model, optimizer and data, which is
// resumed from the checkpoint here. `on_pause(report, std::optional<UtcSeconds> until)` is
// called at every pause (checkpoint written), before sleeping until `until`.
template <typename MakeTrainer, typename OnPause>
CarbonTrainingResult train_carbon_aware(train::Trainer& first, MakeTrainer&& make_next,
                                        CarbonAwareController& controller, SimulatedStepCost cost,
                                        OnPause&& on_pause) {
  const auto path = first.options().checkpoint_path;
  if (path.empty()) throw Error("carbon-aware training needs a checkpoint path to pause through");
  controller.start();
  auto callback = std::make_shared<CarbonAwareCallback>(controller, cost);
  callback->mark();
  CarbonTrainingResult result;
  first.add_callback(callback);
  result.fit = first.fit();
  while (result.fit.stopped_early && result.fit.stop_reason == kCarbonPauseReason) {
    on_pause(controller.report(), controller.resume_time());  // before sleeping
    controller.wait();
    callback->mark();
    result.last = make_next();
    result.last->add_callback(callback);
    result.last->resume_from(path);
    result.fit = result.last->fit();
  }
  result.report = controller.finish();
  return result;
}

}  // namespace verdant::schedule
