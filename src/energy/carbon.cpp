// Carbon tables (countries, cloud regions), location resolution, PUE and emissions of
// measured energy intervals.
#include "verdant/energy/carbon.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "intensity_text.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/data_paths.hpp"

namespace verdant::energy {

namespace chr = std::chrono;
using detail::iequals;
using detail::lower;
using detail::trim;

namespace {

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// ---- tables -------------------------------------------------------------------------
std::vector<CountryIntensity> load_countries() {
  auto path = carbon_data_dir() / "tables" / "country_energy_mix_2023.json";
  std::string text = read_file_text(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::size_t line = 1 + static_cast<std::size_t>(std::count(
                               text.begin(), text.begin() + std::min(e.byte, text.size()), '\n'));
    throw Error(path.string() + ":" + std::to_string(line) + ": invalid JSON");
  }
  if (!doc.is_object()) throw Error(path.string() + ": expected an object keyed by ISO code");
  std::vector<CountryIntensity> out;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const auto& v = it.value();
    if (!v.is_object() || !v.contains("carbon_intensity") || !v["carbon_intensity"].is_number())
      throw Error(path.string() + ": entry '" + it.key() + "' has no numeric carbon_intensity");
    CountryIntensity c;
    c.iso3 = it.key();
    c.name = v.value("country_name", it.key());
    c.gco2_per_kwh = v["carbon_intensity"].get<double>();
    c.year = v.contains("year") && v["year"].is_number_integer() ? v["year"].get<int>() : 0;
    out.push_back(std::move(c));
  }
  return out;
}

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> lines;
  int col(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (iequals(trim(header[i]), name)) return static_cast<int>(i);
    return -1;
  }
};

CsvTable read_csv_table(const std::filesystem::path& path,
                        std::initializer_list<const char*> required) {
  std::string text = read_file_text(path);
  detail::LineReader reader(text);
  std::string_view line;
  CsvTable t;
  std::vector<std::string> fields;
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    if (!detail::split_csv(line, fields))
      throw Error(path.string() + ":" + std::to_string(reader.number()) + ": unterminated quote");
    if (t.header.empty()) {
      t.header = fields;
      continue;
    }
    if (fields.size() != t.header.size())
      throw Error(path.string() + ":" + std::to_string(reader.number()) + ": expected " +
                  std::to_string(t.header.size()) + " fields, found " +
                  std::to_string(fields.size()));
    t.rows.push_back(fields);
    t.lines.push_back(reader.number());
  }
  for (const char* name : required)
    if (t.col(name) < 0)
      throw Error(path.string() + ":1: missing column '" + std::string(name) + "'");
  return t;
}

