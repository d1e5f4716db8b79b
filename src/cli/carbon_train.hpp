#pragma once
// `verdant train --carbon-aware wait|pause` (issue 6): options and the driver that cmd_train
// calls in place of trainer.fit(). Header-only: the cli target compiles only cmd_*.cpp.
//
// Two clocks. With --simulate-clock START the run replays a historical intensity series on
// a simulated clock: each optimizer step counts as --sim-step of simulated time. Without
// it the run is live on the system clock: the series (--grid-zone: a zone or a forecast
// file) must cover the present; `wait` sleeps until the best window, `pause` sleeps while
// the current hour is above --threshold, and each step's wall time is measured. Energy is
// --sim-power-w (an assumed power) x step time either way, so every emission figure here
// is an estimate. Pauses go through the trainer's checkpoint file and a fresh trainer
// resumed from it.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/carbon_training.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::cli {

struct CarbonTrainFlags {
  std::string policy;  // empty: not carbon-aware
  std::string zone;    // bundled EIA zone or series file
  double threshold = -1;
  std::string simulate_clock;
  std::string sim_step = "60s";
  double sim_power_w = 250;
  std::string horizon = "24h";
  std::string max_delay = "7d";
  CLI::Option* shared_zone = nullptr;  // someone else's --grid-zone, when already declared
  bool requested() const { return !policy.empty(); }
};

inline void add_carbon_train_options(CLI::App& sub, CarbonTrainFlags& f) {
  sub.add_option("--carbon-aware", f.policy,
                 "Carbon-aware training: wait (for the best window) or pause (checkpoint "
                 "while intensity is above --threshold); needs --grid-zone; runs on the real "
                 "clock (the series must cover now) unless --simulate-clock is given");
  // The energy tracker may declare --grid-zone too: share it rather than clash.
  if (auto* existing = sub.get_option_no_throw("--grid-zone"))
    f.shared_zone = existing;
  else
    sub.add_option("--grid-zone", f.zone,
                   "Grid zone (bundled EIA US-*) or intensity series file for --carbon-aware");
  sub.add_option("--threshold", f.threshold,
                 "--carbon-aware pause: gCO2eq/kWh above which training pauses (default: the "
                 "series' median)");
  sub.add_option("--simulate-clock", f.simulate_clock,
                 "--carbon-aware: replay the series from this UTC time on a simulated clock");
  sub.add_option("--sim-step", f.sim_step,
                 "--carbon-aware: simulated time per optimizer step (default 60s); live, `wait` "
                 "uses it to estimate the run's length");
  sub.add_option("--sim-power-w", f.sim_power_w,
                 "--carbon-aware: assumed power while training, W (default 250; simulated or "
                 "live)");
  sub.add_option("--carbon-horizon", f.horizon,
                 "--carbon-aware wait: how long the start may be delayed (default 24h)");
  sub.add_option("--carbon-max-delay", f.max_delay,
                 "--carbon-aware pause: most total pausing before running on (default 7d)");
}

namespace carbon_detail {
inline std::chrono::seconds duration_flag(const std::string& text, const std::string& flag) {
  auto d = schedule::parse_duration(text);
  if (!d || d->count() <= 0)
    throw UsageError(flag + ": '" + text + "' is not a positive duration (e.g. 60s, 24h)");
  return *d;
}
}  // namespace carbon_detail

