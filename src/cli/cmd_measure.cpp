// `verdant measure [options] -- CMD ARGS...`: runs any command under the energy tracker,
// passes its exit code through (signal N -> 128+N, cannot start -> 127, like a shell) and
// reports duration, energy (process tree and machine), carbon, cost and every figure's
// source; appends emissions.csv and energy.jsonl to --out.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "options.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/measure.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/power_model.hpp"
#include "verdant/energy/sinks.hpp"
#include "verdant/energy/tracker.hpp"

namespace verdant::cli {
namespace {

struct MeasureArgs {
  std::string country, cloud, grid_zone, series;
  std::optional<double> pue, wue;
  double interval_s = 1.0;
  std::optional<double> price;
  std::string currency = "USD";
  std::string out = ".";
  std::string project = "verdant";
  std::string experiment;
  std::optional<double> cpu_tdp;
  std::filesystem::path power_model;
  bool estimate_only = false;
  std::string prometheus_file;
  std::optional<int> metrics_port;
  std::vector<std::string> command;
};

// CodeCarbon records the Python version of what it tracks: asked of the interpreter itself,
// before the measurement, when the command is one ("python3", "/usr/bin/python3.11").
std::string python_version_of(const std::string& program) {
  const std::string base = std::filesystem::path(program).filename().string();
  if (base.rfind("python", 0) != 0 ||
      base.find_first_not_of("0123456789.", 6) != std::string::npos ||
      program.find('\'') != std::string::npos)
    return {};
  const std::string cmd =
      "'" + program + "' -c 'import platform; print(platform.python_version())' 2>/dev/null";
  std::string version;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char line[64] = {0};
    if (std::fgets(line, sizeof line, p)) version = line;
    ::pclose(p);
  }
  while (!version.empty() && (version.back() == '\n' || version.back() == '\r')) version.pop_back();
  return version.find_first_not_of("0123456789.+") == std::string::npos ? version : "";
}

int run_measure(const MeasureArgs& a) {
  namespace en = verdant::energy;
  if (a.command.empty())
    throw UsageError("measure: no command given (use: verdant measure -- CMD ARGS...)");
  if (!(a.interval_s > 0)) throw UsageError("--interval: must be > 0 seconds");
  if (a.metrics_port && (*a.metrics_port < 0 || *a.metrics_port > 65535))
    throw UsageError("--metrics-port: must be 0..65535");

  // Cost settings first, so that nothing is created or printed before they are known good.
  if (a.pue) en::validate_pue(*a.pue);
  if (a.wue) en::validate_wue(*a.wue);
  if (a.price) en::validate_price(*a.price);
  if (!a.power_model.empty()) en::validate_power_model(a.power_model);

  en::LocationRequest loc;
  loc.country = a.country;
  loc.cloud = a.cloud;
  loc.grid_zone = a.grid_zone;
  loc.series_file = a.series;
  loc.pue = a.pue;
  loc.wue = a.wue;
  en::CarbonIntensity carbon = en::resolve_carbon_intensity(loc);

  // The outputs are checked before the command runs: a measurement cannot be taken again.
  const std::filesystem::path out(a.out);
  const char* flag = "--out";
  try {
    create_writable_folder(out);
    for (const char* name : {"emissions.csv", "energy.jsonl"}) check_writable_file(out / name);
    flag = "--prometheus-file";
    if (!a.prometheus_file.empty()) check_writable_file(a.prometheus_file);
  } catch (const Error& e) {
    throw UsageError(std::string(flag) + " " + e.what());
  }

  en::MeterOptions mo;
  mo.force_estimate = a.estimate_only;
  mo.estimate.cpu_tdp_w = a.cpu_tdp;
  mo.estimate.power_model = a.power_model;
  mo.estimate.cloud_provider = en::cloud_provider_of(a.cloud);
  en::MeterSet meters = en::select_meters(mo);
  for (auto& w : meters.warnings) std::fprintf(stderr, "verdant: warning: %s\n", w.c_str());

  en::TrackerOptions to;
  to.interval_s = a.interval_s;
  to.project_name = a.project;
  to.experiment_id = a.experiment;
  to.price_per_kwh = a.price;
  to.currency = a.currency;
  to.location = loc;
  to.python_version = python_version_of(a.command[0]);
  en::Tracker tracker(std::move(meters), std::move(carbon), to);

  std::unique_ptr<en::MetricsServer> server;
  if (a.metrics_port) {
    server = std::make_unique<en::MetricsServer>(
        [&tracker] {
          en::PhaseResult live = tracker.snapshot();
          return en::prometheus_text(std::span(&live, 1), tracker.run_info());
        },
        static_cast<std::uint16_t>(*a.metrics_port));
    std::fprintf(stderr, "verdant: metrics at http://127.0.0.1:%u/metrics\n", server->port());
  }

  tracker.start();
  en::CommandOutcome outcome = en::run_command(a.command);
  en::PhaseResult total = tracker.stop();
  server.reset();
  if (!outcome.started) {
    std::fprintf(stderr, "verdant: error: %s\n", outcome.error.c_str());
    return outcome.exit_code;  // 127, like a shell
  }

  std::string report =
      en::format_report(total, tracker.run_info(), {});  // warnings printed at start
  std::fprintf(stderr, "verdant measure: '%s' %s\n%s", a.command[0].c_str(),
               outcome.signal ? ("killed by signal " + std::to_string(outcome.signal)).c_str()
                              : ("exited with " + std::to_string(outcome.exit_code)).c_str(),
               report.c_str());

  std::string warn =
      en::append_emissions_csv(out / "emissions.csv", std::span(&total, 1), tracker.run_info());
  if (!warn.empty()) std::fprintf(stderr, "verdant: warning: %s\n", warn.c_str());
  en::append_energy_jsonl(out / "energy.jsonl", std::span(&total, 1), tracker.run_info());
  if (!a.prometheus_file.empty())
    en::write_prometheus_textfile(a.prometheus_file,
                                  en::prometheus_text(std::span(&total, 1), tracker.run_info()));
  std::fprintf(stderr, "wrote %s and %s\n", (out / "emissions.csv").c_str(),
               (out / "energy.jsonl").c_str());
  return outcome.exit_code;
}

const bool registered = register_command(
    {"measure", "Run a command and report its energy, carbon and cost",
     [](CLI::App& sub) -> Runner {
       auto a = std::make_shared<MeasureArgs>();
       sub.add_option("--country", a->country, "Grid location: ISO alpha-3 code or name (FRA)");
       sub.add_option("--cloud", a->cloud, "Grid location: cloud region (aws:us-east-1)");
       sub.add_option("--grid-zone", a->grid_zone,
                      "Grid location: bundled hourly zone (US-CISO) or a series file");
       sub.add_option("--series", a->series,
                      "Hourly intensity series file (EIA, Electricity Maps, CSV, JSON)");
       sub.add_option("--pue", a->pue, "Power usage effectiveness (default 1.0 or the region's)");
       sub.add_option("--wue", a->wue,
                      "Water usage effectiveness, litres per kWh, for water_consumed (default 0)");
       sub.add_option("--interval", a->interval_s, "Sampling interval in seconds (default 1)");
       sub.add_option("--price", a->price, "Electricity price per kWh (no default: no cost)");
       sub.add_option("--currency", a->currency, "Currency of --price (default USD)");
       sub.add_option("--out", a->out, "Folder for emissions.csv and energy.jsonl (default .)");
       sub.add_option("--project-name", a->project, "project_name in emissions.csv");
       sub.add_option("--experiment-id", a->experiment, "experiment_id in emissions.csv");
       sub.add_option("--cpu-tdp", a->cpu_tdp,
                      "CPU TDP in watts for the estimate (overrides the table)");
       add_energy_model_options(sub, a->power_model);
       sub.add_flag("--estimate", a->estimate_only, "Use the estimate even if RAPL is readable");
       sub.add_option("--prometheus-file", a->prometheus_file,
                      "Also write Prometheus text (node_exporter textfile collector)");
       sub.add_option("--metrics-port", a->metrics_port,
                      "Serve live /metrics on 127.0.0.1:PORT while the command runs (0: any)");
       sub.add_option("command", a->command, "-- CMD ARGS...")->required();
       return [a] { return run_measure(*a); };
     }});

}  // namespace
}  // namespace verdant::cli