std::vector<CloudRegion> load_cloud_regions() {
  auto dir = carbon_data_dir() / "tables";
  auto mlco2_path = dir / "cloud_regions_mlco2.csv";
  auto gcp_path = dir / "gcp_regions.csv";
  CsvTable mlco2 = read_csv_table(mlco2_path, {"provider", "region", "impact", "PUE"});
  std::vector<CloudRegion> out;
  std::map<std::string, std::size_t> index;
  const int c_provider = mlco2.col("provider"), c_region = mlco2.col("region"),
            c_region_name = mlco2.col("regionName"), c_country = mlco2.col("country"),
            c_state = mlco2.col("state"), c_city = mlco2.col("city"),
            c_impact = mlco2.col("impact"), c_pue = mlco2.col("PUE");
  auto cell = [](const std::vector<std::string>& row, int c) {
    return c >= 0 ? std::string(trim(row[c])) : std::string();
  };
  auto place = [&](const std::vector<std::string>& row, int country, int state, int city) {
    std::string where = cell(row, country);
    for (int c : {state, city}) {
      std::string part = cell(row, c);
      while (!part.empty() && part.back() == ',') part.pop_back();
      if (!part.empty()) where += ", " + part;
    }
    return where;
  };
  for (std::size_t r = 0; r < mlco2.rows.size(); ++r) {
    const auto& row = mlco2.rows[r];
    CloudRegion region;
    region.provider = lower(cell(row, c_provider));
    region.region = cell(row, c_region);
    if (region.region.empty()) region.region = lower(cell(row, c_region_name));
    for (char& ch : region.region)
      if (ch == ' ') ch = '-';
    region.location = place(row, c_country, c_state, c_city);
    region.country = cell(row, c_country);
    auto impact = detail::parse_double(cell(row, c_impact));
    if (!impact)
      throw Error(mlco2_path.string() + ":" + std::to_string(mlco2.lines[r]) +
                  ": 'impact' is not a number");
    region.gco2_per_kwh = *impact;
    if (auto pue = detail::parse_double(cell(row, c_pue))) region.pue = *pue;
    region.source = "cloud_regions_mlco2.csv";
    index[lower(region.key())] = out.size();
    out.push_back(std::move(region));
  }
  // Google's own newer per-region figures replace the older GCP rows (PUE kept).
  CsvTable gcp = read_csv_table(gcp_path, {"region", "impact"});
  const int g_region = gcp.col("region"), g_impact = gcp.col("impact"),
            g_country = gcp.col("country_name"), g_state = gcp.col("state"),
            g_city = gcp.col("city");
  for (std::size_t r = 0; r < gcp.rows.size(); ++r) {
    const auto& row = gcp.rows[r];
    auto impact = detail::parse_double(cell(row, g_impact));
    if (!impact)
      throw Error(gcp_path.string() + ":" + std::to_string(gcp.lines[r]) +
                  ": 'impact' is not a number");
    std::string key = "gcp:" + lower(cell(row, g_region));
    auto it = index.find(key);
    if (it == index.end()) {
      CloudRegion region;
      region.provider = "gcp";
      region.region = cell(row, g_region);
      region.location = place(row, g_country, g_state, g_city);
      region.country = cell(row, g_country);
      index[key] = out.size();
      out.push_back(std::move(region));
      it = index.find(key);
    }
    out[it->second].gco2_per_kwh = *impact;
    out[it->second].source = "gcp_regions.csv";
  }
  std::sort(out.begin(), out.end(),
            [](const CloudRegion& a, const CloudRegion& b) { return a.key() < b.key(); });
  return out;
}

// Loaded once per process; a failed load throws and is retried on the next call.
template <typename T>
const std::vector<T>& load_once(std::optional<std::vector<T>>& slot, std::mutex& mu,
                                std::vector<T> (*loader)()) {
  std::lock_guard lock(mu);
  if (!slot) slot = loader();
  return *slot;
}

}  // namespace

std::vector<std::string> closest_names(std::string_view query,
                                       std::span<const std::string> candidates, std::size_t n) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  scored.reserve(candidates.size());
  for (const auto& c : candidates) scored.emplace_back(edit_distance(query, c), c);
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && out.size() < n; ++i)
    if (std::find(out.begin(), out.end(), scored[i].second) == out.end())
      out.push_back(scored[i].second);
  return out;
}

const std::vector<CountryIntensity>& country_table() {
  static std::mutex mu;
  static std::optional<std::vector<CountryIntensity>> table;
  return load_once(table, mu, &load_countries);
}

const std::vector<CloudRegion>& cloud_regions() {
  static std::mutex mu;
  static std::optional<std::vector<CloudRegion>> table;
  return load_once(table, mu, &load_cloud_regions);
}

const CountryIntensity& find_country(std::string_view iso3_or_name) {
  const auto& table = country_table();
  std::string_view q = trim(iso3_or_name);
  for (const auto& c : table)
    if (iequals(c.iso3, q) || iequals(c.name, q)) return c;
  std::vector<std::string> names;
  for (const auto& c : table) {
    names.push_back(c.iso3);
    names.push_back(c.name);
  }
  auto close = closest_names(q, names, 3);
  for (auto& n : close)
    for (const auto& c : table)
      if (c.iso3 == n || c.name == n) {
        n = c.iso3 + " (" + c.name + ")";
        break;
      }
  throw Error("unknown country '" + std::string(q) + "'; closest: " + join(close) +
              " (ISO 3166 alpha-3 code or English name)");
}

