// Best-window search: prefix sums per zone, exact breakpoints, O(1) per candidate.
#include "verdant/schedule/window.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>

#include "verdant/core/error.hpp"

namespace verdant::schedule {

namespace chr = std::chrono;
using energy::format_utc_timestamp;

IntensityIntegral::IntensityIntegral(const energy::IntensitySeries& series)
    : series_(&series), prefix_(series.size() + 1, 0.0), unknown_(series.size() + 1, 0) {
  const double step = static_cast<double>(series.step().count());
  for (std::size_t i = 0; i < series.size(); ++i) {
    const bool known = series.known(i);
    prefix_[i + 1] = prefix_[i] + (known ? series.value(i) * step : 0.0);
    unknown_[i + 1] = unknown_[i] + (known ? 0 : 1);
  }
}

std::optional<double> IntensityIntegral::integral(UtcSeconds a, UtcSeconds b) const {
  const auto& s = *series_;
  if (b < a || a < s.start() || b > s.end()) return std::nullopt;
  if (a == b) return 0.0;
  const auto step = s.step();
  const std::size_t ia = static_cast<std::size_t>((a - s.start()) / step);
  const std::size_t ib = static_cast<std::size_t>((b - s.start()) / step);
  const auto frac_a = (a - s.start()) % step;
  const auto frac_b = (b - s.start()) % step;
  // Slots touched: ia .. ib (ib only if b is inside it).
  const std::size_t last = frac_b.count() > 0 ? ib + 1 : ib;
  if (unknown_[last] - unknown_[ia] != 0) return std::nullopt;
  double at_b =
      prefix_[ib] + (frac_b.count() > 0 ? s.value(ib) * static_cast<double>(frac_b.count()) : 0.0);
  double at_a =
      prefix_[ia] + (frac_a.count() > 0 ? s.value(ia) * static_cast<double>(frac_a.count()) : 0.0);
  return at_b - at_a;
}

std::optional<double> IntensityIntegral::mean(UtcSeconds a, UtcSeconds b) const {
  if (b <= a) return std::nullopt;
  auto i = integral(a, b);
  if (!i) return std::nullopt;
  return *i / static_cast<double>((b - a).count());
}

std::vector<UtcSeconds> candidate_starts(const energy::IntensitySeries& series,
                                         const WindowRequest& request) {
  const auto d = request.job.duration;
  const UtcSeconds first = request.earliest_start;
  const UtcSeconds last = request.latest_end - d;
  std::vector<UtcSeconds> out;
  if (last < first) return out;
  const auto step = series.step();
  auto boundaries_in = [&](UtcSeconds lo, UtcSeconds hi, chr::seconds shift) {
    // Slot boundaries b with lo <= b <= hi, emitted as b - shift.
    auto k0 = (lo - series.start()) / step;
    if (series.start() + step * k0 < lo) ++k0;
    if (lo < series.start()) k0 = 0;
    std::vector<UtcSeconds> v;
    for (auto k = k0;; ++k) {
      UtcSeconds b = series.start() + step * k;
      if (b > hi) break;
      v.push_back(b - shift);
    }
    return v;
  };
  auto starts = boundaries_in(first, last, chr::seconds(0));
  auto ends = boundaries_in(first + d, last + d, d);
  out.reserve(starts.size() + ends.size() + 2);
  out.push_back(first);
  std::merge(starts.begin(), starts.end(), ends.begin(), ends.end(), std::back_inserter(out));
  out.push_back(last);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

std::string range_text(UtcSeconds a, UtcSeconds b) {
  return format_utc_timestamp(a) + " to " + format_utc_timestamp(b);
}

bool overlaps(const Candidate& x, const Candidate& y, chr::seconds d) {
  return x.zone == y.zone && x.start < y.start + d && y.start < x.start + d;
}

}  // namespace

WindowResult find_best_window(std::span<const IntensityIntegral* const> zones,
                              const WindowRequest& request) {
  const auto d = request.job.duration;
  if (zones.empty()) throw Error("no zone to schedule in");
  if (d.count() <= 0) throw Error("the job's duration must be positive");
  if (!(request.job.energy_kwh >= 0) || !std::isfinite(request.job.energy_kwh))
    throw Error("the job's energy must be a finite number >= 0");
  if (request.latest_end - request.earliest_start < d)
    throw Error("window " + range_text(request.earliest_start, request.latest_end) + " (" +
                format_duration(
                    chr::duration_cast<chr::seconds>(request.latest_end - request.earliest_start)) +
                ") is shorter than the job (" + format_duration(d) + ")");
  for (const auto* z : zones) {
    const auto& s = z->series();
    if (s.start() > request.earliest_start || s.end() < request.latest_end)
      throw Error(s.source() + ": series covers " + range_text(s.start(), s.end()) +
                  ", not the whole window " +
                  range_text(request.earliest_start, request.latest_end));
  }
  const double seconds = static_cast<double>(d.count());
  WindowResult result;
  std::vector<Candidate> all;
  for (std::size_t zi = 0; zi < zones.size(); ++zi) {
    const auto& s = zones[zi]->series();
    for (UtcSeconds start : candidate_starts(s, request)) {
      ++result.evaluated;
      auto integral = zones[zi]->integral(start, start + d);
      if (!integral) {
        ++result.skipped_for_gaps;
        continue;
      }
      Candidate c{zi, s.name(), start, request.job.energy_kwh * *integral / seconds,
                  *integral / seconds};
      if (zi == 0 && start == request.earliest_start) result.now = c;
      all.push_back(std::move(c));
    }
  }
  if (all.empty())
    throw Error(
        "every start in the window " + range_text(request.earliest_start, request.latest_end) +
        " runs into a gap in the series (" + zones[0]->series().source() + "; see the gap rule)");
  // Best first; ties go to the earlier start, then the earlier zone.
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    if (a.mean_intensity != b.mean_intensity) return a.mean_intensity < b.mean_intensity;
    if (a.start != b.start) return a.start < b.start;
    return a.zone < b.zone;
  });
  result.best = all.front();
  std::vector<const Candidate*> chosen{&all.front()};
  for (std::size_t i = 1; i < all.size() && result.runner_ups.size() < request.runner_ups; ++i) {
    bool clash = std::any_of(chosen.begin(), chosen.end(),
                             [&](const Candidate* c) { return overlaps(*c, all[i], d); });
    if (clash) continue;
    chosen.push_back(&all[i]);
    result.runner_ups.push_back(all[i]);
  }
  if (result.now && result.now->grams > 0)
    result.saving_percent = (result.now->grams - result.best.grams) / result.now->grams * 100;
  return result;
}

