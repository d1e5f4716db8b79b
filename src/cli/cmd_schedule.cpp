// `verdant schedule`: when and where to run a job so that it emits least, and
// `verdant schedule --advise`: rank cloud regions for a job's energy.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "command.hpp"
#include "options.hpp"
#include "table.hpp"
#include "verdant/core/error.hpp"
#include "verdant/schedule/plan.hpp"

namespace verdant::cli {
namespace {

using energy::format_utc_timestamp;

struct ScheduleCommand {
  schedule::PlanOptions plan;
  bool json = false;
  std::string plot;
  // --advise
  bool advise = false;
  schedule::AdvisorOptions advisor = [] {
    schedule::AdvisorOptions options;
    options.top = 10;
    return options;
  }();
  std::string prices;
};

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

int run_advise(ScheduleCommand& c) {
  if (!c.plan.energy_kwh)
    throw UsageError("advise needs energy_kwh (the job's energy)", {"advise", "energy_kwh"});
  schedule::AdvisorOptions& o = c.advisor;
  o.energy_kwh = *c.plan.energy_kwh;
  if (!c.prices.empty()) o.region_prices = schedule::load_region_prices(c.prices);
  const auto ranked = schedule::advise_regions(o);
  if (c.json) {
    std::printf("%s\n", schedule::advice_json(ranked, o.energy_kwh).c_str());
    return 0;
  }
  std::printf(
      "Regions for a job of %s kWh (energy given, emissions estimated = energy x PUE x "
      "region intensity; PUE 1.0 by default where the table has none)\n",
      fixed(o.energy_kwh, 3).c_str());
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

int run_schedule(ScheduleCommand& c) {
  if (c.advise) return run_advise(c);
  const schedule::Plan plan = schedule::plan_schedule(c.plan);
  if (!c.plot.empty()) schedule::write_plan_plot(plan, c.plot);
  if (c.json) {
    std::printf("%s\n", schedule::plan_json(plan).c_str());
    return 0;
  }
  const auto& request = plan.request;
  const auto& result = plan.result;
  std::printf("job: %s, %s kWh (%s); window %s to %s\n",
              schedule::format_duration(request.job.duration).c_str(),
              fixed(plan.energy_kwh, 3).c_str(), plan.energy_source.c_str(),
              format_utc_timestamp(request.earliest_start).c_str(),
              format_utc_timestamp(request.latest_end).c_str());
  for (const auto& s : plan.series)
    std::printf("zone %s: %s (%zu slots interpolated, %zu unknown by the gap rule)\n",
                s.name().c_str(), s.source().c_str(), s.interpolated_count(), s.unknown_count());
  TextTable t({"choice", "zone", "start (UTC)", "mean gCO2eq/kWh", "gCO2eq (est.)"});
  auto row = [&](const std::string& label, const schedule::Candidate& k) {
    t.add_row({label, k.location, format_utc_timestamp(k.start), fixed(k.mean_intensity, 1),
               fixed(k.grams, 1)});
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
                plan.series[0].name().c_str());
  if (result.skipped_for_gaps)
    std::printf("%zu candidate starts skipped: their run touches a gap in the data\n",
                result.skipped_for_gaps);
  if (!c.plot.empty()) std::printf("plot: %s\n", c.plot.c_str());
  return 0;
}

const bool registered = register_command(
    {"schedule", "Find the start time and zone (or cloud region) where a job emits least",
     [](CLI::App& sub) -> Runner {
       auto c = std::make_shared<ScheduleCommand>();
       auto& p = c->plan;
       sub.add_option("--zone", p.zones,
                      "Grid zone (bundled EIA: US-AZPS US-CISO US-ERCO US-MISO US-PJM US-SOCO "
                      "US-WAAT) or series file (EIA CSV, Electricity Maps CSV, "
                      "timestamp,gco2eq_per_kwh CSV, Carbon Aware SDK JSON); repeatable");
       sub.add_option("--location", p.location,
                      "Zone / location to read from series files holding several");
       sub.add_option("--duration", p.duration, "Job length, e.g. 4h, 90m, 1h30m");
       sub.add_option("--energy-kwh", p.energy_kwh,
                      "Job energy in kWh (with --power-w: duration = energy / power)")
           ->check(non_negative());
       sub.add_option("--power-w", p.power_w, "Job's average power in W")->check(positive());
       sub.add_option("--start", p.start, "Earliest start (ISO-8601 UTC)");
       sub.add_option("--end", p.end, "Time by which the job must have finished (ISO-8601 UTC)");
       sub.add_option("--within", p.within,
                      "The job may start any time within this long after --now, e.g. 24h");
       sub.add_option("--now", p.now, "Submission time for --within (default: the clock)");
       sub.add_option("--max-gap", p.max_gap,
                      "Interpolate data gaps up to this long (default 6h); longer gaps are "
                      "skipped, never read as zero");
       sub.add_option("--runner-ups", p.runner_ups, "How many runner-up choices (default 3)");
       sub.add_flag("--json", c->json, "JSON like the Carbon Aware SDK's forecast response");
       sub.add_option("--plot", c->plot, "Write an SVG plot with the chosen window marked");
       sub.add_flag("--advise", c->advise,
                    "Rank cloud regions by expected emissions (energy x PUE x intensity)");
       auto& a = c->advisor;
       sub.add_option("--provider", a.provider, "--advise: only this provider (aws, gcp, ...)");
       sub.add_option("--price-per-kwh", a.price_per_kwh, "--advise: electricity price, USD/kWh")
           ->check(non_negative());
       sub.add_option("--prices", c->prices,
                      "--advise: CSV of region,usd_per_kwh (region = provider:region or provider)");
       sub.add_option("--pue", a.default_pue,
                      "--advise: PUE where the table has none (default 1.0)")
           ->check(at_least(1.0));
       sub.add_option("--top", a.top, "--advise: show the best N regions (default 10, 0 = all)");
       return [c] { return run_schedule(*c); };
     }});

}  // namespace
}  // namespace verdant::cli