// Runs training under the policy (instead of first.fit()) and writes
// OUT/carbon_aware.json. `make_next()` returns a fresh std::unique_ptr<train::Trainer>
// like `first` (same model, optimizer, data, options, callbacks).
template <typename MakeTrainer>
train::FitResult run_carbon_aware_training(const CarbonTrainFlags& f, train::Trainer& first,
                                           MakeTrainer&& make_next,
                                           const std::filesystem::path& out_dir) {
  using namespace std::chrono;
  std::string zone = f.zone;
  if (f.shared_zone && f.shared_zone->count() > 0) zone = f.shared_zone->as<std::string>();
  auto policy = schedule::parse_policy(f.policy, "--carbon-aware");
  if (zone.empty()) throw UsageError("--carbon-aware needs --grid-zone (a zone or series file)");
  const bool simulated = !f.simulate_clock.empty();
  std::unique_ptr<schedule::Clock> clock;
  if (simulated) {
    auto start = energy::parse_utc_timestamp(f.simulate_clock);
    if (!start) throw UsageError("--simulate-clock: '" + f.simulate_clock + "' is not a UTC time");
    clock = std::make_unique<schedule::SimulatedClock>(*start);
  } else {
    clock = std::make_unique<schedule::SystemClock>();
  }
  if (!(f.sim_power_w > 0) || !std::isfinite(f.sim_power_w))
    throw UsageError("--sim-power-w must be a positive number of watts");
  const schedule::SimulatedStepCost cost{carbon_detail::duration_flag(f.sim_step, "--sim-step"),
                                         f.sim_power_w};

  energy::LocationRequest where;
  where.grid_zone = zone;
  where.typical_year = false;  // a replay uses the series' own hours
  auto intensity = energy::resolve_carbon_intensity(where);
  const energy::IntensitySeries& series = *intensity.series();
  if (!simulated) schedule::require_covers_now(series, clock->now());

  schedule::PolicyOptions options;
  options.policy = policy;
  const std::int64_t total_steps = first.options().epochs * first.steps_per_epoch();
  const std::int64_t remaining = std::max<std::int64_t>(1, total_steps - first.global_step());
  options.expected_duration = cost.duration * remaining;
  options.horizon = carbon_detail::duration_flag(f.horizon, "--carbon-horizon");
  options.max_delay = carbon_detail::duration_flag(f.max_delay, "--carbon-max-delay");
  if (policy == schedule::Policy::Pause) {
    if (f.threshold >= 0) {
      options.threshold = f.threshold;
    } else {  // default: the median of the series' known values
      std::vector<double> known;
      for (std::size_t i = 0; i < series.size(); ++i)
        if (series.known(i)) known.push_back(series.value(i));
      std::nth_element(known.begin(), known.begin() + known.size() / 2, known.end());
      options.threshold = known[known.size() / 2];
    }
  }
  const std::string pause_note =
      policy == schedule::Policy::Pause
          ? ", pause above " + std::to_string(static_cast<int>(options.threshold)) + " gCO2eq/kWh"
          : "";
  if (simulated)
    std::printf(
        "carbon-aware %s on %s, replayed from %s on a simulated clock: %s and %.0f W "
        "(assumed) per step%s\n",
        schedule::policy_name(policy), series.name().c_str(),
        energy::format_utc_timestamp(clock->now()).c_str(),
        schedule::format_duration(cost.duration).c_str(), cost.watts, pause_note.c_str());
  else
    std::printf(
        "carbon-aware %s on %s, live on the real clock from %s (series covers %s to %s): "
        "%.0f W assumed while training%s\n",
        schedule::policy_name(policy), series.name().c_str(),
        energy::format_utc_timestamp(clock->now()).c_str(),
        energy::format_utc_timestamp(series.start()).c_str(),
        energy::format_utc_timestamp(series.end()).c_str(), cost.watts, pause_note.c_str());
  std::fflush(stdout);

  schedule::CarbonAwareController controller(series, *clock, options);
  if (policy == schedule::Policy::WaitForBest) {
    auto plan = controller.plan();
    std::printf(
        "carbon-aware wait: planned start %s (in %s), mean %.1f gCO2eq/kWh over the expected "
        "%s",
        energy::format_utc_timestamp(plan.best.start).c_str(),
        schedule::format_duration(
            std::chrono::duration_cast<seconds>(plan.best.start - clock->now()))
            .c_str(),
        plan.best.mean_intensity, schedule::format_duration(options.expected_duration).c_str());
    if (plan.now)
      std::printf("; expected saving %.1f%% vs starting now (%.1f gCO2eq/kWh)\n",
                  plan.saving_percent, plan.now->mean_intensity);
    else
      std::printf("; starting now would touch a gap in the series\n");
    std::fflush(stdout);
  }
  auto result = schedule::train_carbon_aware(
      first, make_next, controller, cost,
      [&](const schedule::RunReport&, std::optional<energy::UtcSeconds> until) {
        const auto now = clock->now();
        auto slot = series.index_of(now);
        const std::string level = slot && series.known(*slot)
                                      ? std::to_string(static_cast<int>(series.value(*slot))) +
                                            " gCO2eq/kWh is above the threshold"
                                      : "the current hour is a gap in the series";
        std::printf("carbon-aware: paused at %s (checkpoint written), %s; %s until %s\n",
                    energy::format_utc_timestamp(now).c_str(), level.c_str(),
                    simulated ? "skipping" : "sleeping",
                    until ? energy::format_utc_timestamp(*until).c_str() : "?");
        std::fflush(stdout);
      });
  const auto& r = result.report;
  // The same steps run at once from the submission time, for comparison.
  std::vector<energy::EnergyInterval> at_once;
  auto t = energy::UtcTime(r.submitted);
  for (const auto& iv : r.intervals) {
    at_once.push_back({t, t + (iv.end - iv.start), iv.joules});
    t += iv.end - iv.start;
  }
  double grams_at_once = intensity.grams(at_once);
  double saving = grams_at_once > 0 ? (grams_at_once - r.grams) / grams_at_once * 100 : 0;
  std::printf(
      "carbon-aware: %zu steps from %s to %s (%s), waited %s in %zu pause(s)%s; "
      "%.3f kWh (assumed power), %.1f gCO2eq estimated vs %.1f starting at once "
      "(%.1f%% saved)\n",
      r.steps, energy::format_utc_timestamp(r.started).c_str(),
      energy::format_utc_timestamp(r.finished).c_str(), simulated ? "simulated" : "real clock",
      schedule::format_duration(r.waited).c_str(), r.pauses,
      r.gave_up ? ", gave up waiting (max delay)" : "", r.joules / energy::kJoulesPerKwh, r.grams,
      grams_at_once, saving);
  nlohmann::json j = {
      {"policy", schedule::policy_name(policy)},
      {"zone", series.name()},
      {"series", series.source()},
      {"threshold_gco2_per_kwh",
       policy == schedule::Policy::Pause ? nlohmann::json(options.threshold) : nlohmann::json()},
      {"simulated_clock", simulated},
      {"submitted", energy::format_utc_timestamp(r.submitted)},
      {"started", energy::format_utc_timestamp(r.started)},
      {"finished", energy::format_utc_timestamp(r.finished)},
      {"steps", r.steps},
      {"pauses", r.pauses},
      {"waited_seconds", r.waited.count()},
      {"gave_up", r.gave_up},
      {"energy_kwh", r.joules / energy::kJoulesPerKwh},
      {"energy_source", simulated ? "assumed: sim-power-w x simulated step time"
                                  : "assumed: sim-power-w x measured step wall time"},
      {"emissions_g", r.grams},
      {"emissions_g_at_once", grams_at_once},
      {"emissions_source", "estimated: each hour's energy x that hour's intensity"},
      {"saving_percent", saving}};
  write_file_atomic(out_dir / "carbon_aware.json", j.dump(2) + "\n");
  return result.fit;
}

}  // namespace verdant::cli