WindowResult find_best_window(std::span<const energy::IntensitySeries* const> zones,
                              const WindowRequest& request) {
  std::vector<IntensityIntegral> integrals;
  integrals.reserve(zones.size());
  for (const auto* s : zones) integrals.emplace_back(*s);
  std::vector<const IntensityIntegral*> ptrs;
  for (const auto& i : integrals) ptrs.push_back(&i);
  return find_best_window(std::span<const IntensityIntegral* const>(ptrs), request);
}

std::optional<chr::seconds> parse_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  text.remove_prefix(i);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  long double total = 0;
  std::size_t p = 0;
  bool any = false;
  while (p < text.size()) {
    std::size_t q = p;
    while (q < text.size() && (std::isdigit(static_cast<unsigned char>(text[q])) || text[q] == '.'))
      ++q;
    if (q == p) return std::nullopt;
    long double number = 0;
    try {
      number = std::stold(std::string(text.substr(p, q - p)));
    } catch (...) {
      return std::nullopt;
    }
    long double unit = 1;
    if (q < text.size()) {
      switch (text[q]) {
        case 'd':
          unit = 86400;
          break;
        case 'h':
          unit = 3600;
          break;
        case 'm':
          unit = 60;
          break;
        case 's':
          unit = 1;
          break;
        default:
          return std::nullopt;
      }
      ++q;
    } else if (any) {
      return std::nullopt;  // "1h30" is ambiguous
    }
    total += number * unit;
    any = true;
    p = q;
  }
  if (total > 1e11L) return std::nullopt;
  return chr::seconds(static_cast<long>(std::llround(static_cast<double>(total))));
}

std::string format_duration(chr::seconds d) {
  long s = d.count();
  std::string out = s < 0 ? "-" : "";
  s = std::labs(s);
  long days = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (days) out += std::to_string(days) + "d";
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (sec || out.empty() || out == "-") out += std::to_string(sec) + "s";
  return out;
}

}  // namespace verdant::schedule
