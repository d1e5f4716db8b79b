#pragma once
// Best start time and zone for a job, over hourly-or-finer intensity series.
//
// The job's energy is spread evenly over its duration and integrated against each slot's
// intensity. Emissions as a function of the start time s are piecewise linear with breaks
// where s or s + duration crosses a slot boundary, so evaluating those breakpoints (plus
// the window's ends) gives the exact minimum over every real start time in the window.
// Each candidate costs O(1) through prefix sums (IntensityIntegral), so a year-long
// window is as cheap as a day.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "verdant/energy/intensity.hpp"

namespace verdant::schedule {

using energy::UtcSeconds;

// Prefix sums of one series: integral of intensity over [a, b) in (gCO2eq/kWh) x seconds.
class IntensityIntegral {
 public:
  explicit IntensityIntegral(const energy::IntensitySeries& series);
  const energy::IntensitySeries& series() const { return *series_; }
  // nullopt when [a, b) leaves the series or touches an unknown slot (see the gap rule).
  std::optional<double> integral(UtcSeconds a, UtcSeconds b) const;
  std::optional<double> mean(UtcSeconds a, UtcSeconds b) const;

 private:
  const energy::IntensitySeries* series_;
  std::vector<double> prefix_;          // prefix_[i] = sum of value(k) * step, k < i
  std::vector<std::uint32_t> unknown_;  // unknown_[i] = unknown slots among k < i
};

struct Job {
  std::chrono::seconds duration{0};
  double energy_kwh = 1.0;  // spread evenly over the duration
};

struct WindowRequest {
  Job job;
  // The job may run inside [earliest_start, latest_end]: start at or after earliest_start
  // and finish by latest_end (the Carbon Aware SDK's dataStartAt / dataEndAt).
  UtcSeconds earliest_start;
  UtcSeconds latest_end;
  std::size_t runner_ups = 3;
};

struct Candidate {
  std::size_t zone = 0;  // index into the zones passed in
  std::string location;  // the zone's name
  UtcSeconds start;
  double grams = 0;           // job emissions, gCO2eq
  double mean_intensity = 0;  // gCO2eq/kWh over the run
};

struct WindowResult {
  Candidate best;
  // Starting at earliest_start in the first zone; empty when that run touches a gap.
  std::optional<Candidate> now;
  double saving_percent = 0;  // (now - best) / now x 100; 0 without `now`
  // Next best choices; in the same zone they never overlap a better choice's run.
  std::vector<Candidate> runner_ups;
  std::size_t evaluated = 0;         // candidate (zone, start) pairs evaluated
  std::size_t skipped_for_gaps = 0;  // candidates dropped because their run hits a gap
};

// Throws verdant::Error (one line) when: no zone is given; the job's duration is not
// positive; the window is shorter than the job; a zone's series does not cover the window
// (names the file and both ranges); every candidate start touches a gap.
WindowResult find_best_window(std::span<const IntensityIntegral* const> zones,
                              const WindowRequest& request);
// Convenience: builds the integrals.
WindowResult find_best_window(std::span<const energy::IntensitySeries* const> zones,
                              const WindowRequest& request);

// The candidate start times for one zone (sorted, unique): earliest_start, latest start,
// and every start at which the run begins or ends on a slot boundary.
std::vector<UtcSeconds> candidate_starts(const energy::IntensitySeries& series,
                                         const WindowRequest& request);

// Parses "4h", "90m", "30s", "2d", "1h30m", or plain seconds ("3600"). nullopt if invalid.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// "4h", "1h30m", "45s".
std::string format_duration(std::chrono::seconds d);

}  // namespace verdant::schedule
