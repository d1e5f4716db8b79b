// Carbon-aware runner: wait-for-best-window and pause-above-threshold under a simulated clock.
#include "verdant/schedule/policy.hpp"

#include <algorithm>
#include <thread>

#include "verdant/core/error.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::schedule {

namespace chr = std::chrono;
using energy::format_utc_timestamp;

Policy parse_policy(const std::string& text, const std::string& setting) {
  if (text == "now" || text == "off" || text == "none") return Policy::RunNow;
  if (text == "wait") return Policy::WaitForBest;
  if (text == "pause") return Policy::Pause;
  throw SettingError(setting,
                     setting + ": unknown policy '" + text + "' (choose wait, pause or now)");
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::RunNow:
      return "now";
    case Policy::WaitForBest:
      return "wait";
    case Policy::Pause:
      return "pause";
  }
  return "?";
}

UtcSeconds SystemClock::now() const {
  return chr::floor<chr::seconds>(chr::system_clock::now());
}

void SystemClock::sleep_until(UtcSeconds t) {
  // system_clock follows wall time, so a long sleep ends at the intended UTC time.
  while (chr::system_clock::now() < t) std::this_thread::sleep_until(t);
}

void require_covers_now(const energy::IntensitySeries& series, UtcSeconds now) {
  if (series.index_of(now)) return;
  throw Error(series.source() + ": series covers " + format_utc_timestamp(series.start()) + " to " +
              format_utc_timestamp(series.end()) + ", not the current time " +
              format_utc_timestamp(now) +
              "; pass a forecast that includes now, or --simulate-clock START to replay a "
              "historical series");
}

namespace {

std::size_t slot_at(const energy::IntensitySeries& series, UtcSeconds t) {
  auto i = series.index_of(t);
  if (!i)
    throw Error(series.source() + ": series covers " + format_utc_timestamp(series.start()) +
                " to " + format_utc_timestamp(series.end()) + "; the run reached " +
                format_utc_timestamp(t));
  return *i;
}

bool is_low(const energy::IntensitySeries& series, std::size_t i, double threshold) {
  return series.known(i) && series.value(i) <= threshold;
}

}  // namespace

CarbonAwareController::CarbonAwareController(const energy::IntensitySeries& series, Clock& clock,
                                             PolicyOptions options)
    : series_(series), clock_(clock), options_(options) {
  report_.policy = options_.policy;
  report_.submitted = clock_.now();
  report_.started = report_.finished = clock_.now();
  pausing_ = options_.policy == Policy::Pause;
}

void CarbonAwareController::wait_until(UtcSeconds t) {
  if (t <= clock_.now()) return;
  report_.waits.push_back({clock_.now(), t});
  report_.waited += chr::duration_cast<chr::seconds>(t - clock_.now());
  clock_.sleep_until(t);
}

std::optional<std::size_t> CarbonAwareController::find_low_slot(bool& out_of_budget) const {
  out_of_budget = false;
  std::size_t i = slot_at(series_, clock_.now());
  if (is_low(series_, i, options_.threshold)) return std::nullopt;
  const UtcSeconds budget_end = clock_.now() + (options_.max_delay - report_.waited);
  for (std::size_t j = i + 1; j < series_.size() && series_.time_at(j) <= budget_end; ++j)
    if (is_low(series_, j, options_.threshold)) return j;
  out_of_budget = true;
  return std::nullopt;
}

std::optional<std::size_t> CarbonAwareController::next_low_slot() {
  bool out_of_budget = false;
  auto low = find_low_slot(out_of_budget);
  if (out_of_budget) {
    report_.gave_up = true;  // out of delay budget: run on regardless
    pausing_ = false;
  }
  return low;
}

std::optional<UtcSeconds> CarbonAwareController::resume_time() const {
  if (!pausing_) return std::nullopt;
  bool out_of_budget = false;
  auto low = find_low_slot(out_of_budget);
  if (!low) return std::nullopt;
  return series_.time_at(*low);
}

WindowResult CarbonAwareController::plan() const {
  // Search [now, now + horizon + expected duration], cut at the end of the series.
  WindowRequest request;
  request.job = {options_.expected_duration, 1.0};
  request.earliest_start = clock_.now();
  request.latest_end =
      std::min(series_.end(), clock_.now() + options_.horizon + options_.expected_duration);
  request.runner_ups = 0;
  const energy::IntensitySeries* zones[] = {&series_};
  return find_best_window(zones, request);
}

void CarbonAwareController::start() {
  if (started_) return;
  started_ = true;
  if (options_.policy == Policy::WaitForBest) {
    wait_until(plan().best.start);
  } else if (pausing_) {
    if (auto low = next_low_slot()) wait_until(series_.time_at(*low));  // not started: no pause
  }
  slot_at(series_, clock_.now());  // fail early when the start is outside the series
  report_.started = clock_.now();
}

bool CarbonAwareController::should_pause() {
  if (!pausing_) return false;
  std::size_t i = slot_at(series_, clock_.now());
  if (is_low(series_, i, options_.threshold)) return false;
  return next_low_slot().has_value();
}

void CarbonAwareController::wait() {
  if (auto low = pausing_ ? next_low_slot() : std::nullopt) {
    wait_until(series_.time_at(*low));
    ++report_.pauses;
  }
}

void CarbonAwareController::record_step(const InterruptibleJob::StepCost& cost) {
  if (!started_) start();
  if (cost.duration.count() < 0 || !(cost.joules >= 0))
    throw Error("job step reported a negative duration or energy");
  slot_at(series_, clock_.now());  // fail early when the run leaves the series
  const UtcSeconds begin = clock_.step_taken(cost.duration);
  report_.intervals.push_back({energy::UtcTime(begin), energy::UtcTime(clock_.now()), cost.joules});
  report_.joules += cost.joules;
  ++report_.steps;
  report_.finished = clock_.now();
}

RunReport CarbonAwareController::finish() {
  auto intensity = energy::CarbonIntensity::from_series(series_, "replay");
  report_.grams = intensity.grams(report_.intervals);
  return report_;
}

RunReport run_carbon_aware(InterruptibleJob& job, const energy::IntensitySeries& series,
                           Clock& clock, const PolicyOptions& options) {
  CarbonAwareController controller(series, clock, options);
  controller.start();
  while (!job.finished()) {
    if (controller.should_pause()) {
      job.checkpoint();
      controller.wait();
      job.resume();
    }
    controller.record_step(job.run_step());
  }
  return controller.finish();
}

}  // namespace verdant::schedule
