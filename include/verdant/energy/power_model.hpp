#pragma once
// Power models for machines whose counters cannot be read: which one applies is decided from
// what the machine says about itself (/proc/cpuinfo), and every model names itself, its
// inputs and a plausible range, so that an estimate can be defended.
//
// The CPU model, first match wins (cpu_power_model()):
//   1. a fit of this machine's kind (`verdant calibrate`, then --power-model FILE):
//      per CPU Min + u x (Max - Min), Min and Max fitted against RAPL;
//   2. a TDP given by the user (--cpu-tdp, VERDANT_CPU_TDP_W): the TDP load curve below;
//   3. a VM (the CPU flags show `hypervisor`, or fewer CPUs are visible than the sockets
//      have): Cloud Carbon Footprint's vCPU model, per vCPU Min + u x (Max - Min), Min and
//      Max of the microarchitecture found from the vendor, family and model. Without a row
//      for it, the closest generation's row stands in, or the mean of the provider's rows
//      when the microarchitecture is not recognised; the label says which;
//   4. bare metal with the CPU in cpu_tdp.csv: sockets x TDP x (r + (1 - r) u), a linear
//      curve whose idle share r is Min / Max of the microarchitecture's CCF rows (measured
//      with SPECpower), or of all rows when it is not recognised;
//   5. otherwise CodeCarbon 3's default for an unknown CPU: 4 W per thread, on its load curve
//      0.1 + 0.9 u^3 (cpu_load mode, tracking the machine).
// u is the machine's CPU utilisation over each interval (/proc/stat). The range is the power
// per CPU that the model allows from idle to full load, over every row it draws on.
//
// Memory: kRamWattsPerGb x the memory in use (MemTotal - MemAvailable), Cloud Carbon
// Footprint's memory coefficient (0.000392 kWh per GB-hour); a process is charged for its
// share of that memory (see tracker.hpp).
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verdant/energy/procstat.hpp"

namespace verdant::energy {

// Cloud Carbon Footprint's memory coefficient: 0.000392 kWh per GB-hour = 0.392 W per GB.
inline constexpr double kRamWattsPerGb = 0.392;
// CodeCarbon 3's CPU power for a model it does not know, per hardware thread.
inline constexpr double kUnknownCpuWattsPerThread = 4.0;

// ---- Cloud Carbon Footprint coefficients (data/hardware/ccf/) ------------------------------
struct CcfCoefficient {
  std::string provider;      // "aws", "azure", "gcp": from coefficients-<provider>-use.csv
  std::string architecture;  // "EPYC 3rd Gen", "Cascade Lake", "Sky Lake", ...
  double min_watts = 0;      // per vCPU at idle
  double max_watts = 0;      // per vCPU at full load
};
// Every coefficients-<provider>-use.csv in `dir` (",Architecture,Min Watts,Max Watts,GB/Chip"),
// sorted by provider. A malformed file -> verdant::Error "<file>:<line>: ...".
std::vector<CcfCoefficient> load_ccf_coefficients(const std::filesystem::path& dir);

// The microarchitecture of a CPU and the CCF rows that may describe it, best first: its own
// generation when CCF has a row for it (`exact`), then the closest generations.
struct Microarchitecture {
  std::string name;  // "Zen 3", "Cascade Lake", "Graviton2"; empty when not recognised
  std::vector<std::string> rows;
  bool exact = false;  // rows.front() is this microarchitecture's own
};
// From vendor, family, model and stepping (x86), or implementer and part (ARM).
Microarchitecture identify_microarchitecture(const CpuInfo& cpu);

// "aws" for "aws:us-east-1" (the part before ':', lower case); "" for "".
std::string cloud_provider_of(std::string_view cloud_region);

// ---- a fit made by `verdant calibrate` ---------------------------------------------------
struct CalibrationPoint {
  double load = 0;         // the workload's duty cycle, 0..1
  double utilisation = 0;  // the machine's CPU utilisation it produced (/proc/stat)
  double seconds = 0;
  double watts = 0;  // RAPL package power over the level
};
struct PowerModelFit {
  std::string cpu_model;    // where it was fitted ("model name")
  int cpus = 0;             // logical CPUs there
  double idle_watts = 0;    // Min, per CPU
  double full_watts = 0;    // Max, per CPU
  double max_residual = 0;  // largest |fit - measured| / measured over the levels
  std::string counter;      // what was read, e.g. "rapl: 1 package"
  std::string fitted_at;    // UTC, "2025-01-31T12:00:00Z"
  std::vector<CalibrationPoint> points;
  std::string origin;  // the file it was read from (set by load_power_model)
};
// JSON (the file `verdant calibrate` writes), written atomically.
std::string power_model_json(const PowerModelFit& fit);
void save_power_model(const std::filesystem::path& path, const PowerModelFit& fit);
// A missing field, a value of the wrong type, or Min/Max that are not 0 <= Min <= Max ->
// verdant::Error "<file>: ..." naming the field.
PowerModelFit load_power_model(const std::filesystem::path& path);
// load_power_model() for a setting: any defect -> verdant::SettingError("power_model",
// "power_model FILE: ..."), so that a front end names its flag. Every setting of a power
// model (flags, PowerModelOptions::power_model) goes through here.
PowerModelFit validate_power_model(const std::filesystem::path& path);

// ---- the chosen CPU model ------------------------------------------------------------------
struct CpuPowerModel {
  std::string kind;          // "vCPU model", "TDP load curve", "CodeCarbon 3 default", "calibrated"
  std::string inputs;        // what it was chosen from, in words
  std::string unit = "CPU";  // one CPU as the model counts it: "vCPU", "thread", "CPU"
  int cpus = 1;
  double idle_watts = 0;  // per CPU at u = 0
  double full_watts = 0;  // per CPU at u = 1
  double exponent = 1;    // the load curve: idle + (full - idle) x u^exponent
  double range_low = 0;   // per CPU, watts
  double range_high = 0;
  std::vector<std::string> warnings;  // e.g. a fit made on another CPU model

  // Power of all `cpus` at machine utilisation u (clamped to 0..1).
  double watts(double utilisation) const;
  // "vCPU model, EPYC 3rd Gen coefficients (CCF azure, gcp) for AMD family 25 model 1
  // (Zen 3): 2 vCPUs x (0.45 + 1.50 u) W, range 0.45-2.02 W per vCPU".
  std::string describe() const;
};

struct PowerModelOptions {
  std::filesystem::path proc_root = "/proc";
  std::filesystem::path tdp_csv;      // empty: <data_dir>/hardware/cpu_tdp.csv
  std::filesystem::path ccf_dir;      // empty: <data_dir>/hardware/ccf
  std::optional<double> cpu_tdp_w;    // given TDP (flag); VERDANT_CPU_TDP_W is read when unset
  std::string cloud_provider;         // "aws", "azure", "gcp": that provider's rows; "": all
  std::filesystem::path power_model;  // a `verdant calibrate` file; empty: none
};
// Chooses and builds the CPU model (rules at the top). Unreadable data tables or a bad
// power-model file -> verdant::Error; a bad TDP -> verdant::SettingError("cpu_tdp").
CpuPowerModel cpu_power_model(const PowerModelOptions& options = {});

}  // namespace verdant::energy
