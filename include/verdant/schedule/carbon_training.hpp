#pragma once
// Carbon-aware training: binds a CarbonAwareController to verdant::train::Trainer.
// Header-only, so that the schedule library itself does not depend on the tensor engine;
// include it only where verdant::train is linked (the CLI, tests).
//
// How a pause works: the callback records each optimizer step on the simulated clock and,
// when the policy says so, asks the trainer to stop. The trainer finishes the step and
// writes its checkpoint; the driver advances the clock to the next low-intensity slot,
// builds a fresh Trainer (make_trainer), resumes it from that checkpoint and fits on.
#include <chrono>
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
  void on_step_end(train::Trainer& trainer, const train::StepInfo&) override {
    controller_.record_step(cost_.cost());
    if (controller_.should_pause()) trainer.request_stop(kCarbonPauseReason);
  }

 private:
  CarbonAwareController& controller_;
  SimulatedStepCost cost_;
};

struct CarbonTrainingResult {
  train::FitResult fit;  // of the last fit(); its epochs include those before pauses
  RunReport report;
  std::unique_ptr<train::Trainer> last;  // the last rebuilt trainer (null: no pause)
};

// Fits `first` (resume it yourself for --resume; its options().checkpoint_path must be set:
// pauses go through that file). After every pause, `make_next()` returns a new
// std::unique_ptr<train::Trainer> over the same model, optimizer and data, which is
// resumed from the checkpoint here. `on_pause(report)` is called after every pause.
template <typename MakeTrainer, typename OnPause>
CarbonTrainingResult train_carbon_aware(train::Trainer& first, MakeTrainer&& make_next,
                                        CarbonAwareController& controller, SimulatedStepCost cost,
                                        OnPause&& on_pause) {
  const auto path = first.options().checkpoint_path;
  if (path.empty()) throw Error("carbon-aware training needs a checkpoint path to pause through");
  controller.start();
  auto callback = std::make_shared<CarbonAwareCallback>(controller, cost);
  CarbonTrainingResult result;
  first.add_callback(callback);
  result.fit = first.fit();
  while (result.fit.stopped_early && result.fit.stop_reason == kCarbonPauseReason) {
    controller.wait();
    on_pause(controller.report());
    result.last = make_next();
    result.last->add_callback(callback);
    result.last->resume_from(path);
    result.fit = result.last->fit();
  }
  result.report = controller.finish();
  return result;
}

}  // namespace verdant::schedule
