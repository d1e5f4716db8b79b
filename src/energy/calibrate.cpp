// `verdant calibrate`: load levels against RAPL and the linear fit of per-CPU Min and Max.
#include "verdant/energy/calibrate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <thread>

#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/procstat.hpp"

namespace verdant::energy {

namespace {

using Clock = std::chrono::steady_clock;

// Each thread is busy for `load` of every 10 ms period: short enough that the utilisation
// /proc/stat sees over a level is the duty cycle, long enough that sleeping is not all
// overhead.
void duty_cycle(double load, double seconds, int threads) {
  const auto period = std::chrono::milliseconds(10);
  const auto busy = std::chrono::duration_cast<Clock::duration>(period * load);
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  auto work = [&] {
    volatile double x = 1.0;
    for (auto start = Clock::now(); start < end; start += period) {
      while (Clock::now() < start + busy)
        for (int i = 0; i < 1000; ++i) x = x * 1.0000001 + 1e-9;
      std::this_thread::sleep_until(start + period);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

}  // namespace

PowerModelFit fit_power_model(const std::vector<CalibrationPoint>& points, int cpus) {
  if (points.size() < 2) throw Error("calibration needs at least 2 load levels to fit a line");
  if (cpus < 1) throw Error("calibration needs at least 1 CPU");
  double lo = points.front().utilisation, hi = lo, mu = 0, mw = 0;
  for (const auto& p : points) {
    lo = std::min(lo, p.utilisation);
    hi = std::max(hi, p.utilisation);
    mu += p.utilisation;
    mw += p.watts;
  }
  const double n = static_cast<double>(points.size());
  mu /= n;
  mw /= n;
  if (hi - lo < 0.1)
    throw Error(
        fmt("calibration: the CPU utilisation only ranged from %.1f%% to %.1f%% over the "
            "load levels, too little to fit (is other work loading this machine?)",
            lo * 100, hi * 100));
  double suu = 0, suw = 0;
  for (const auto& p : points) {
    suu += (p.utilisation - mu) * (p.utilisation - mu);
    suw += (p.utilisation - mu) * (p.watts - mw);
  }
  const double slope = suw / suu;
  const double intercept = mw - slope * mu;
  if (!(slope > 0))
    throw Error(
        fmt("calibration: the measured power did not rise with load (%.2f W per unit of "
            "utilisation): is the counter the CPU package's?",
            slope));
  PowerModelFit fit;
  fit.cpus = cpus;
  // A slightly negative intercept is noise: the idle power cannot be below zero.
  fit.idle_watts = std::max(0.0, intercept) / cpus;
  fit.full_watts = (intercept + slope) / cpus;
  for (const auto& p : points) {
    const double predicted =
        cpus * (fit.idle_watts + (fit.full_watts - fit.idle_watts) * p.utilisation);
    if (p.watts > 0)
      fit.max_residual = std::max(fit.max_residual, std::fabs(predicted - p.watts) / p.watts);
  }
  fit.points = points;
  return fit;
}

PowerModelFit calibrate(const CalibrationOptions& o) {
  if (o.loads.size() < 2)
    throw SettingError("loads", "loads needs at least 2 levels to fit a line");
  for (double l : o.loads)
    if (!(l >= 0 && l <= 1))
      throw SettingError("loads", fmt("loads must lie between 0 and 100%%, got %g%%", l * 100));
  if (!(o.seconds_per_level > 0) || !std::isfinite(o.seconds_per_level))
    throw SettingError("seconds_per_level", "seconds_per_level must be a positive number");
  if (o.threads < 0) throw SettingError("threads", "threads must not be negative");

  std::unique_ptr<Meter> rapl;
  try {
    rapl = make_rapl_meter(o.powercap_root);
  } catch (const Error& e) {
    throw Error(std::string("calibrate needs a readable RAPL counter: ") + e.what());
  }
  const CpuInfo cpu = read_cpuinfo(o.proc_root);
  const int cpus = std::max(1, cpu.logical_cpus);
  const int threads = o.threads > 0 ? o.threads : cpus;
  const auto workload = o.workload ? o.workload : duty_cycle;

  std::vector<CalibrationPoint> points;
  for (double load : o.loads) {
    const MachineCpuTimes t0 = read_machine_cpu(o.proc_root);
    const double e0 = rapl->read()[Domain::cpu];
    workload(load, o.seconds_per_level, threads);
    const double e1 = rapl->read()[Domain::cpu];
    const MachineCpuTimes t1 = read_machine_cpu(o.proc_root);
    // Time from the kernel's accounting, as the estimate itself measures it.
    const double elapsed = (t1.total_s - t0.total_s) / t1.cpus;
    if (!(elapsed > 0)) throw Error("calibration: no CPU time passed over a load level");
    CalibrationPoint p;
    p.load = load;
    p.seconds = elapsed;
    p.utilisation = std::clamp((t1.busy_s - t0.busy_s) / (t1.total_s - t0.total_s), 0.0, 1.0);
    p.watts = (e1 - e0) / elapsed;
    if (o.log)
      o.log(fmt("load %3.0f%%: CPU utilisation %5.1f%%, %.2f W over %.1f s", load * 100,
                p.utilisation * 100, p.watts, elapsed));
    points.push_back(p);
  }
  if (std::all_of(points.begin(), points.end(), [](const auto& p) { return p.watts <= 0; }))
    throw Error("calibration: the RAPL counter did not advance (" + o.powercap_root.string() + ")");
  PowerModelFit fit = fit_power_model(points, cpus);
  fit.cpu_model = cpu.model_name;
  std::string counter = rapl->source();  // "measured (rapl: 1 package)"
  if (auto open = counter.find('('); open != std::string::npos && counter.back() == ')')
    counter = counter.substr(open + 1, counter.size() - open - 2);
  fit.counter = counter;
  fit.fitted_at = utc_now();
  return fit;
}

}  // namespace verdant::energy
