#pragma once
// `verdant schedule` as library calls: a job (duration, or energy and power) and a window
// (--within from now, or --start/--end) over one or more zones, answered with the best start,
// the start-now baseline and runner-ups; its JSON is the Carbon Aware SDK's forecast shape,
// so the CLI and the Python API give the same answer. Also the region advisor's JSON.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/advisor.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::schedule {

struct PlanOptions {
  std::vector<std::string> zones;  // bundled zones or series files
  std::string location;            // zone inside multi-zone series files
  std::string duration;            // e.g. "4h"; or energy_kwh with power_w
  std::optional<double> energy_kwh, power_w;
  std::string within;          // the job may start until now + within; or start and end
  std::string start, end;      // ISO-8601 UTC
  std::string now;             // submission time for within (default: the clock)
  std::string max_gap = "6h";  // interpolate gaps up to this long
  std::size_t runner_ups = 3;
};

struct Plan {
  WindowRequest request;
  double energy_kwh = 1.0;
  std::string energy_source;  // "given", "given power x duration", or the 1 kWh assumption
  std::vector<energy::IntensitySeries> series;  // one per zone, in order
  WindowResult result;
};

// Bad settings -> UsageError naming them ("duration: '4x' is not a positive duration"); series
// that do not cover the window, or gaps everywhere -> verdant::Error naming the file.
Plan plan_schedule(const PlanOptions& options);

// The Carbon Aware SDK's EmissionsForecast response for the plan, plus our energy and source
// fields.
std::string plan_json(const Plan& plan);

// Writes an SVG of every zone's series with the chosen window marked.
void write_plan_plot(const Plan& plan, const std::filesystem::path& path);

// advise_regions' ranking as JSON, each figure with its source.
std::string advice_json(const std::vector<RegionAdvice>& ranked, double energy_kwh);

}  // namespace verdant::schedule
