// IntensitySeries: a regular grid of gCO2eq/kWh values, the gap rule, UTC timestamps and the
// bundled EIA zones.
#include "verdant/energy/intensity.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "intensity_text.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/data_paths.hpp"

namespace verdant::energy {

namespace chr = std::chrono;

IntensitySeries::IntensitySeries(std::string name, std::string source, UtcSeconds start,
                                 chr::seconds step, std::vector<double> values)
    : name_(std::move(name)),
      source_(std::move(source)),
      start_(start),
      step_(step),
      values_(std::move(values)) {
  if (step_.count() <= 0) throw Error(source_ + ": series step must be positive");
}

bool IntensitySeries::known(std::size_t i) const {
  return i < values_.size() && !std::isnan(values_[i]);
}

std::optional<std::size_t> IntensitySeries::index_of(UtcSeconds t) const {
  if (t < start_ || t >= end()) return std::nullopt;
  return static_cast<std::size_t>((t - start_) / step_);
}

namespace {
std::string gap_message(const IntensitySeries& s, std::size_t i) {
  // Report the whole unknown run around slot i so the user sees the gap's extent.
  std::size_t a = i, b = i;
  while (a > 0 && !s.known(a - 1)) --a;
  while (b + 1 < s.size() && !s.known(b + 1)) ++b;
  return s.source() + ": no intensity for " + format_utc_timestamp(s.time_at(a)) + " to " +
         format_utc_timestamp(s.time_at(b + 1)) + " (gap of " + std::to_string(b - a + 1) +
         " slots, longer than the interpolation limit)";
}

std::string coverage_message(const IntensitySeries& s, UtcSeconds t) {
  return s.source() + ": series covers " + format_utc_timestamp(s.start()) + " to " +
         format_utc_timestamp(s.end()) + ", not " + format_utc_timestamp(t);
}
}  // namespace

double IntensitySeries::at(UtcSeconds t) const {
  auto i = index_of(t);
  if (!i) throw Error(coverage_message(*this, t));
  if (!known(*i)) throw Error(gap_message(*this, *i));
  return values_[*i];
}

double IntensitySeries::mean_over(UtcSeconds from, UtcSeconds to) const {
  if (to <= from) return at(from);
  if (from < start_) throw Error(coverage_message(*this, from));
  if (to > end()) throw Error(coverage_message(*this, to));
  double weighted = 0;
  UtcSeconds cursor = from;
  while (cursor < to) {
    std::size_t i = *index_of(cursor);
    if (!known(i)) throw Error(gap_message(*this, i));
    UtcSeconds slot_end = std::min(time_at(i + 1), to);
    weighted += values_[i] * static_cast<double>((slot_end - cursor).count());
    cursor = slot_end;
  }
  return weighted / static_cast<double>((to - from).count());
}

double IntensitySeries::mean_known() const {
  double sum = 0;
  std::size_t n = 0;
  for (double v : values_)
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  if (n == 0) throw Error(source_ + ": series has no known values");
  return sum / static_cast<double>(n);
}

std::size_t IntensitySeries::unknown_count() const {
  return static_cast<std::size_t>(
      std::count_if(values_.begin(), values_.end(), [](double v) { return std::isnan(v); }));
}

std::size_t IntensitySeries::apply_gap_rule(chr::seconds max_interpolated_gap) {
  std::size_t filled = 0;
  const std::size_t n = values_.size();
  std::size_t i = 0;
  while (i < n) {
    if (!std::isnan(values_[i])) {
      ++i;
      continue;
    }
    std::size_t run_end = i;
    while (run_end < n && std::isnan(values_[run_end])) ++run_end;
    const std::size_t len = run_end - i;
    const bool bounded = i > 0 && run_end < n;
    if (bounded && step_ * static_cast<long>(len) <= max_interpolated_gap) {
      const double left = values_[i - 1], right = values_[run_end];
      for (std::size_t k = 0; k < len; ++k)
        values_[i + k] =
            left + (right - left) * static_cast<double>(k + 1) / static_cast<double>(len + 1);
      filled += len;
    }
    i = run_end;
  }
  interpolated_ += filled;
  return filled;
}

// ---- timestamps ----------------------------------------------------------------------
namespace {
bool read_int(std::string_view s, std::size_t& pos, std::size_t digits, int& out) {
  if (pos + digits > s.size()) return false;
  int v = 0;
  for (std::size_t k = 0; k < digits; ++k) {
    char c = s[pos + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += digits;
  out = v;
  return true;
}
}  // namespace

std::optional<UtcSeconds> parse_utc_timestamp(std::string_view text) {
  std::string_view s = detail::trim(text);
  std::size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!read_int(s, p, 4, y) || p >= s.size() || s[p++] != '-' || !read_int(s, p, 2, mo) ||
      p >= s.size() || s[p++] != '-' || !read_int(s, p, 2, d))
    return std::nullopt;
  if (p < s.size() && (s[p] == 'T' || s[p] == 't' || s[p] == ' ')) {
    ++p;
    if (!read_int(s, p, 2, h) || p >= s.size() || s[p++] != ':' || !read_int(s, p, 2, mi))
      return std::nullopt;
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!read_int(s, p, 2, se)) return std::nullopt;
      if (p < s.size() && s[p] == '.') {  // fractional seconds: truncated
        ++p;
        std::size_t digits = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p, ++digits;
        if (digits == 0) return std::nullopt;
      }
    }
  }
  int offset_minutes = 0;
  if (p < s.size()) {
    if (s[p] == 'Z' || s[p] == 'z') {
      ++p;
    } else if (s[p] == '+' || s[p] == '-') {
      int sign = s[p] == '-' ? -1 : 1;
      ++p;
      int oh = 0, om = 0;
      if (!read_int(s, p, 2, oh)) return std::nullopt;
      if (p < s.size() && s[p] == ':') ++p;
      if (p < s.size() && !read_int(s, p, 2, om)) return std::nullopt;
      offset_minutes = sign * (oh * 60 + om);
    } else if (s.substr(p) == " UTC") {
      p = s.size();
    }
  }
  if (p != s.size()) return std::nullopt;
  chr::year_month_day ymd{chr::year(y), chr::month(static_cast<unsigned>(mo)),
                          chr::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 60) return std::nullopt;
  return UtcSeconds(chr::sys_days(ymd)) + chr::hours(h) + chr::minutes(mi) + chr::seconds(se) -
         chr::minutes(offset_minutes);
}

