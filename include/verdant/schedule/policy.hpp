#pragma once
// Carbon-aware execution of an interruptible job (training) against an intensity series,
// on a Clock: a simulated one that replays history fast, or the real system clock (then
// the series is a forecast that must cover the present).
//
// Policies:
//   RunNow      - start at submission, never pause (the baseline).
//   WaitForBest - before starting, wait for the window that minimises the job's expected
//                 emissions within `horizon` (find_best_window over [submit, submit +
//                 horizon + expected_duration]); then run without pausing.
//   Pause       - before every step, if the current slot's intensity is above `threshold`,
//                 checkpoint the job, advance the clock to the next slot at or below the
//                 threshold, resume from the checkpoint and continue. Steps are atomic, so
//                 intensity is checked at step boundaries. Unknown (gap) slots count as
//                 "not low". If no low slot comes within `max_delay` of accumulated
//                 pausing, the job runs on regardless (reported in RunReport::gave_up).
// Each step's energy is charged to the slots its simulated time span covers
// (energy::CarbonIntensity::grams), so emissions integrate hour by hour.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "verdant/energy/carbon.hpp"
#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::schedule {

using energy::UtcSeconds;

// The clock a carbon-aware run reads and sleeps on. The simulated clock replays history
// fast; the system clock runs on real time; tests inject a fake that records sleeps.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UtcSeconds now() const = 0;
  // Blocks (or, simulated, jumps) until t; returns at once when t is not in the future.
  virtual void sleep_until(UtcSeconds t) = 0;
  // A step that took `d` has just ended (StepCost::duration): returns when it began. A real
  // clock has already moved on by d; a simulated one moves forward by d here.
  virtual UtcSeconds step_taken(std::chrono::seconds d) { return now() - d; }
  // True when the clock replays history rather than running on real time.
  virtual bool simulated() const { return false; }
};

// A clock the runner advances; with a historical series it replays that history.
class SimulatedClock : public Clock {
 public:
  explicit SimulatedClock(UtcSeconds start) : now_(start) {}
  UtcSeconds now() const override { return now_; }
  void sleep_until(UtcSeconds t) override { advance_to(t); }
  UtcSeconds step_taken(std::chrono::seconds d) override {
    const UtcSeconds begin = now_;
    advance(d);
    return begin;
  }
  bool simulated() const override { return true; }
  void advance(std::chrono::seconds d) { now_ += d; }
  void advance_to(UtcSeconds t) {
    if (t > now_) now_ = t;
  }

 private:
  UtcSeconds now_;
};

// Real UTC time (whole seconds); sleep_until really sleeps.
class SystemClock : public Clock {
 public:
  UtcSeconds now() const override;
  void sleep_until(UtcSeconds t) override;
};

// Throws verdant::Error naming the series' file and range when it does not cover `now`
// (a live run needs a forecast that includes the present), suggesting --simulate-clock
// for replays of historical series.
void require_covers_now(const energy::IntensitySeries& series, UtcSeconds now);

// What the runner drives. A training loop adapts to this (see cmd_train's carbon block).
class InterruptibleJob {
 public:
  struct StepCost {
    std::chrono::seconds duration{0};  // time the step takes on the (simulated) clock
    double joules = 0;                 // energy the step uses
  };
  virtual ~InterruptibleJob() = default;
  virtual bool finished() const = 0;
  virtual StepCost run_step() = 0;
  // Pause: persist everything needed to continue (weights, optimizer, RNG, position). The
  // in-memory state may be discarded after this returns.
  virtual void checkpoint() = 0;
  // Continue from the last checkpoint.
  virtual void resume() = 0;
};

enum class Policy { RunNow, WaitForBest, Pause };

// "now" / "wait" / "pause"; throws SettingError naming `setting` otherwise.
Policy parse_policy(const std::string& text, const std::string& setting = "carbon_aware");
const char* policy_name(Policy p);

struct PolicyOptions {
  Policy policy = Policy::RunNow;
  // WaitForBest: the job's expected length and how long the start may be delayed.
  std::chrono::seconds expected_duration{std::chrono::hours(1)};
  std::chrono::seconds horizon{std::chrono::hours(24)};
  // Pause: gCO2eq/kWh above which the job pauses, and the most it may be delayed in total.
  double threshold = 0;
  std::chrono::seconds max_delay{std::chrono::hours(24 * 7)};
};

struct PauseSpan {
  UtcSeconds from, to;
};

struct RunReport {
  Policy policy = Policy::RunNow;
  UtcSeconds submitted, started, finished;
  std::size_t steps = 0;
  std::size_t pauses = 0;          // checkpoint/resume cycles
  std::vector<PauseSpan> waits;    // initial wait and every pause
  std::chrono::seconds waited{0};  // total of `waits`
  double joules = 0;
  double grams = 0;      // integrated hour by hour against the series (estimated)
  bool gave_up = false;  // Pause: a low slot did not come within max_delay
  std::vector<energy::EnergyInterval> intervals;  // one per step, on the simulated clock
};

// The policy's decisions, step by step, for loops that are not an InterruptibleJob (e.g. a
// trainer callback: record_step() in on_step_end, then should_pause() -> request a stop,
// wait(), resume from the checkpoint). run_carbon_aware() below is built on it.
class CarbonAwareController {
 public:
  // `series` and `clock` must outlive the controller.
  CarbonAwareController(const energy::IntensitySeries& series, Clock& clock, PolicyOptions options);
  // Before the first step: WaitForBest advances the clock to the best window; Pause
  // advances it to the first low slot if submission falls in a high one.
  void start();
  // Before a step: true when the Pause policy says to pause now (the slot is high and a
  // low one comes within the remaining delay budget). Once the budget is spent it returns
  // false for good and the report says gave_up.
  bool should_pause();
  // While paused: sleeps on the clock until the next low slot; counts one pause.
  void wait();
  // When wait() would resume (nullopt: it would not sleep). For messages before sleeping.
  std::optional<UtcSeconds> resume_time() const;
  // After a step: charges its energy to the span it took on the clock and advances it.
  void record_step(const InterruptibleJob::StepCost& cost);
  // Integrates the recorded steps against the series (throws naming the series' file if
  // the run left it) and returns the report.
  RunReport finish();
  const RunReport& report() const { return report_; }
  Clock& clock() { return clock_; }
  // WaitForBest: the window start() will sleep until, with the expected saving against
  // starting now (computed from the series; the job's energy is spread evenly).
  WindowResult plan() const;

 private:
  std::optional<std::size_t> find_low_slot(bool& out_of_budget) const;
  std::optional<std::size_t> next_low_slot();
  void wait_until(UtcSeconds t);

  const energy::IntensitySeries& series_;
  Clock& clock_;
  PolicyOptions options_;
  RunReport report_;
  bool started_ = false;
  bool pausing_ = false;
};

// Runs `job` to completion under `policy`, advancing `clock`. The series must cover the
// whole simulated run (else verdant::Error naming its file).
RunReport run_carbon_aware(InterruptibleJob& job, const energy::IntensitySeries& series,
                           Clock& clock, const PolicyOptions& options);

}  // namespace verdant::schedule
