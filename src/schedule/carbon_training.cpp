#include "verdant/schedule/carbon_training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::schedule {

using namespace std::chrono;

void CarbonAwareCallback::on_step_end(train::Trainer& trainer, const train::StepInfo&) {
  controller_.record_step(step_cost());
  if (controller_.should_pause()) trainer.request_stop(kCarbonPauseReason);
}

InterruptibleJob::StepCost CarbonAwareCallback::step_cost() {
  if (controller_.clock().simulated()) return cost_.cost();
  const auto now = steady_clock::now();
  const double s = duration<double>(now - last_).count();
  last_ = now;
  // Whole seconds for the span (a sub-second step is charged at the current slot); the
  // energy uses the exact time.
  return {seconds(static_cast<std::int64_t>(s)), cost_.watts * s};
}

CarbonTrainingResult train_carbon_aware(train::Trainer& first, const MakeTrainer& make_next,
                                        CarbonAwareController& controller, SimulatedStepCost cost,
                                        const OnPause& on_pause) {
  const auto path = first.options().checkpoint_path;
  if (path.empty()) throw Error("carbon-aware training needs a checkpoint path to pause through");
  controller.start();
  auto callback = std::make_shared<CarbonAwareCallback>(controller, cost);
  callback->mark();
  CarbonTrainingResult result;
  first.add_callback(callback);
  result.fit = first.fit();
  while (result.fit.stopped_early && result.fit.stop_reason == kCarbonPauseReason) {
    if (on_pause) on_pause(controller.report(), controller.resume_time());  // before sleeping
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

namespace {

seconds positive_duration(const std::string& text, const char* setting) {
  auto d = parse_duration(text);
  if (!d || d->count() <= 0)
    throw SettingError(setting, std::string(setting) + ": '" + text +
                                    "' is not a positive duration (e.g. 60s, 24h)");
  return *d;
}

std::string utc(energy::UtcSeconds t) {
  return energy::format_utc_timestamp(t);
}

}  // namespace

CarbonAwareExtension::CarbonAwareExtension(CarbonTrainingOptions options)
    : options_(std::move(options)) {
  // Settings are checked here, before any work.
  parse_policy(options_.policy, "carbon_aware");
  if (options_.zone.empty())
    throw SettingError("grid_zone",
                       "grid_zone is needed for carbon-aware training (a zone or series file)");
  if (!(options_.sim_power_w > 0) || !std::isfinite(options_.sim_power_w))
    throw SettingError("sim_power_w", "sim_power_w must be a positive number of watts");
  positive_duration(options_.sim_step, "sim_step");
  positive_duration(options_.horizon, "carbon_horizon");
  positive_duration(options_.max_delay, "carbon_max_delay");
  if (!options_.simulate_clock.empty() && !energy::parse_utc_timestamp(options_.simulate_clock))
    throw SettingError("simulate_clock",
                       "simulate_clock: '" + options_.simulate_clock + "' is not a UTC time");
}

void CarbonAwareExtension::attach(train::TrainingContext& c) {
  if (c.options.extensions.size() > 1)
    throw UsageError("carbon-aware training is not supported together with a recipe yet");
  if (c.checkpoint_path.empty())
    throw SettingError("out_dir", "out_dir is needed: carbon-aware pauses go through checkpoints");
}

std::optional<train::FitResult> CarbonAwareExtension::fit(train::TrainingContext& c) {
  const auto& f = options_;
  auto say = [&](const std::string& line) {
    if (f.log) f.log(line);
  };
  const Policy policy = parse_policy(f.policy, "carbon_aware");
  const bool simulated = !f.simulate_clock.empty();
  std::unique_ptr<Clock> clock;
  if (simulated)
    clock = std::make_unique<SimulatedClock>(*energy::parse_utc_timestamp(f.simulate_clock));
  else
    clock = std::make_unique<SystemClock>();
  const SimulatedStepCost cost{positive_duration(f.sim_step, "sim_step"), f.sim_power_w};

  energy::LocationRequest where;
  where.grid_zone = f.zone;
  where.typical_year = false;  // a replay uses the series' own hours
  auto intensity = energy::resolve_carbon_intensity(where);
  const energy::IntensitySeries& series = *intensity.series();
  if (!simulated) require_covers_now(series, clock->now());

  train::Trainer& first = c.trainer;
  PolicyOptions options;
  options.policy = policy;
  const std::int64_t total_steps = first.options().epochs * first.steps_per_epoch();
  const std::int64_t remaining = std::max<std::int64_t>(1, total_steps - first.global_step());
  options.expected_duration = cost.duration * remaining;
  options.horizon = positive_duration(f.horizon, "carbon_horizon");
  options.max_delay = positive_duration(f.max_delay, "carbon_max_delay");
  if (policy == Policy::Pause) {
    if (f.threshold) {
      options.threshold = *f.threshold;
    } else {  // default: the median of the series' known values
      std::vector<double> known;
      for (std::size_t i = 0; i < series.size(); ++i)
        if (series.known(i)) known.push_back(series.value(i));
      std::nth_element(known.begin(), known.begin() + known.size() / 2, known.end());
      options.threshold = known[known.size() / 2];
    }
  }
  const std::string pause_note =
      policy == Policy::Pause
          ? ", pause above " + std::to_string(static_cast<int>(options.threshold)) + " gCO2eq/kWh"
          : "";
  char line[512];
  if (simulated)
    std::snprintf(line, sizeof line,
                  "carbon-aware %s on %s, replayed from %s on a simulated clock: %s and %.0f W "
                  "(assumed) per step%s",
                  policy_name(policy), series.name().c_str(), utc(clock->now()).c_str(),
                  format_duration(cost.duration).c_str(), cost.watts, pause_note.c_str());
  else
    std::snprintf(line, sizeof line,
                  "carbon-aware %s on %s, live on the real clock from %s (series covers %s to "
                  "%s): %.0f W assumed while training%s",
                  policy_name(policy), series.name().c_str(), utc(clock->now()).c_str(),
                  utc(series.start()).c_str(), utc(series.end()).c_str(), cost.watts,
                  pause_note.c_str());
  say(line);

  CarbonAwareController controller(series, *clock, options);
  if (policy == Policy::WaitForBest) {
    auto plan = controller.plan();
    std::string text = "carbon-aware wait: planned start " + utc(plan.best.start) + " (in " +
                       format_duration(duration_cast<seconds>(plan.best.start - clock->now())) +
                       "), mean ";
    std::snprintf(line, sizeof line, "%.1f gCO2eq/kWh over the expected %s",
                  plan.best.mean_intensity, format_duration(options.expected_duration).c_str());
    text += line;
    if (plan.now) {
      std::snprintf(line, sizeof line, "; expected saving %.1f%% vs starting now (%.1f gCO2eq/kWh)",
                    plan.saving_percent, plan.now->mean_intensity);
      text += line;
    } else {
      text += "; starting now would touch a gap in the series";
    }
    say(text);
  }
  auto result = train_carbon_aware(
      first, c.make_trainer, controller, cost,
      [&](const RunReport&, std::optional<energy::UtcSeconds> until) {
        const auto now = clock->now();
        auto slot = series.index_of(now);
        const std::string level = slot && series.known(*slot)
                                      ? std::to_string(static_cast<int>(series.value(*slot))) +
                                            " gCO2eq/kWh is above the threshold"
                                      : "the current hour is a gap in the series";
        say("carbon-aware: paused at " + utc(now) + " (checkpoint written), " + level + "; " +
            (simulated ? "skipping" : "sleeping") + " until " + (until ? utc(*until) : "?"));
      });
  last_ = std::move(result.last);
  const auto& r = result.report;
  // The same steps run at once from the submission time, for comparison.
  std::vector<energy::EnergyInterval> at_once;
  auto t = energy::UtcTime(r.submitted);
  for (const auto& iv : r.intervals) {
    at_once.push_back({t, t + (iv.end - iv.start), iv.joules});
    t += iv.end - iv.start;
  }
  const double grams_at_once = intensity.grams(at_once);
  const double saving = grams_at_once > 0 ? (grams_at_once - r.grams) / grams_at_once * 100 : 0;
  std::snprintf(line, sizeof line,
                "carbon-aware: %zu steps from %s to %s (%s), waited %s in %zu pause(s)%s; %.3f kWh "
                "(assumed power), %.1f gCO2eq estimated vs %.1f starting at once (%.1f%% saved)",
                r.steps, utc(r.started).c_str(), utc(r.finished).c_str(),
                simulated ? "simulated" : "real clock", format_duration(r.waited).c_str(), r.pauses,
                r.gave_up ? ", gave up waiting (max delay)" : "", r.joules / energy::kJoulesPerKwh,
                r.grams, grams_at_once, saving);
  say(line);
  nlohmann::json j = {
      {"policy", policy_name(policy)},
      {"zone", series.name()},
      {"series", series.source()},
      {"threshold_gco2_per_kwh",
       policy == Policy::Pause ? nlohmann::json(options.threshold) : nlohmann::json()},
      {"simulated_clock", simulated},
      {"submitted", utc(r.submitted)},
      {"started", utc(r.started)},
      {"finished", utc(r.finished)},
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
  write_file_atomic(c.checkpoint_path.parent_path() / "carbon_aware.json", j.dump(2) + "\n");
  return result.fit;
}

}  // namespace verdant::schedule
