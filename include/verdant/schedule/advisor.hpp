#pragma once
// Region advisor: ranks cloud regions for a job's energy by expected emissions
// (energy x PUE x region intensity) and, where an electricity price is known, cost.
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "verdant/energy/carbon.hpp"

namespace verdant::schedule {

struct RegionAdvice {
  std::string key;       // "gcp:europe-north1"
  std::string location;  // "Finland, Hamina"
  double intensity = 0;  // gCO2eq/kWh (table)
  double pue = 1.0;
  bool pue_known = false;               // false: the documented default 1.0 applied
  double grams = 0;                     // energy_kwh x pue x intensity
  std::optional<double> price_per_kwh;  // USD/kWh, when known
  std::optional<double> cost;           // energy_kwh x pue x price
};

struct AdvisorOptions {
  double energy_kwh = 1.0;              // at the IT equipment (PUE is applied on top)
  std::string provider;                 // "" = all providers; else "aws", "gcp", "azure", ...
  std::optional<double> default_pue;    // overrides the 1.0 default where the table has none
  std::optional<double> price_per_kwh;  // applies to every region
  std::map<std::string, double> region_prices;  // "provider:region" or "provider"
  std::size_t top = 0;                          // 0 = all
};

// Sorted by grams (then cost, then key). Unknown provider -> verdant::Error listing the
// providers the table knows.
std::vector<RegionAdvice> advise_regions(const AdvisorOptions& options);

// Reads a price table "region,usd_per_kwh" (region = "provider:region" or "provider"; a
// header line is allowed). Malformed -> verdant::Error "<file>:<line>: ...".
std::map<std::string, double> load_region_prices(const std::filesystem::path& path);

}  // namespace verdant::schedule
