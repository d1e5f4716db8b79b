#pragma once
// Where tracker results go: CodeCarbon-compatible emissions.csv, energy.jsonl (one record
// per phase), Prometheus text exposition (node_exporter textfile or a loopback /metrics).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "verdant/energy/tracker.hpp"

namespace verdant::energy {

// CodeCarbon 3.2's emissions.csv columns (38), in its order (EmissionsData in
// codecarbon/output_methods/emissions_data.py). Units: duration s, emissions kg CO2eq,
// emissions_rate kg/s, *_power W, *_energy and energy_consumed kWh, water_consumed L,
// ram_total_size and ram_used_gb GB (1024^3 bytes), *_utilization_percent %, wue L/kWh.
const std::vector<std::string>& codecarbon_columns();

// One CSV row (no newline) for a phase, in codecarbon_columns() order. The energy figures are
// the process tree's share (tracking_mode "process"), so ranks on one machine never add up
// to more than the machine; with RunInfo::tracking_mode "machine" they are the whole machine's
// where the phase reports it (else the share, and the row says "process"). The utilisation
// and memory-in-use figures are the machine's, as CodeCarbon's are. Empty:
// codecarbon_version (Verdant is not CodeCarbon), python_version unless the tracked program
// is Python, longitude and latitude (no network look-up), and gpu_utilization_percent when no
// GPU utilisation was read. Fields with commas or quotes are quoted.
std::string emissions_csv_row(const PhaseResult& phase, const RunInfo& info);
// Appends rows to `path` like CodeCarbon's FileOutput: the header when the file is new or
// empty; an existing file whose columns are the same set (in any order) gets rows in its own
// order; any other file is moved to <path>.bak (or <path>_0.bak, _1.bak, ... when that
// exists, like CodeCarbon's backup()) and a new file is started. Written atomically. Returns
// a warning line if a file was moved, else "".
std::string append_emissions_csv(const std::filesystem::path& path,
                                 std::span<const PhaseResult> phases, const RunInfo& info);

// One JSON object (one line) for a phase: joules per domain for the process share and,
// when this process reports it, the machine; each domain with "measured"/"estimated" and
// its source label; kWh, emissions, cost, carbon and PUE descriptions.
std::string energy_json_record(const PhaseResult& phase, const RunInfo& info);
void append_energy_jsonl(const std::filesystem::path& path, std::span<const PhaseResult> phases,
                         const RunInfo& info);

// Prometheus text exposition format 0.0.4 for the given phases, named by Prometheus's
// conventions (base units, counters ending in _total; `promtool check metrics` passes):
// verdant_energy_joules_total and verdant_power_watts by domain and scope,
// verdant_emissions_grams_total, verdant_phase_duration_seconds,
// verdant_cpu_utilization_ratio and, when a price is given, verdant_energy_cost_total.
std::string prometheus_text(std::span<const PhaseResult> phases, const RunInfo& info);
// For node_exporter's textfile collector (written atomically, as it requires).
void write_prometheus_textfile(const std::filesystem::path& path, const std::string& text);

// A minimal HTTP server on 127.0.0.1 answering GET /metrics with body(); everything else
// 404. One small thread; port 0 picks a free port. Throws verdant::Error if it cannot bind.
class MetricsServer {
 public:
  MetricsServer(std::function<std::string()> body, std::uint16_t port = 0);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace verdant::energy
