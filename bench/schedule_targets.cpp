// Issue 6 targets from the real 2022 EIA data (data/carbon/grid-hourly-2022):
//  1. a 4-hour job that may start any time within 24 hours of submission, submitted every
//     hour of 2022: mean and median emission saving vs starting at once, per zone;
//  2. the saving when the job may also move to the best of the seven zones;
//  3. time to load a year-long series and answer a 24-hour window (what `verdant schedule`
//     does), and the search alone over a year-long window.
// Rules: the window is [submit, submit + 24 h + 4 h], cut at the end of 2022 (submissions in
// the last 4 hours are dropped: the job no longer fits). Submissions whose start-now run
// touches an unknown gap (PJM's 22 empty hours; see the gap rule) are counted and skipped.
// Usage: bench_schedule_targets [data dir] (default: the source tree's data/).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "timing.hpp"
#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/window.hpp"

using namespace verdant;
using namespace std::chrono;
using energy::UtcSeconds;

using verdant::bench::median;

namespace {

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir = argc > 1 ? std::filesystem::path(argv[1])
                                       : std::filesystem::path(VERDANT_SOURCE_DIR) / "data";
  dir /= "carbon/grid-hourly-2022";
  const char* names[] = {"US-AZPS", "US-CISO", "US-ERCO", "US-MISO",
                         "US-PJM",  "US-SOCO", "US-WAAT"};
  std::vector<energy::IntensitySeries> series;
  for (const char* n : names)
    series.push_back(energy::load_intensity_series(dir / (std::string(n) + ".csv")));
  std::vector<schedule::IntensityIntegral> integrals;
  for (const auto& s : series) integrals.emplace_back(s);
  std::vector<const schedule::IntensityIntegral*> all;
  for (const auto& i : integrals) all.push_back(&i);

  const auto job = hours(4);
  const auto within = hours(24);
  std::printf("4-hour job, may start within 24 h of submission, submitted every hour of 2022\n");
  std::printf("emissions are estimates from EIA hourly average intensity (avg_CI)\n\n");
  std::printf("%-8s %6s %7s | %-22s | %-22s\n", "", "", "", "same zone: saving %",
              "best of 7 zones: saving %");
  std::printf("%-8s %6s %7s | %10s %10s | %10s %10s\n", "zone", "subm.", "skipped", "mean",
              "median", "mean", "median");
  std::vector<double> pooled_time, pooled_space;
  for (std::size_t z = 0; z < series.size(); ++z) {
    const auto& s = series[z];
    std::vector<double> time_only, time_and_space;
    std::size_t skipped = 0, submissions = 0;
    for (UtcSeconds t = s.start(); t + job <= s.end(); t += hours(1)) {
      ++submissions;
      schedule::WindowRequest r;
      r.job = {job, 1.0};
      r.earliest_start = t;
      r.latest_end = std::min(s.end(), t + within + job);
      r.runner_ups = 0;
      const schedule::IntensityIntegral* own[] = {all[z]};
      auto now = all[z]->integral(t, t + job);
      if (!now) {
        ++skipped;
        continue;
      }
      auto here = schedule::find_best_window(own, r);
      // Home zone first, so "now" is measured in the home zone.
      std::vector<const schedule::IntensityIntegral*> order{all[z]};
      for (std::size_t k = 0; k < all.size(); ++k)
        if (k != z) order.push_back(all[k]);
      auto anywhere = schedule::find_best_window(order, r);
      time_only.push_back(here.saving_percent);
      time_and_space.push_back(anywhere.saving_percent);
    }
    pooled_time.insert(pooled_time.end(), time_only.begin(), time_only.end());
    pooled_space.insert(pooled_space.end(), time_and_space.begin(), time_and_space.end());
    std::printf("%-8s %6zu %7zu | %10.2f %10.2f | %10.2f %10.2f\n", s.name().c_str(), submissions,
                skipped, mean(time_only), median(time_only), mean(time_and_space),
                median(time_and_space));
  }
  std::printf("%-8s %6zu %7s | %10.2f %10.2f | %10.2f %10.2f\n", "all", pooled_time.size(), "",
              mean(pooled_time), median(pooled_time), mean(pooled_space), median(pooled_space));

  // Timing: load one year-long file and answer a 24-hour window (what the CLI does), and the
  // search alone over the whole year. Medians of repeated runs.
  auto time_ms = [](auto&& f, int reps) {
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      auto a = steady_clock::now();
      f();
      ms.push_back(duration<double, std::milli>(steady_clock::now() - a).count());
    }
    return median(ms);
  };
  const auto ciso = dir / "US-CISO.csv";
  const UtcSeconds submit = series[1].start() + hours(24 * 150 + 7);
  double load_and_answer = time_ms(
      [&] {
        auto s = energy::load_intensity_series(ciso);
        const energy::IntensitySeries* z[] = {&s};
        schedule::WindowRequest r{{job, 1.0}, submit, submit + within + job, 3};
        volatile double g = schedule::find_best_window(z, r).best.grams;
        (void)g;
      },
      21);
  double year_window = time_ms(
      [&] {
        const energy::IntensitySeries* z[] = {&series[1]};
        schedule::WindowRequest r{{job, 1.0}, series[1].start(), series[1].end(), 3};
        volatile double g = schedule::find_best_window(z, r).best.grams;
        (void)g;
      },
      21);
  double year_window_7 = time_ms(
      [&] {
        std::vector<const energy::IntensitySeries*> z;
        for (const auto& s : series) z.push_back(&s);
        schedule::WindowRequest r{{job, 1.0},
                                  series[1].start() + hours(24 * 90),
                                  series[1].start() + hours(24 * 90 + 28),
                                  3};
        volatile double g = schedule::find_best_window(z, r).best.grams;
        (void)g;
      },
      21);
  std::printf("\ntiming (median of 21, this machine, shared):\n");
  std::printf("  load US-CISO.csv (8760 h) + best 4h start within 24h: %8.2f ms\n",
              load_and_answer);
  std::printf("  search alone, 4h job, window = all of 2022 (1 zone):  %8.2f ms\n", year_window);
  std::printf("  search alone, 4h job, 24h window, 7 loaded zones:     %8.3f ms\n", year_window_7);
  return 0;
}
