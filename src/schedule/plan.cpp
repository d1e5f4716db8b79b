#include "verdant/schedule/plan.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "verdant/core/error.hpp"
#include "verdant/schedule/plot.hpp"

namespace verdant::schedule {

namespace chr = std::chrono;
using energy::format_utc_timestamp;

namespace {

chr::seconds duration_setting(const std::string& text, const std::string& setting) {
  auto d = parse_duration(text);
  if (!d || d->count() <= 0)
    throw SettingError(
        setting, setting + ": '" + text + "' is not a positive duration (e.g. 4h, 90m, 1h30m)");
  return *d;
}

UtcSeconds time_setting(const std::string& text, const std::string& setting) {
  auto t = energy::parse_utc_timestamp(text);
  if (!t) throw SettingError(setting, setting + ": '" + text + "' is not an ISO-8601 UTC time");
  return *t;
}

nlohmann::json data_point(const Candidate& c, chr::seconds d) {
  // The Carbon Aware SDK's EmissionsForecast data point: duration in minutes, value =
  // mean intensity over the run (gCO2eq/kWh).
  return {{"location", c.location},
          {"timestamp", format_utc_timestamp(c.start)},
          {"duration", chr::duration_cast<chr::minutes>(d).count()},
          {"value", c.mean_intensity},
          {"emissions_g", c.grams}};
}

}  // namespace

Plan plan_schedule(const PlanOptions& o) {
  if (o.zones.empty()) throw SettingError("zone", "zone: give at least one zone or series file");
  Plan plan;
  // Job: a duration, or energy and average power.
  chr::seconds duration{0};
  plan.energy_source = "1 kWh assumed: emissions are per kWh of job energy";
  if (!o.duration.empty()) {
    duration = duration_setting(o.duration, "duration");
    if (o.energy_kwh && o.power_w)
      throw UsageError("give energy_kwh or power_w with duration, not both",
                       {"duration", "energy_kwh", "power_w"});
    if (o.energy_kwh) {
      plan.energy_kwh = *o.energy_kwh;
      plan.energy_source = "given";
    } else if (o.power_w) {
      plan.energy_kwh = *o.power_w * static_cast<double>(duration.count()) / 3.6e6;
      plan.energy_source = "given power x duration";
    }
  } else {
    if (!o.energy_kwh || !o.power_w || !(*o.power_w > 0))
      throw UsageError("give the job as duration, or as energy_kwh with power_w",
                       {"duration", "energy_kwh", "power_w"});
    plan.energy_kwh = *o.energy_kwh;
    duration = chr::seconds(std::llround(*o.energy_kwh * 3.6e6 / *o.power_w));
    if (duration.count() <= 0)
      throw SettingError("energy_kwh", "energy_kwh: the job must last at least 1 s");
    plan.energy_source = "given";
  }
  if (!(plan.energy_kwh >= 0) || !std::isfinite(plan.energy_kwh))
    throw SettingError("energy_kwh", "energy_kwh must be a finite number >= 0");

  // Window: [start, end] bounds the whole run; within lets it start until now + within.
  WindowRequest& request = plan.request;
  const UtcSeconds now = o.now.empty() ? chr::floor<chr::seconds>(chr::system_clock::now())
                                       : time_setting(o.now, "now");
  request.job = {duration, plan.energy_kwh};
  request.runner_ups = o.runner_ups;
  if (!o.within.empty()) {
    if (!o.start.empty() || !o.end.empty())
      throw UsageError("give either within or start/end", {"within", "start", "end"});
    request.earliest_start = now;
    request.latest_end = now + duration_setting(o.within, "within") + duration;
  } else {
    if (o.start.empty() || o.end.empty())
      throw UsageError("give the window as start and end, or as within",
                       {"start", "end", "within"});
    request.earliest_start = time_setting(o.start, "start");
    request.latest_end = time_setting(o.end, "end");
    if (request.latest_end - request.earliest_start < duration)
      throw SettingError("end", "end: the window " + format_utc_timestamp(request.earliest_start) +
                                    " to " + format_utc_timestamp(request.latest_end) +
                                    " is shorter than the job (" + format_duration(duration) + ")");
  }

  energy::SeriesOptions series_options;
  series_options.max_interpolated_gap = duration_setting(o.max_gap, "max_gap");
  series_options.location = o.location;
  for (const auto& z : o.zones)
    plan.series.push_back(energy::load_zone_or_series(z, series_options, "zone"));
  std::vector<const energy::IntensitySeries*> zones;
  for (const auto& s : plan.series) zones.push_back(&s);
  plan.result = find_best_window(zones, request);
  return plan;
}

std::string plan_json(const Plan& p) {
  const auto duration = p.request.job.duration;
  const WindowResult& r = p.result;
  nlohmann::json out;
  out["optimalDataPoints"] = nlohmann::json::array({data_point(r.best, duration)});
  out["location"] = r.best.location;
  out["windowSize"] = chr::duration_cast<chr::minutes>(duration).count();
  out["dataStartAt"] = format_utc_timestamp(p.request.earliest_start);
  out["dataEndAt"] = format_utc_timestamp(p.request.latest_end);
  out["now"] = r.now ? data_point(*r.now, duration) : nlohmann::json();
  out["saving_percent"] = r.now ? nlohmann::json(r.saving_percent) : nlohmann::json();
  nlohmann::json ups = nlohmann::json::array();
  for (const auto& c : r.runner_ups) ups.push_back(data_point(c, duration));
  out["runnerUps"] = ups;
  out["energy_kwh"] = p.energy_kwh;
  out["energy_source"] = p.energy_source;
  out["emissions_source"] = "estimated from grid intensity series";
  out["candidates_skipped_for_gaps"] = r.skipped_for_gaps;
  return out.dump(2);
}

void write_plan_plot(const Plan& p, const std::filesystem::path& path) {
  PlotSpec spec;
  for (const auto& s : p.series) spec.zones.push_back(&s);
  spec.from = p.request.earliest_start;
  spec.to = p.request.latest_end;
  spec.chosen = p.result.best;
  spec.job_duration = p.request.job.duration;
  spec.now = p.request.earliest_start;
  spec.title = "best start for a " + format_duration(p.request.job.duration) +
               " job: " + p.result.best.location + " " + format_utc_timestamp(p.result.best.start);
  write_plot(path, spec);
}

std::string advice_json(const std::vector<RegionAdvice>& ranked, double energy_kwh) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : ranked) {
    nlohmann::json j = {{"region", a.key},
                        {"location", a.location},
                        {"intensity", a.intensity},
                        {"pue", a.pue},
                        {"pue_source", a.pue_known ? "table" : "default"},
                        {"emissions_g", a.grams},
                        {"energy_kwh", energy_kwh},
                        {"energy_source", "given"},
                        {"emissions_source", "estimated"}};
    if (a.cost) j["cost_usd"] = *a.cost;
    out.push_back(j);
  }
  return out.dump(2);
}

}  // namespace verdant::schedule
