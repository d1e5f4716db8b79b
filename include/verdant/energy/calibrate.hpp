#pragma once
// Calibration where a counter exists (`verdant calibrate`): a short fixed workload at a few
// load levels, RAPL read at each, and a least-squares fit of this machine's per-CPU Min and
// Max (power = cpus x (Min + u x (Max - Min)), u the machine's CPU utilisation). The fit is
// saved (save_power_model) so that a twin machine without counter access, e.g. the same
// instance type, estimates with it (--power-model FILE; power_model.hpp).
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "verdant/energy/power_model.hpp"

namespace verdant::energy {

struct CalibrationOptions {
  std::filesystem::path powercap_root = "/sys/class/powercap";
  std::filesystem::path proc_root = "/proc";
  std::vector<double> loads = {0.0, 0.25, 0.5, 0.75, 1.0};  // duty cycles, 0..1
  double seconds_per_level = 4.0;
  int threads = 0;  // 0: one per visible CPU
  // Runs `load` (0..1) for `seconds` on `threads` threads. Default: each thread spins on
  // arithmetic for load x 10 ms of every 10 ms and sleeps the rest. Tests replace it.
  std::function<void(double load, double seconds, int threads)> workload;
  std::function<void(const std::string&)> log;  // one line per level; null: silent
};

// Runs the levels and fits. Throws verdant::Error when RAPL cannot be read (the reason), and
// verdant::SettingError for bad options ("loads", "seconds_per_level", "threads"); a fit
// that cannot be made (the utilisation did not vary, power did not rise with load) ->
// verdant::Error saying so.
PowerModelFit calibrate(const CalibrationOptions& options = {});

// The least-squares line through (utilisation, watts), as per-CPU Min and Max for `cpus`.
// Exposed for tests; calibrate() uses it.
PowerModelFit fit_power_model(const std::vector<CalibrationPoint>& points, int cpus);

}  // namespace verdant::energy
