#pragma once
// Energy meters: each one reports cumulative joules per domain since it was created, and
// says whether its figures are measured (hardware counters) or estimated (and from what).
#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/energy/power_model.hpp"

namespace verdant::energy {

struct MachineCpuTimes;  // procstat.hpp

enum class Domain : int { cpu = 0, dram = 1, gpu = 2 };
inline constexpr int kDomainCount = 3;
inline constexpr std::array<Domain, kDomainCount> kAllDomains = {Domain::cpu, Domain::dram,
                                                                 Domain::gpu};
const char* domain_name(Domain d);

// Joules per domain.
struct Joules {
  std::array<double, kDomainCount> value{};
  double& operator[](Domain d) { return value[static_cast<int>(d)]; }
  double operator[](Domain d) const { return value[static_cast<int>(d)]; }
  double total() const { return value[0] + value[1] + value[2]; }
  Joules& operator+=(const Joules& o) {
    for (int i = 0; i < kDomainCount; ++i) value[i] += o.value[i];
    return *this;
  }
  friend Joules operator-(Joules a, const Joules& b) {
    for (int i = 0; i < kDomainCount; ++i) a.value[i] -= b.value[i];
    return a;
  }
};

class Meter {
 public:
  virtual ~Meter() = default;
  // Cumulative joules since construction, whole machine. Stateful (integrates power or
  // corrects counter wraparound), so call it at least every few seconds; not thread-safe.
  virtual Joules read() = 0;
  // Short name: "rapl", "nvml", "estimate".
  virtual std::string name() const = 0;
  virtual bool measured() const = 0;
  // Which domains this meter covers.
  virtual std::vector<Domain> domains() const = 0;
  // Human label, e.g. "measured (rapl: 2 packages + dram)" or "estimated (vCPU model, ...)".
  virtual std::string source() const = 0;
  // The label for one domain (a meter may model its domains differently).
  virtual std::string source(Domain) const { return source(); }
  // Names of the devices measured (GPU models for NVML, the CPU model for the estimate).
  virtual std::vector<std::string> device_names() const { return {}; }
  // Per-device cumulative joules as of the last read(), for meters that see devices one by
  // one (NVML: one entry per GPU tracked, by its NVML index); empty otherwise.
  struct DeviceJoules {
    int index = 0;
    double joules = 0;
  };
  virtual std::vector<DeviceJoules> device_joules() const { return {}; }
  // For a meter that reads <proc_root>/stat at every read() (the estimate): that reading, so
  // a tracker on the same proc root need not read the file a second time per sample.
  virtual const MachineCpuTimes* machine_cpu(const std::filesystem::path& /*proc_root*/) const {
    return nullptr;
  }
  // The devices' mean utilisation (0..1) at the last read(), where the meter reads one
  // (NVML's GPU utilisation); nullopt otherwise.
  virtual std::optional<double> utilization() const { return std::nullopt; }
  // Warnings about the model behind an estimate (e.g. a fit made on another CPU).
  virtual std::vector<std::string> warnings() const { return {}; }
};

// ---- RAPL through the powercap sysfs tree ------------------------------------------------
// Reads <root>/intel-rapl:N (packages) and intel-rapl:N:M named "dram" (also amd-rapl:*).
// Core/uncore sub-zones are part of the package and psys overlaps it, so both are skipped.
// Throws verdant::Error naming the first unreadable file when no full set can be read.
std::unique_ptr<Meter> make_rapl_meter(const std::filesystem::path& powercap_root);

// ---- NVML, loaded at run time --------------------------------------------------------------
// Throws verdant::Error (one line: library or call that failed) when NVML cannot be used.
// Uses nvmlDeviceGetTotalEnergyConsumption where the GPU supports it, otherwise samples
// nvmlDeviceGetPowerUsage at each read() and integrates (trapezoids).
// `gpu_ids`: the NVML indices to track (empty: every GPU). An index NVML does not know ->
// SettingError naming gpu_ids.
std::unique_ptr<Meter> make_nvml_meter(const std::string& library = "libnvidia-ml.so.1",
                                       const std::vector<int>& gpu_ids = {});

// ---- Estimate from a power model and utilisation -------------------------------------------
struct TdpMatch {
  double watts = 0;  // 0 when unknown
  bool known = false;
  std::string table_name;  // the matching table entry, empty when unknown
  int skipped_rows = 0;    // rows whose TDP is not a number (the bundled table has 4)
};
// Matches a /proc/cpuinfo model name against cpu_tdp.csv (Name,TDP): case, "(R)", "(TM)",
// "CPU", "Processor", "N-Core", "@ x GHz" are ignored; the longest table entry whose words
// all occur in the model name and that contains a model number wins. A malformed table
// (header, missing field, empty TDP) -> verdant::Error with file:line; a row whose TDP is
// not a number ("27.29.5" in the bundled table) is skipped and counted.
TdpMatch match_cpu_tdp(const std::string& model_name, const std::filesystem::path& tdp_csv);

// What the estimate reads: the CPU model's options (power_model.hpp) and the memory model.
struct EstimateOptions : PowerModelOptions {
  double ram_watts_per_gb = kRamWattsPerGb;
};
// CPU power = cpu_power_model(options).watts(machine utilisation from /proc/stat); DRAM
// power = ram_watts_per_gb x the memory in use (MemTotal - MemAvailable). Integrated between
// read() calls over the kernel's own time accounting.
std::unique_ptr<Meter> make_estimate_meter(const EstimateOptions& options = {});

// ---- Selection -----------------------------------------------------------------------------
struct MeterOptions {
  std::filesystem::path powercap_root = "/sys/class/powercap";
  std::string nvml_library = "libnvidia-ml.so.1";
  bool use_nvml = true;
  std::vector<int> gpu_ids;  // NVML indices to track; empty: every GPU
  bool force_estimate = false;
  EstimateOptions estimate;
};
struct MeterSet {
  std::vector<std::unique_ptr<Meter>> meters;
  std::vector<std::string> warnings;  // one line each, e.g. why RAPL was not used
};
// RAPL if readable, else the estimate (with a warning saying why); NVML added if a GPU is
// found. A power-model file that cannot be used -> verdant::SettingError("power_model").
MeterSet select_meters(const MeterOptions& options = {});

}  // namespace verdant::energy
