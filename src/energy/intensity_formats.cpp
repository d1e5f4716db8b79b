// Readers for the intensity-series formats: EIA hourly CSV, Electricity Maps CSV export, plain
// timestamp,value CSV and Carbon Aware SDK emissions JSON. Every reader produces timestamped
// points; build_grid() turns them into a regular series and applies the gap rule.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "intensity_text.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/intensity.hpp"

namespace verdant::energy {

namespace chr = std::chrono;
using detail::lower;
using detail::trim;

namespace {

constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
// A series longer than this many slots is certainly a mistake (e.g. one stray 1970 date).
constexpr std::size_t kMaxSlots = 20'000'000;

struct Point {
  UtcSeconds time;
  double value;  // NaN = row present but empty
  std::size_t line;
  chr::seconds duration{0};  // 0 = not given
};

[[noreturn]] void fail(const std::string& source, std::size_t line, const std::string& what) {
  throw Error(source + ":" + std::to_string(line) + ": " + what);
}

std::string quoted_list(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

IntensitySeries build_grid(std::vector<Point> points, const std::string& name,
                           const std::string& source, const SeriesOptions& options) {
  if (points.empty()) throw Error(source + ": no data rows");
  std::stable_sort(points.begin(), points.end(),
                   [](const Point& a, const Point& b) { return a.time < b.time; });
  // Step: the smallest spacing between timestamps (or the smallest given duration).
  chr::seconds step = chr::seconds::max();
  for (std::size_t i = 1; i < points.size(); ++i) {
    auto d = points[i].time - points[i - 1].time;
    if (d.count() == 0)
      fail(source, std::max(points[i].line, points[i - 1].line),
           "duplicate timestamp " + format_utc_timestamp(points[i].time) + " (also on line " +
               std::to_string(std::min(points[i].line, points[i - 1].line)) + ")");
    step = std::min(step, chr::duration_cast<chr::seconds>(d));
  }
  for (const auto& p : points)
    if (p.duration.count() > 0) step = std::min(step, p.duration);
  if (step == chr::seconds::max()) step = chr::hours(1);  // one point, no duration: hourly
  const UtcSeconds start = points.front().time;
  UtcSeconds end = points.back().time + step;
  for (const auto& p : points)
    if (p.duration.count() > 0) end = std::max(end, p.time + p.duration);
  const auto slots = static_cast<std::size_t>((end - start) / step);
  if (slots > kMaxSlots)
    throw Error(source + ": timestamps span " + format_utc_timestamp(start) + " to " +
                format_utc_timestamp(end) + " at a " + std::to_string(step.count()) +
                " s step: too many slots (a stray date?)");
  std::vector<double> values(slots, kUnknown);
  std::vector<bool> filled(slots, false);
  for (const auto& p : points) {
    if ((p.time - start) % step != chr::seconds(0))
      fail(source, p.line,
           "timestamp " + format_utc_timestamp(p.time) + " is not on the series' " +
               std::to_string(step.count()) + " s grid starting " + format_utc_timestamp(start));
    auto span = p.duration.count() > 0 ? p.duration : step;
    if (span % step != chr::seconds(0))
      fail(source, p.line,
           "duration " + std::to_string(span.count()) + " s is not a multiple of the step");
    auto first = static_cast<std::size_t>((p.time - start) / step);
    auto count = static_cast<std::size_t>(span / step);
    for (std::size_t k = first; k < first + count; ++k) {
      if (filled[k])
        fail(source, p.line,
             "interval overlaps another row at " + format_utc_timestamp(start + step * long(k)));
      filled[k] = true;
      values[k] = p.value;
    }
  }
  IntensitySeries series(name, source, start, step, std::move(values));
  series.apply_gap_rule(options.max_interpolated_gap);
  return series;
}

// Every reader's values pass here; `what` names the column or element, `text` is the value
// as written.
void check_intensity(double v, std::string_view text, const std::string& source, std::size_t line,
                     const std::string& what) {
  if (!std::isfinite(v)) fail(source, line, what + ": '" + std::string(text) + "' is not a number");
  if (v < 0) fail(source, line, what + ": negative intensity " + std::string(text));
  if (v > kMaxSeriesGco2PerKwh)
    fail(source, line,
         what + ": intensity " + std::string(text) + " is above " +
             std::to_string(static_cast<int>(kMaxSeriesGco2PerKwh)) +
             " gCO2eq/kWh (the dirtiest grids average about 1200)");
}

double parse_value(std::string_view field, const std::string& source, std::size_t line,
                   const std::string& column) {
  auto v = detail::parse_double(field);
  if (!v)
    fail(source, line, "column '" + column + "': '" + std::string(field) + "' is not a number");
  check_intensity(*v, trim(field), source, line, "column '" + column + "'");
  return *v;
}

UtcSeconds parse_time(std::string_view field, const std::string& source, std::size_t line) {
  auto t = parse_utc_timestamp(field);
  if (!t) fail(source, line, "'" + std::string(field) + "' is not an ISO-8601 UTC timestamp");
  return *t;
}

// ---- CSV formats ---------------------------------------------------------------------
struct CsvLayout {
  SeriesFormat format;
  int time_col = 0;
  int value_col = 1;
  int zone_col = -1;       // Electricity Maps: "Zone Id"
  int zone_name_col = -1;  // Electricity Maps: "Zone Name"
  bool has_header = true;
};

int find_column(const std::vector<std::string>& header, auto predicate) {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (predicate(lower(trim(header[i])))) return static_cast<int>(i);
  return -1;
}

CsvLayout detect_csv(const std::vector<std::string>& header, const std::string& source,
                     const SeriesOptions& options) {
  auto has = [](std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
  };
  CsvLayout layout{SeriesFormat::Plain};
  const int avg_ci = find_column(header, [](const std::string& h) { return h == "avg_ci"; });
  const int em_time =
      find_column(header, [](const std::string& h) { return h == "datetime (utc)"; });
  SeriesFormat format = options.format;
  if (format == SeriesFormat::Auto) {
    if (avg_ci >= 0)
      format = SeriesFormat::Eia;
    else if (em_time >= 0)
      format = SeriesFormat::ElectricityMaps;
    else
      format = SeriesFormat::Plain;
  }
  layout.format = format;
  switch (format) {
    case SeriesFormat::Eia:
      if (avg_ci < 0) fail(source, 1, "EIA header has no 'avg_CI' column");
      layout.value_col = avg_ci;
      layout.time_col = 0;  // its header may be empty (US-WAAT.csv)
      break;
    case SeriesFormat::ElectricityMaps: {
      if (em_time < 0) fail(source, 1, "Electricity Maps header has no 'Datetime (UTC)' column");
      layout.time_col = em_time;
      layout.zone_col = find_column(header, [](const std::string& h) { return h == "zone id"; });
      layout.zone_name_col =
          find_column(header, [](const std::string& h) { return h == "zone name"; });
      if (options.factor == EmissionFactor::Lifecycle)
        layout.value_col = find_column(header, [&](const std::string& h) {
          return has(h, "carbon intensity") && (has(h, "(lca)") || has(h, "(life cycle)"));
        });
      else
        layout.value_col = find_column(header, [&](const std::string& h) {
          return has(h, "carbon intensity") && has(h, "(direct)");
        });
      if (layout.value_col < 0)
        fail(source, 1,
             std::string("Electricity Maps header has no 'Carbon Intensity gCO₂eq/kWh ") +
                 (options.factor == EmissionFactor::Lifecycle ? "(LCA)' / '(Life cycle)'"
                                                              : "(direct)'") +
                 " column");
      break;
    }
    case SeriesFormat::Plain: {
      if (header.size() < 2)
        fail(source, 1,
             "expected 'timestamp,gco2eq_per_kwh' (found " + std::to_string(header.size()) +
                 " column)");
      // Headerless plain files start straight with a timestamp.
      layout.has_header = !parse_utc_timestamp(header[0]).has_value();
      if (layout.has_header) {
        int v = find_column(header, [&](const std::string& h) {
          return has(h, "gco2") || has(h, "intensity") || h == "value" || h == "rating";
        });
        layout.value_col = v >= 0 ? v : 1;
      }
      break;
    }
    case SeriesFormat::CarbonAwareJson:
    case SeriesFormat::Auto:
      break;
  }
  return layout;
}

IntensitySeries parse_csv(std::string_view text, const std::string& source,
                          const SeriesOptions& options) {
  detail::LineReader reader(text);
  std::string_view line;
  std::vector<std::string> fields;
  // First non-blank line is the header (or, for a headerless plain file, the first row).
  bool got = false;
  while (reader.next(line))
    if (!trim(line).empty()) {
      got = true;
      break;
    }
  if (!got) throw Error(source + ": empty file");
  if (!detail::split_csv(line, fields)) fail(source, reader.number(), "unterminated quote");
  const std::size_t header_line = reader.number();
  CsvLayout layout = detect_csv(fields, source, options);
  const std::size_t width = fields.size();
  const int needed = std::max({layout.time_col, layout.value_col, layout.zone_col});
  const std::string value_name =
      layout.has_header ? std::string(trim(fields[layout.value_col])) : "value";

  std::vector<Point> points;
  points.reserve(text.size() / 40);
  std::vector<std::string_view> row;
  std::vector<std::string> storage;
  std::map<std::string, std::string> zones;  // zone id -> zone name, for the error message
  std::string wanted = lower(options.location);
  auto handle_row = [&](std::size_t line_no) {
    if (row.size() != width)
      fail(source, line_no,
           "expected " + std::to_string(width) + " fields, found " + std::to_string(row.size()));
    if (static_cast<int>(row.size()) <= needed) fail(source, line_no, "missing columns");
    if (layout.zone_col >= 0) {
      std::string zone(trim(row[layout.zone_col]));
      std::string zone_name =
          layout.zone_name_col >= 0 ? std::string(trim(row[layout.zone_name_col])) : "";
      if (!wanted.empty() && lower(zone) != wanted && lower(zone_name) != wanted) return;
      zones.emplace(zone, zone_name);
    }
    std::string_view v = row[layout.value_col];
    double value = trim(v).empty() ? kUnknown : parse_value(v, source, line_no, value_name);
    points.push_back({parse_time(row[layout.time_col], source, line_no), value, line_no});
  };
  if (!layout.has_header) {
    row.assign(fields.begin(), fields.end());
    handle_row(header_line);
  }
  while (reader.next(line)) {
    if (trim(line).empty()) continue;
    if (!detail::split_csv_views(line, row, storage))
      fail(source, reader.number(), "unterminated quote");
    handle_row(reader.number());
  }
  std::string name = std::filesystem::path(source).stem().string();
  if (layout.zone_col >= 0) {
    if (zones.size() > 1) {
      std::set<std::string> ids;
      for (auto& [id, zone_name] : zones) ids.insert(id);
      throw Error(source + ": holds several zones (" + quoted_list(ids) +
                  "); choose one with a location");
    }
    if (zones.empty() && !wanted.empty())
      throw Error(source + ": no rows for zone '" + options.location + "'");
    if (!zones.empty()) name = zones.begin()->first;
  }
  return build_grid(std::move(points), name, source, options);
}

// ---- Carbon Aware SDK JSON -------------------------------------------------------------

// Line of every top-level array element's opening brace, so errors can name a line even
// though the JSON library does not keep positions.
std::vector<std::size_t> element_lines(std::string_view text) {
  std::vector<std::size_t> lines;
  std::size_t line = 1;
  int depth = 0, array_depth = -1;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (c == '\n') ++line;
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (c == '[' && array_depth < 0) array_depth = depth + 1;
      if (c == '{' && depth == array_depth) lines.push_back(line);
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return lines;
}

const nlohmann::json* find_key(const nlohmann::json& object, std::string_view key) {
  for (auto it = object.begin(); it != object.end(); ++it)
    if (detail::iequals(it.key(), key)) return &it.value();
  return nullptr;
}

// TimeSpan text "hh:mm:ss", "d.hh:mm:ss" (optionally with fractional seconds), or a number
// of minutes (the SDK's forecast points give `duration` in minutes).
std::optional<chr::seconds> parse_duration(const nlohmann::json& j) {
  if (j.is_number()) {
    double minutes = j.get<double>();
    if (!(minutes >= 0) || minutes > 1e9) return std::nullopt;
    return chr::seconds(static_cast<long>(std::llround(minutes * 60)));
  }
  if (!j.is_string()) return std::nullopt;
  std::string s = j.get<std::string>();
  long days = 0;
  auto dot = s.find('.');
  auto colon = s.find(':');
  if (dot != std::string::npos && dot < colon) {
    auto d = detail::parse_double(s.substr(0, dot));
    if (!d) return std::nullopt;
    days = static_cast<long>(*d);
    s = s.substr(dot + 1);
  }
  int h = 0, m = 0, sec = 0;
  char extra = 0;
  if (std::sscanf(s.c_str(), "%d:%d:%d%c", &h, &m, &sec, &extra) < 3 ||
      (extra != 0 && extra != '.') || h < 0 || m < 0 || m > 59 || sec < 0 || sec > 59)
    return std::nullopt;
  return chr::seconds(days * 86400 + h * 3600L + m * 60L + sec);
}

IntensitySeries parse_carbon_aware_json(std::string_view text, const std::string& source,
                                        const SeriesOptions& options) {
  auto line_at = [&](std::size_t byte) {
    return 1 + static_cast<std::size_t>(
                   std::count(text.begin(), text.begin() + std::min(byte, text.size()), '\n'));
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    auto pos = what.find("parse error");
    fail(source, line_at(e.byte),
         "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos)));
  } catch (const nlohmann::json::out_of_range& e) {
    // A number beyond a double's range: the library quotes it but says not where it is.
    const std::string what = e.what();
    const auto open = what.find('\''), close = what.rfind('\'');
    const std::string number = open < close ? what.substr(open + 1, close - open - 1) : "";
    fail(source, line_at(number.empty() ? 0 : text.find(number)),
         "number " + number + " is out of range");
  }
  const nlohmann::json* array = &doc;
  if (doc.is_object()) array = find_key(doc, "emissions");
  if (!array || !array->is_array())
    fail(source, 1,
         "expected a JSON array of {location, time, rating, duration} (or {\"emissions\": "
         "[...]})");
  auto lines = element_lines(text);
  std::vector<Point> points;
  std::set<std::string> locations;
  std::string wanted = lower(options.location);
  for (std::size_t i = 0; i < array->size(); ++i) {
    const auto& e = (*array)[i];
    std::size_t line = i < lines.size() ? lines[i] : 1;
    if (!e.is_object()) fail(source, line, "element " + std::to_string(i) + " is not an object");
    const auto* time = find_key(e, "time");
    if (!time) time = find_key(e, "timestamp");
    const auto* rating = find_key(e, "rating");
    if (!rating) rating = find_key(e, "value");
    const auto* location = find_key(e, "location");
    const auto* duration = find_key(e, "duration");
    if (!time || !time->is_string())
      fail(source, line, "element " + std::to_string(i) + ": missing string 'time'");
    if (!rating || !(rating->is_number() || rating->is_null()))
      fail(source, line, "element " + std::to_string(i) + ": missing numeric 'rating'");
    std::string loc = location && location->is_string() ? location->get<std::string>() : "";
    if (!wanted.empty() && lower(loc) != wanted) continue;
    locations.insert(loc);
    Point p{parse_time(time->get<std::string>(), source, line),
            rating->is_null() ? kUnknown : rating->get<double>(), line};
    if (!rating->is_null())
      check_intensity(p.value, rating->dump(), source, line,
                      "element " + std::to_string(i) + ": rating");
    if (duration && !duration->is_null()) {
      auto d = parse_duration(*duration);
      if (!d) fail(source, line, "element " + std::to_string(i) + ": invalid duration");
      p.duration = *d;
    }
    points.push_back(p);
  }
  if (locations.size() > 1)
    throw Error(source + ": holds several locations (" + quoted_list(locations) +
                "); choose one with a location");
  if (points.empty() && !wanted.empty())
    throw Error(source + ": no entries for location '" + options.location + "'");
  std::string name = locations.empty() || locations.begin()->empty()
                         ? std::filesystem::path(source).stem().string()
                         : *locations.begin();
  return build_grid(std::move(points), name, source, options);
}

}  // namespace

IntensitySeries parse_intensity_series(std::string_view text, const std::string& source,
                                       const SeriesOptions& options) {
  SeriesFormat format = options.format;
  if (format == SeriesFormat::Auto) {
    std::string ext = lower(std::filesystem::path(source).extension().string());
    std::string_view head = trim(text);
    if (ext == ".json" || (!head.empty() && (head.front() == '[' || head.front() == '{')))
      format = SeriesFormat::CarbonAwareJson;
  }
  if (format == SeriesFormat::CarbonAwareJson)
    return parse_carbon_aware_json(text, source, options);
  return parse_csv(text, source, options);
}

namespace {
// One fread of the whole file: a year-long series is ~1 MB and read_file_text's
// character-by-character stream copy was the largest cost of `verdant schedule`.
std::string read_series_file(const std::filesystem::path& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get())) throw Error(path.string() + ": read failed");
  return text;
}
}  // namespace

IntensitySeries load_intensity_series(const std::filesystem::path& path,
                                      const SeriesOptions& options) {
  if (std::filesystem::is_directory(path)) throw Error(path.string() + ": is a directory");
  return parse_intensity_series(read_series_file(path), path.string(), options);
}

}  // namespace verdant::energy
