// `verdant schedule`: when and where to run a job so that it emits least (issue 6), and
// `verdant schedule --advise`: rank cloud regions for a job's energy.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.hpp"
#include "table.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/advisor.hpp"
#include "verdant/schedule/plot.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::cli {
namespace {

namespace chr = std::chrono;
using energy::format_utc_timestamp;
using energy::UtcSeconds;

struct ScheduleFlags {
  std::vector<std::string> zones;
  std::string location;  // zone/location inside multi-zone series files
  std::string duration, within, start, end, now, max_gap = "6h";
  double energy_kwh = -1, power_w = -1;
  std::size_t runner_ups = 3;
  bool json = false;
  std::string plot;
  // --advise
  bool advise = false;
  std::string provider, prices;
  double price_per_kwh = -1, pue = -1;
  std::size_t top = 10;
};

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

chr::seconds duration_flag(const std::string& text, const std::string& flag) {
  auto d = schedule::parse_duration(text);
  if (!d || d->count() <= 0)
    throw UsageError(flag + ": '" + text + "' is not a positive duration (e.g. 4h, 90m, 1h30m)");
  return *d;
}

UtcSeconds time_flag(const std::string& text, const std::string& flag) {
  auto t = energy::parse_utc_timestamp(text);
  if (!t) throw UsageError(flag + ": '" + text + "' is not an ISO-8601 UTC time");
  return *t;
}

nlohmann::json data_point(const schedule::Candidate& c, chr::seconds d) {
  // The Carbon Aware SDK's EmissionsForecast data point: duration in minutes, value =
  // mean intensity over the run (gCO2eq/kWh).
  return {{"location", c.location},
          {"timestamp", format_utc_timestamp(c.start)},
          {"duration", chr::duration_cast<chr::minutes>(d).count()},
          {"value", c.mean_intensity},
          {"emissions_g", c.grams}};
}

int run_advise(const ScheduleFlags& f) {
  if (f.energy_kwh < 0) throw UsageError("--advise needs --energy-kwh (the job's energy)");
  schedule::AdvisorOptions o;
  o.energy_kwh = f.energy_kwh;
  o.provider = f.provider;
  o.top = f.top;
  if (f.pue >= 0) o.default_pue = f.pue;
  if (f.price_per_kwh >= 0) o.price_per_kwh = f.price_per_kwh;
  if (!f.prices.empty()) o.region_prices = schedule::load_region_prices(f.prices);
  auto ranked = schedule::advise_regions(o);
  if (f.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& a : ranked) {
      nlohmann::json j = {{"region", a.key},
                          {"location", a.location},
                          {"intensity", a.intensity},
                          {"pue", a.pue},
                          {"pue_source", a.pue_known ? "table" : "default"},
                          {"emissions_g", a.grams},
                          {"energy_kwh", f.energy_kwh},
                          {"energy_source", "given"},
                          {"emissions_source", "estimated"}};
      if (a.cost) j["cost_usd"] = *a.cost;
      out.push_back(j);
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf(
      "Regions for a job of %s kWh (energy given, emissions estimated = energy x PUE x "
      "region intensity; PUE 1.0 by default where the table has none)\n",
      fixed(f.energy_kwh, 3).c_str());
  TextTable t({"region", "location", "gCO2eq/kWh", "PUE", "gCO2eq (est.)", "cost USD"});
  for (const auto& a : ranked)
    t.add_row({a.key, a.location, fixed(a.intensity, 1), fixed(a.pue, 2) + (a.pue_known ? "" : "*"),
               fixed(a.grams, 1), a.cost ? fixed(*a.cost, 4) : "-"});
  std::printf("%s", t.str().c_str());
  std::printf("* default PUE (table has none)%s\n", ranked.size() > 0 && !ranked[0].cost
                                                        ? "; cost: give --price-per-kwh or --prices"
                                                        : "");
  return 0;
}

int run_schedule(const ScheduleFlags& f) {
  if (f.advise) return run_advise(f);
  if (f.zones.empty()) throw UsageError("--zone: give at least one zone or series file");

  // Job: a duration, or energy and average power.
  chr::seconds duration{0};
  double energy_kwh = 1.0;
  std::string energy_note = "1 kWh assumed: emissions are per kWh of job energy";
  if (!f.duration.empty()) {
    duration = duration_flag(f.duration, "--duration");
    if (f.energy_kwh >= 0 && f.power_w >= 0)
      throw UsageError("--duration: give --energy-kwh or --power-w with it, not both");
    if (f.energy_kwh >= 0) {
      energy_kwh = f.energy_kwh;
      energy_note = "given";
    } else if (f.power_w >= 0) {
      energy_kwh = f.power_w * static_cast<double>(duration.count()) / 3.6e6;
      energy_note = "given power x duration";
    }
  } else {
    if (f.energy_kwh < 0 || f.power_w <= 0)
      throw UsageError("--duration: give the job as --duration, or as --energy-kwh with --power-w");
    energy_kwh = f.energy_kwh;
    duration = chr::seconds(std::llround(f.energy_kwh * 3.6e6 / f.power_w));
    if (duration.count() <= 0) throw UsageError("--energy-kwh: the job must last at least 1 s");
    energy_note = "given";
  }

  // Window: [--start, --end] bounds the whole run; --within H lets it start until now + H.
  UtcSeconds now = f.now.empty() ? chr::floor<chr::seconds>(chr::system_clock::now())
                                 : time_flag(f.now, "--now");
  schedule::WindowRequest request;
  request.job = {duration, energy_kwh};
  request.runner_ups = f.runner_ups;
  if (!f.within.empty()) {
    if (!f.start.empty() || !f.end.empty())
      throw UsageError("--within: give either --within or --start/--end");
    request.earliest_start = now;
    request.latest_end = now + duration_flag(f.within, "--within") + duration;
  } else {
    if (f.start.empty() || f.end.empty())
      throw UsageError("--start: give the window as --start and --end, or as --within");
    request.earliest_start = time_flag(f.start, "--start");
    request.latest_end = time_flag(f.end, "--end");
    if (request.latest_end - request.earliest_start < duration)
      throw UsageError("--end: the window " + format_utc_timestamp(request.earliest_start) +
                       " to " + format_utc_timestamp(request.latest_end) +
                       " is shorter than the job (" + schedule::format_duration(duration) + ")");
  }

  energy::SeriesOptions opts;
  opts.max_interpolated_gap = duration_flag(f.max_gap, "--max-gap");
  opts.location = f.location;
  std::vector<energy::IntensitySeries> series;
  for (const auto& z : f.zones) series.push_back(energy::load_zone_or_series(z, opts, "--zone"));
  std::vector<const energy::IntensitySeries*> zones;
  for (const auto& s : series) zones.push_back(&s);
  auto result = schedule::find_best_window(zones, request);

  if (!f.plot.empty()) {
    schedule::PlotSpec spec;
    spec.zones = zones;
    spec.from = request.earliest_start;
    spec.to = request.latest_end;
    spec.chosen = result.best;
    spec.job_duration = duration;
    spec.now = request.earliest_start;
    spec.title = "best start for a " + schedule::format_duration(duration) +
                 " job: " + result.best.location + " " + format_utc_timestamp(result.best.start);
    schedule::write_plot(f.plot, spec);
  }

  if (f.json) {
    nlohmann::json out;
    out["optimalDataPoints"] = nlohmann::json::array({data_point(result.best, duration)});
    out["location"] = result.best.location;
    out["windowSize"] = chr::duration_cast<chr::minutes>(duration).count();
    out["dataStartAt"] = format_utc_timestamp(request.earliest_start);
    out["dataEndAt"] = format_utc_timestamp(request.latest_end);
    out["now"] = result.now ? data_point(*result.now, duration) : nlohmann::json();
    out["saving_percent"] = result.now ? nlohmann::json(result.saving_percent) : nlohmann::json();
    nlohmann::json ups = nlohmann::json::array();
    for (const auto& c : result.runner_ups) ups.push_back(data_point(c, duration));
    out["runnerUps"] = ups;
    out["energy_kwh"] = energy_kwh;
    out["energy_source"] = energy_note;
    out["emissions_source"] = "estimated from grid intensity series";
    out["candidates_skipped_for_gaps"] = result.skipped_for_gaps;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  std::printf("job: %s, %s kWh (%s); window %s to %s\n",
              schedule::format_duration(duration).c_str(), fixed(energy_kwh, 3).c_str(),
              energy_note.c_str(), format_utc_timestamp(request.earliest_start).c_str(),
              format_utc_timestamp(request.latest_end).c_str());
  for (const auto& s : series)
    std::printf("zone %s: %s (%zu slots interpolated, %zu unknown by the gap rule)\n",
                s.name().c_str(), s.source().c_str(), s.interpolated_count(), s.unknown_count());
  TextTable t({"choice", "zone", "start (UTC)", "mean gCO2eq/kWh", "gCO2eq (est.)"});
  auto row = [&](const std::string& label, const schedule::Candidate& c) {
    t.add_row({label, c.location, format_utc_timestamp(c.start), fixed(c.mean_intensity, 1),
               fixed(c.grams, 1)});
  };
  row("best", result.best);
  if (result.now) row("start now", *result.now);
  for (std::size_t i = 0; i < result.runner_ups.size(); ++i)
    row("runner-up " + std::to_string(i + 1), result.runner_ups[i]);
  std::printf("%s", t.str().c_str());
  if (result.now)
    std::printf("saving vs starting now in %s: %s%% (estimated)\n", result.now->location.c_str(),
                fixed(result.saving_percent, 1).c_str());
  else
    std::printf("starting now in %s runs into a data gap: no saving figure\n",
                series[0].name().c_str());
  if (result.skipped_for_gaps)
    std::printf("%zu candidate starts skipped: their run touches a gap in the data\n",
                result.skipped_for_gaps);
  if (!f.plot.empty()) std::printf("plot: %s\n", f.plot.c_str());
  return 0;
}

const bool registered = register_command(
    {"schedule", "Find the start time and zone (or cloud region) where a job emits least",
     [](CLI::App& sub) -> Runner {
       auto f = std::make_shared<ScheduleFlags>();
       sub.add_option("--zone", f->zones,
                      "Grid zone (bundled EIA: US-AZPS US-CISO US-ERCO US-MISO US-PJM US-SOCO "
                      "US-WAAT) or series file (EIA CSV, Electricity Maps CSV, "
                      "timestamp,gco2eq_per_kwh CSV, Carbon Aware SDK JSON); repeatable");
       sub.add_option("--location", f->location,
                      "Zone / location to read from series files holding several");
       sub.add_option("--duration", f->duration, "Job length, e.g. 4h, 90m, 1h30m");
       sub.add_option("--energy-kwh", f->energy_kwh,
                      "Job energy in kWh (with --power-w: "
                      "duration = energy / power)");
       sub.add_option("--power-w", f->power_w, "Job's average power in W");
       sub.add_option("--start", f->start, "Earliest start (ISO-8601 UTC)");
       sub.add_option("--end", f->end, "Time by which the job must have finished (ISO-8601 UTC)");
       sub.add_option("--within", f->within,
                      "The job may start any time within this long after --now, e.g. 24h");
       sub.add_option("--now", f->now, "Submission time for --within (default: the clock)");
       sub.add_option("--max-gap", f->max_gap,
                      "Interpolate data gaps up to this long (default 6h); longer gaps are "
                      "skipped, never read as zero");
       sub.add_option("--runner-ups", f->runner_ups, "How many runner-up choices (default 3)");
       sub.add_flag("--json", f->json, "JSON like the Carbon Aware SDK's forecast response");
       sub.add_option("--plot", f->plot, "Write an SVG plot with the chosen window marked");
       sub.add_flag("--advise", f->advise,
                    "Rank cloud regions by expected emissions (energy x PUE x intensity)");
       sub.add_option("--provider", f->provider, "--advise: only this provider (aws, gcp, ...)");
       sub.add_option("--price-per-kwh", f->price_per_kwh, "--advise: electricity price, USD/kWh");
       sub.add_option("--prices", f->prices,
                      "--advise: CSV of region,usd_per_kwh (region = provider:region or provider)");
       sub.add_option("--pue", f->pue, "--advise: PUE where the table has none (default 1.0)");
       sub.add_option("--top", f->top, "--advise: show the best N regions (default 10, 0 = all)");
       return [f] { return run_schedule(*f); };
     }});

}  // namespace
}  // namespace verdant::cli