const CloudRegion& find_cloud_region(std::string_view provider_colon_region) {
  const auto& table = cloud_regions();
  std::string_view q = trim(provider_colon_region);
  for (const auto& r : table)
    if (iequals(r.key(), q)) return r;
  std::vector<std::string> keys;
  for (const auto& r : table) keys.push_back(r.key());
  std::string hint = q.find(':') == std::string_view::npos ? " (expected provider:region)" : "";
  throw Error("unknown cloud region '" + std::string(q) + "'" + hint +
              "; closest: " + join(closest_names(q, keys, 3)));
}

// ---- CarbonIntensity ---------------------------------------------------------------------
CarbonIntensity CarbonIntensity::constant(double gco2_per_kwh, std::string description, double pue,
                                          bool is_default) {
  if (!(gco2_per_kwh >= 0) || !std::isfinite(gco2_per_kwh))
    throw Error("carbon intensity must be a finite number >= 0, got " + fmt_g(gco2_per_kwh));
  CarbonIntensity c;
  c.constant_ = gco2_per_kwh;
  c.description_ = std::move(description);
  c.is_default_ = is_default;
  c.set_pue(pue, "default");
  return c;
}

CarbonIntensity CarbonIntensity::from_series(IntensitySeries series, std::string description,
                                             double pue) {
  CarbonIntensity c;
  c.constant_ = series.mean_known();  // throws if the series has no known value
  c.series_ = std::move(series);
  c.description_ = std::move(description);
  c.set_pue(pue, "default");
  return c;
}

void validate_pue(double pue) {
  if (!(pue >= 1.0) || !std::isfinite(pue))
    throw SettingError("pue", "PUE must be a number >= 1.0, got " + fmt_g(pue));
}

void validate_wue(double wue) {
  if (!(wue >= 0.0) || !std::isfinite(wue))
    throw SettingError("wue", "wue must be a number of litres per kWh >= 0, got " + fmt_g(wue));
}

CarbonIntensity& CarbonIntensity::set_pue(double pue, std::string source) {
  validate_pue(pue);
  pue_ = pue;
  pue_source_ = std::move(source);
  return *this;
}

CarbonIntensity& CarbonIntensity::set_typical_year(bool on) {
  typical_year_ = on;
  return *this;
}

std::string CarbonIntensity::pue_description() const {
  return "PUE " + fmt_g(pue_) + " (" + pue_source_ + ")";
}

double CarbonIntensity::mean_gco2_per_kwh() const {
  return constant_;
}

namespace {
bool is_year_long(const IntensitySeries& s) {
  auto day = chr::floor<chr::days>(s.start());
  chr::year_month_day ymd(day);
  return s.start() == UtcSeconds(day) && ymd.month() == chr::January && ymd.day() == chr::day(1) &&
         s.end() - s.start() >= chr::days(365);
}

// Same UTC month/day/time of day in the series' year.
UtcTime to_series_year(UtcTime t, const IntensitySeries& s) {
  auto day = chr::floor<chr::days>(t);
  chr::year_month_day ymd(day);
  chr::year year = chr::year_month_day(chr::floor<chr::days>(s.start())).year();
  chr::year_month_day mapped = year / ymd.month() / ymd.day();
  if (!mapped.ok()) mapped = year / chr::February / chr::day(28);  // 29 Feb
  return UtcTime(chr::sys_days(mapped)) + (t - day);
}
}  // namespace