std::string format_utc_timestamp(UtcSeconds t) {
  auto day = chr::floor<chr::days>(t);
  chr::year_month_day ymd(day);
  chr::hh_mm_ss hms(t - day);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

// ---- bundled EIA zones -----------------------------------------------------------------
namespace {
std::filesystem::path grid_dir() {
  return carbon_data_dir() / "grid-hourly-2022";
}
}  // namespace

std::vector<std::string> bundled_grid_zones() {
  std::vector<std::string> zones;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(grid_dir(), ec))
    if (entry.path().extension() == ".csv") zones.push_back(entry.path().stem().string());
  std::sort(zones.begin(), zones.end());
  return zones;
}

bool is_bundled_grid_zone(std::string_view zone) {
  const auto zones = bundled_grid_zones();
  return std::any_of(zones.begin(), zones.end(),
                     [&](const std::string& z) { return detail::iequals(z, zone); });
}

IntensitySeries load_grid_zone(std::string_view zone, const SeriesOptions& options) {
  auto zones = bundled_grid_zones();
  for (const auto& z : zones)
    if (detail::iequals(z, zone)) {
      SeriesOptions opts = options;
      opts.format = SeriesFormat::Eia;
      return load_intensity_series(grid_dir() / (z + ".csv"), opts);
    }
  std::string msg = "unknown grid zone '" + std::string(zone) + "'";
  if (zones.empty()) {
    msg += " (no bundled zones found in " + grid_dir().string() + ")";
  } else {
    msg += "; closest: ";
    auto close = closest_names(zone, zones, 3);
    for (std::size_t i = 0; i < close.size(); ++i) msg += (i ? ", " : "") + close[i];
    msg += " (bundled zones are in " + grid_dir().string() + "; or give a series file)";
  }
  throw Error(msg);
}

namespace {
bool looks_like_path(const std::filesystem::path& p) {
  const std::string ext = detail::lower(p.extension().string());
  std::error_code ec;
  return p.string().find('/') != std::string::npos || ext == ".csv" || ext == ".json" ||
         std::filesystem::exists(p, ec);
}
}  // namespace

IntensitySeries load_zone_or_series(std::string_view zone_or_path, const SeriesOptions& options,
                                    std::string_view setting) {
  const std::filesystem::path path{std::string(zone_or_path)};
  if (is_bundled_grid_zone(zone_or_path) || !looks_like_path(path))
    return load_grid_zone(zone_or_path, options);
  const std::string name(setting), what = name + " " + path.string() + ": ";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found)
    throw Error(what + "no such file", {name});
  if (ec) throw Error(what + ec.message(), {name});
  if (status.type() == std::filesystem::file_type::directory)
    throw Error(what + "is a directory, expected a series file", {name});
  return load_intensity_series(path, options);
}

}  // namespace verdant::energy
