#pragma once
// Carbon intensity for a location, PUE, and emissions of measured energy.
//
// Where the numbers come from (data/carbon/, attribution in data/SOURCES.md):
//   - countries: tables/country_energy_mix_2023.json (ISO alpha-3 keys; Ember/OWID);
//   - cloud regions: tables/cloud_regions_mlco2.csv (AWS, Azure, GCP, ...; PUE where
//     known), with GCP intensities overridden by the newer tables/gcp_regions.csv;
//   - hourly series: bundled EIA zones (grid-hourly-2022/US-*.csv) or a series file.
// Defaults (always reported in CarbonIntensity::description()):
//   - no location given -> world average 475 gCO2eq/kWh (CodeCarbon's default);
//   - PUE 1.0 unless the cloud-region table gives one for that region.
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "verdant/energy/intensity.hpp"

namespace verdant::energy {

inline constexpr double kWorldAverageGco2PerKwh = 475.0;
inline constexpr double kDefaultPue = 1.0;

// A PUE is the data centre's total energy over its IT equipment's: a finite number >= 1.
// Throws verdant::SettingError("pue", "PUE must be a number >= 1.0, got X") otherwise. Every
// setting of a PUE (flags, LocationRequest::pue, CarbonIntensity::set_pue) goes through here.
void validate_pue(double pue);
// A WUE is litres of water per kWh of IT energy: a finite number >= 0. Throws
// verdant::SettingError("wue", ...) otherwise.
void validate_wue(double wue);

// ---- reference tables (loaded once from data_dir(), cached) ----------------------------
struct CountryIntensity {
  std::string iso3;  // "FRA"
  std::string name;  // "France"
  double gco2_per_kwh = 0;
  int year = 0;
};
const std::vector<CountryIntensity>& country_table();
// By ISO alpha-3 code or country name (case-insensitive). Unknown -> verdant::Error listing
// the closest valid names.
const CountryIntensity& find_country(std::string_view iso3_or_name);

struct CloudRegion {
  std::string provider;  // "aws", "gcp", "azure", "ovh", ...
  std::string region;    // "us-east-1"
  std::string location;  // "USA, Virginia" (country, state/city) for display
  std::string country;
  double gco2_per_kwh = 0;
  std::optional<double> pue;  // only where the table knows it
  std::string source;         // which table the intensity came from
  std::string key() const { return provider + ":" + region; }
};
const std::vector<CloudRegion>& cloud_regions();
// "aws:us-east-1" (case-insensitive). Unknown -> verdant::Error listing closest keys.
const CloudRegion& find_cloud_region(std::string_view provider_colon_region);

// The `n` candidates closest to `query` by (case-insensitive) edit distance, best first.
std::vector<std::string> closest_names(std::string_view query,
                                       std::span<const std::string> candidates, std::size_t n = 3);

// ---- energy intervals and emissions ---------------------------------------------------
using UtcTime = std::chrono::system_clock::time_point;

struct EnergyInterval {
  UtcTime start;
  UtcTime end;
  double joules = 0;  // spread evenly over [start, end)
};

// The intensity that applies to a run: one constant or an hourly-or-finer series, plus PUE.
class CarbonIntensity {
 public:
  static CarbonIntensity constant(double gco2_per_kwh, std::string description,
                                  double pue = kDefaultPue, bool is_default = false);
  static CarbonIntensity from_series(IntensitySeries series, std::string description,
                                     double pue = kDefaultPue);
  // Same intensity, another PUE; `source` says where it came from ("gcp:us-east4", "flag").
  CarbonIntensity& set_pue(double pue, std::string source);
  // A year-long historical series (starting 1 Jan 00:00 UTC) used as a typical year: times
  // outside it are charged at the same UTC month/day/hour of the series' year (29 Feb ->
  // 28 Feb). Off for from_series(); resolve_carbon_intensity() turns it on when
  // LocationRequest::typical_year is set and the series is year-long (description says so).
  CarbonIntensity& set_typical_year(bool on);
  bool typical_year() const { return typical_year_; }

  // What applies, in words, for every output: e.g. "country FRA (France, 2023): 56.04
  // gCO2eq/kWh", "default: world average 475 gCO2eq/kWh (no location given)",
  // "grid zone US-CISO (EIA hourly 2022, 3 hours interpolated)".
  const std::string& description() const { return description_; }
  bool is_default() const { return is_default_; }  // true when the world average applied
  bool is_time_series() const { return series_.has_value(); }
  const IntensitySeries* series() const { return series_ ? &*series_ : nullptr; }
  double pue() const { return pue_; }
  std::string pue_description() const;  // "PUE 1.0 (default)" / "PUE 1.1 (gcp:us-east4)"
  // Constant value, or the series' mean of known slots.
  double mean_gco2_per_kwh() const;

  // Grams CO2eq for energy measured at the IT equipment (PUE is applied here).
  // Series: each interval is split at the series' slot boundaries and each piece is
  // charged at its slot's intensity. Throws verdant::Error if an interval falls outside
  // the series or in an unknown gap.
  double grams(std::span<const EnergyInterval> intervals) const;
  // Constant case / series mean: grams for `kwh` with no time information.
  double grams_for_kwh(double kwh) const { return kwh * pue_ * mean_gco2_per_kwh(); }

 private:
  double constant_ = kWorldAverageGco2PerKwh;
  std::optional<IntensitySeries> series_;
  std::string description_;
  std::string pue_source_ = "default";
  double pue_ = kDefaultPue;
  bool is_default_ = false;
  bool typical_year_ = false;
};

// ---- location resolution --------------------------------------------------------------
// What the user said (flags or config). At most one of the four may be set; none -> the
// world-average default. `pue` overrides the table / default PUE when set.
struct LocationRequest {
  std::string country;      // "FRA" or "France"
  std::string cloud;        // "aws:us-east-1", "gcp:europe-west1", "azure:westeurope"
  std::string grid_zone;    // bundled EIA zone "US-CISO", or a path to a series file
  std::string series_file;  // explicit series file
  std::optional<double> pue;
  std::optional<double> wue;     // litres of water per kWh of IT energy; none: 0 (CodeCarbon)
  SeriesOptions series_options;  // for grid_zone / series_file
  bool typical_year = true;      // see CarbonIntensity::set_typical_year
};
// Throws verdant::UsageError if several locations are given, verdant::Error for unknown
// names (listing the closest valid ones) or unreadable files.
CarbonIntensity resolve_carbon_intensity(const LocationRequest& request);

// kWh <-> J
inline constexpr double kJoulesPerKwh = 3.6e6;

}  // namespace verdant::energy