double CarbonIntensity::grams(std::span<const EnergyInterval> intervals) const {
  double total = 0;
  for (const auto& iv : intervals) {
    if (!(iv.joules >= 0) || !std::isfinite(iv.joules))
      throw Error("energy interval with invalid joules " + fmt_g(iv.joules));
    if (iv.end < iv.start) throw Error("energy interval ends before it starts");
    const double kwh = iv.joules / kJoulesPerKwh;
    if (!series_) {
      total += kwh * pue_ * constant_;
      continue;
    }
    const IntensitySeries& s = *series_;
    auto map = [&](UtcTime t) {
      bool outside = t < UtcTime(s.start()) || t >= UtcTime(s.end());
      return outside && typical_year_ && is_year_long(s) ? to_series_year(t, s) : t;
    };
    if (iv.end == iv.start) {  // instantaneous: charge at the intensity of that moment
      total += kwh * pue_ * s.at(chr::floor<chr::seconds>(map(iv.start)));
      continue;
    }
    const double span = chr::duration<double>(iv.end - iv.start).count();
    UtcTime cursor = iv.start;
    while (cursor < iv.end) {
      UtcTime mapped = map(cursor);
      UtcSeconds mapped_s = chr::floor<chr::seconds>(mapped);
      double value = s.at(mapped_s);  // throws outside the series or in an unknown gap
      UtcTime slot_end = UtcTime(s.time_at(*s.index_of(mapped_s) + 1));
      UtcTime piece_end = std::min(iv.end, cursor + (slot_end - mapped));
      double share = chr::duration<double>(piece_end - cursor).count() / span;
      total += kwh * share * pue_ * value;
      cursor = piece_end;
    }
  }
  return total;
}

// ---- resolution ---------------------------------------------------------------------------
namespace {
CarbonIntensity from_series_described(IntensitySeries series, const std::string& what,
                                      bool typical_year) {
  std::string desc = what + " " + series.name() + " (series " + series.source() + ", " +
                     format_utc_timestamp(series.start()) + " to " +
                     format_utc_timestamp(series.end()) + ", mean " + fmt_g(series.mean_known()) +
                     " gCO2eq/kWh";
  desc += "; gap rule: " + std::to_string(series.interpolated_count()) + " slots interpolated, " +
          std::to_string(series.unknown_count()) + " unknown";
  bool year_long = is_year_long(series);
  if (typical_year && year_long) {
    int y = static_cast<int>(chr::year_month_day(chr::floor<chr::days>(series.start())).year());
    desc += "; times outside " + std::to_string(y) + " use the same UTC hour of " +
            std::to_string(y) + " (typical year)";
  }
  desc += ")";
  auto c = CarbonIntensity::from_series(std::move(series), desc);
  c.set_typical_year(typical_year && year_long);
  return c;
}
}  // namespace

CarbonIntensity resolve_carbon_intensity(const LocationRequest& request) {
  int given = !request.country.empty() + !request.cloud.empty() + !request.grid_zone.empty() +
              !request.series_file.empty();
  if (given > 1)
    throw UsageError("give only one location: --country, --cloud, --grid-zone or a series file");
  CarbonIntensity result;
  if (!request.country.empty()) {
    const auto& c = find_country(request.country);
    result = CarbonIntensity::constant(
        c.gco2_per_kwh, "country " + c.iso3 + " (" + c.name + ", " + std::to_string(c.year) +
                            " annual average, Ember/OWID): " + fmt_g(c.gco2_per_kwh) +
                            " gCO2eq/kWh");
  } else if (!request.cloud.empty()) {
    const auto& r = find_cloud_region(request.cloud);
    result = CarbonIntensity::constant(
        r.gco2_per_kwh, "cloud region " + r.key() + " (" + r.location + ", " + r.source +
                            "): " + fmt_g(r.gco2_per_kwh) + " gCO2eq/kWh");
    if (r.pue) result.set_pue(*r.pue, "table value for " + r.key());
  } else if (!request.grid_zone.empty()) {
    const bool bundled = is_bundled_grid_zone(request.grid_zone);
    result = from_series_described(load_zone_or_series(request.grid_zone, request.series_options),
                                   bundled ? "grid zone" : "series", request.typical_year);
  } else if (!request.series_file.empty()) {
    result =
        from_series_described(load_intensity_series(request.series_file, request.series_options),
                              "series", request.typical_year);
  } else {
    result = CarbonIntensity::constant(kWorldAverageGco2PerKwh,
                                       "default: world average 475 gCO2eq/kWh (no location "
                                       "given; CodeCarbon's default)",
                                       kDefaultPue, true);
  }
  if (request.pue) result.set_pue(*request.pue, "given");
  if (request.wue) validate_wue(*request.wue);
  return result;
}

}  // namespace verdant::energy
