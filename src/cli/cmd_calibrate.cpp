// `verdant calibrate`: a short fixed workload at a few load levels, RAPL read at each, and
// this machine's per-CPU Min and Max fitted and saved, for --power-model on a twin machine
// whose counters cannot be read.
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "options.hpp"
#include "verdant/energy/calibrate.hpp"

namespace verdant::cli {
namespace {

struct CalibrateArgs {
  energy::CalibrationOptions options;
  std::vector<double> load_percent = {0, 25, 50, 75, 100};
  std::filesystem::path out = "power-model.json";
};

int run_calibrate(CalibrateArgs& a) {
  a.options.loads.clear();
  for (double p : a.load_percent) a.options.loads.push_back(p / 100.0);
  a.options.log = [](const std::string& line) { print_line(line); };
  const energy::PowerModelFit fit = energy::calibrate(a.options);
  energy::save_power_model(a.out, fit);
  char line[256];
  std::snprintf(line, sizeof line,
                "fit: %d CPUs x (%.3f + %.3f u) W, i.e. Min %.3f W and Max %.3f W per CPU; "
                "largest residual %.1f%% (measured with %s)",
                fit.cpus, fit.idle_watts, fit.full_watts - fit.idle_watts, fit.idle_watts,
                fit.full_watts, fit.max_residual * 100, fit.counter.c_str());
  print_line(line);
  print_line("wrote " + a.out.string() +
             "; on a twin machine without counter access: --power-model " + a.out.string());
  return 0;
}

const bool registered = register_command(
    {"calibrate", "Fit this machine's CPU power model against RAPL, for twin machines",
     [](CLI::App& sub) -> Runner {
       auto a = std::make_shared<CalibrateArgs>();
       sub.add_option("--out", a->out, "Where the power model goes (JSON)")->capture_default_str();
       sub.add_option("--loads", a->load_percent, "Load levels in percent (e.g. 0,50,100)")
           ->delimiter(',')
           ->check(CLI::Range(0.0, 100.0))
           ->capture_default_str();
       sub.add_option("--seconds-per-level", a->options.seconds_per_level,
                      "How long each load level runs")
           ->check(positive())
           ->capture_default_str();
       add_threads_option(sub, a->options.threads);
       sub.add_option("--powercap", a->options.powercap_root, "The powercap sysfs tree")
           ->capture_default_str();
       return [a] { return run_calibrate(*a); };
     }});

}  // namespace
}  // namespace verdant::cli
