#pragma once
// Grid carbon-intensity time series (gCO2eq/kWh, UTC) and their readers.
//
// A series is a regular grid: value(i) holds over [start + i*step, start + (i+1)*step).
// Supported files (auto-detected from extension and header):
//   - EIA hourly format (data/carbon/grid-hourly-2022/US-*.csv):
//       timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI   (first header cell may be empty)
//   - Electricity Maps CSV export: "Datetime (UTC)", "Zone Id", "Carbon Intensity gCO₂eq/kWh
//     (LCA)" / "(direct)" (older exports) or "Carbon intensity gCO₂eq/kWh (Life cycle)" /
//     "(direct)" (newer ones); header names are matched case-insensitively.
//   - plain CSV: timestamp,gco2eq_per_kwh
//   - Carbon Aware SDK emissions JSON: [{"location","time","rating","duration"}, ...]
//     (also accepted wrapped as {"emissions": [...]}; keys case-insensitive).
//
// GAP RULE (documented, tested on the real files): a slot is a gap when its timestamp is
// missing from the file or its row is present with an empty value. A run of gap slots
// spanning at most `max_interpolated_gap` (default 6 h) with known values on both sides is
// filled by linear interpolation between those two values and counted in
// interpolated_count(). Longer runs, and gaps before the first / after the last known value,
// stay UNKNOWN (NaN): any computation that needs an unknown slot throws verdant::Error
// naming the series and the gap; the scheduler skips candidate windows that touch one.
// A gap never becomes zero.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace verdant::energy {

using UtcSeconds = std::chrono::sys_seconds;  // UTC, whole seconds

// The highest value a series file may hold, in gCO2eq/kWh. The dirtiest real grids (coal,
// lignite) average about 1,200; a value far above that is a unit mix-up (g/MWh) or a corrupt
// file, and would otherwise print as an absurd or infinite mean.
inline constexpr double kMaxSeriesGco2PerKwh = 5000.0;

enum class SeriesFormat { Auto, Eia, ElectricityMaps, Plain, CarbonAwareJson };

// Which Electricity Maps column to read.
enum class EmissionFactor { Lifecycle, Direct };

struct SeriesOptions {
  SeriesFormat format = SeriesFormat::Auto;
  std::chrono::seconds max_interpolated_gap = std::chrono::hours(6);
  EmissionFactor factor = EmissionFactor::Lifecycle;
  // For files holding several zones/locations (Electricity Maps, Carbon Aware JSON): which
  // one to keep. Empty = the file must hold exactly one, else an error lists them.
  std::string location;
};

class IntensitySeries {
 public:
  IntensitySeries() = default;
  // `values` may contain NaN for unknown slots; apply_gap_rule() is NOT called here.
  IntensitySeries(std::string name, std::string source, UtcSeconds start, std::chrono::seconds step,
                  std::vector<double> values);

  const std::string& name() const { return name_; }      // zone / location, e.g. "US-CISO"
  const std::string& source() const { return source_; }  // file it came from (for errors)
  UtcSeconds start() const { return start_; }
  UtcSeconds end() const { return start_ + step_ * static_cast<long>(values_.size()); }
  std::chrono::seconds step() const { return step_; }
  std::size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  const std::vector<double>& values() const { return values_; }
  double value(std::size_t i) const { return values_[i]; }  // NaN if unknown
  bool known(std::size_t i) const;
  UtcSeconds time_at(std::size_t i) const { return start_ + step_ * static_cast<long>(i); }

  // Index of the slot containing t, or nullopt when t is outside [start, end).
  std::optional<std::size_t> index_of(UtcSeconds t) const;
  // Intensity at t; throws verdant::Error if t is outside the series or in an unknown gap.
  double at(UtcSeconds t) const;
  // Time-weighted mean over [from, to); throws like at() if any part is not covered/known.
  double mean_over(UtcSeconds from, UtcSeconds to) const;
  // Mean of the known slots (the "annual average" of a year-long series).
  double mean_known() const;

  std::size_t interpolated_count() const { return interpolated_; }
  std::size_t unknown_count() const;
  // Applies the gap rule above in place. Returns the number of slots filled.
  std::size_t apply_gap_rule(std::chrono::seconds max_interpolated_gap);

 private:
  std::string name_, source_;
  UtcSeconds start_{};
  std::chrono::seconds step_{3600};
  std::vector<double> values_;
  std::size_t interpolated_ = 0;
};

// Parses a file (format auto-detected unless given) and applies the gap rule.
// Malformed input -> verdant::Error "<file>:<line>: <what is wrong>", among it any value
// outside 0 to kMaxSeriesGco2PerKwh.
IntensitySeries load_intensity_series(const std::filesystem::path& path,
                                      const SeriesOptions& options = {});
// Same, from text already in memory; `source` names it in errors and picks the format by
// extension when format is Auto.
IntensitySeries parse_intensity_series(std::string_view text, const std::string& source,
                                       const SeriesOptions& options = {});

// Parses "2022-01-01 00:00:00+00:00", "2022-01-01T00:00:00Z", "2022-01-01T00:00",
// "2022-01-01" (UTC midnight), with optional fractional seconds and +hh:mm offsets.
// Returns nullopt if the text is not such a timestamp.
std::optional<UtcSeconds> parse_utc_timestamp(std::string_view text);
// "2022-01-01T00:00:00Z".
std::string format_utc_timestamp(UtcSeconds t);

// Bundled EIA zones found in carbon_data_dir()/grid-hourly-2022 ("US-AZPS", ... sorted).
std::vector<std::string> bundled_grid_zones();
// True when `zone` names a bundled zone (case-insensitive).
bool is_bundled_grid_zone(std::string_view zone);
// Loads a bundled zone (case-insensitive). Unknown zone -> verdant::Error listing the
// closest valid names.
IntensitySeries load_grid_zone(std::string_view zone, const SeriesOptions& options = {});
// A bundled zone name or a series file, as the zone settings (`verdant schedule --zone`,
// LocationRequest::grid_zone) take them. A bundled name wins; anything else that looks like
// a path (holds a '/', ends in .csv or .json, or names something on disk) is read as a file,
// so a mistyped path reads "<setting> PATH: no such file" (or "is a directory"), not as an
// unknown zone. Other names -> load_grid_zone()'s error with the closest zones.
IntensitySeries load_zone_or_series(std::string_view zone_or_path,
                                    const SeriesOptions& options = {},
                                    std::string_view setting = "grid_zone");

}  // namespace verdant::energy
