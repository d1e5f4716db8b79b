#pragma once
// The energy tracker: samples the meters on a background thread, splits the whole
// machine's energy into the tracked process tree's share, and reports named phases
// (train, eval, epoch N, ...) with energy, carbon and cost.
//
//   Tracker tracker(select_meters(), resolve_carbon_intensity(location), options);
//   tracker.start();
//   { auto train = tracker.phase("train"); ... }   // RAII: ends the phase
//   PhaseResult total = tracker.stop();
//
// Attribution: cpu share = the tree's CPU time / the machine's busy CPU time over each
// sampling interval; dram share = the tree's resident memory / the machine's memory in use
// (MemTotal - MemAvailable); gpu: NVML reports whole devices, so the GPUs' energy is
// attributed to the tracked process in full.
// Overhead: one sample reads the meters, /proc/stat (once: the estimate meter's reading is
// reused), /proc/meminfo and either the root's /proc/<pid>/stat through descriptors kept open
// (scan_descendants = false: ~35 us on this project's VM) or that of every process (~5-9 ms
// with 120-200 processes: under 1% of one core at the default 1 s interval).
// Phase boundaries also sample: open phases per epoch, not per step.
#include <sys/types.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "verdant/energy/attribution.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/meter.hpp"

namespace verdant::energy {

struct ProcessTreeUsage;  // procstat.hpp
struct MachineCpuTimes;   // procstat.hpp

// An electricity price per kWh must be a finite number >= 0. Throws SettingError ("price")
// "price must be a finite number of money per kWh >= 0, got X" otherwise; Tracker checks
// TrackerOptions::price_per_kwh with it.
void validate_price(double price_per_kwh);

struct TrackerOptions {
  double interval_s = 1.0;
  std::string project_name = "verdant";
  std::string experiment_id;
  pid_t root_pid = 0;  // 0: this process (and its children)
  // true: scan /proc for live descendants at every sample (for `measure`, whose command
  // runs as a child). false: read only the root's own stat file, whose cutime/cstime cover
  // children it has reaped; much cheaper, right for a process that does the work itself.
  bool scan_descendants = true;
  std::filesystem::path proc_root = "/proc";
  std::optional<double> price_per_kwh;  // cost = energy x PUE x price; none -> no cost
  std::string currency = "USD";
  LeaseOptions lease;
  // Labels for emissions.csv (country, region, cloud) and the WUE; the intensity itself is
  // the CarbonIntensity given to the constructor (normally resolve_carbon_intensity(location)).
  LocationRequest location;
  // The tracked program's Python version ("3.11.2") when it is a Python program, for
  // emissions.csv's python_version; empty otherwise.
  std::string python_version;
};

struct PhaseResult {
  std::string name;
  UtcTime start;
  UtcTime end;
  double duration_s = 0;
  Joules machine;                             // the whole machine (see machine_reported)
  Joules process;                             // the tracked process tree's share
  bool machine_reported = false;              // false: another tracker on this machine reports it
  std::array<bool, kDomainCount> measured{};  // per domain
  std::array<std::string, kDomainCount> source{};  // per domain label; "none" if no meter
  std::vector<Meter::DeviceJoules> gpus;           // per GPU (whole devices, like gpu above)
  double cpu_share = 0;                            // time-weighted mean over the phase
  double ram_share = 0;
  // The machine over the phase, time-weighted means: CPU utilisation (0..1, /proc/stat),
  // memory in use (MemTotal - MemAvailable), and the GPUs' utilisation where NVML reads it.
  double cpu_utilization = 0;
  double ram_used_bytes = 0;
  double ram_total_bytes = 0;
  std::optional<double> gpu_utilization;
  double emissions_kg = 0;          // process share, PUE included
  double machine_emissions_kg = 0;  // whole machine, PUE included
  std::optional<double> cost;       // process share, PUE included
  std::string carbon_note;          // how emissions were computed, if not plainly
  std::int64_t samples = 0;         // training samples in the phase (set by the trainer hook)

  double kwh() const { return process.total() / kJoulesPerKwh; }
  double machine_kwh() const { return machine.total() / kJoulesPerKwh; }
};

// How a phase's figures were obtained, decided in one place for every output.
// One domain: "measured", "estimated" or "none" (no meter for it).
const char* domain_kind(const PhaseResult& r, Domain d);
// The whole phase, over the domains that have a meter: "measured", "estimated" or
// "partly measured, partly estimated".
std::string measurement_kind(const PhaseResult& r);
// The kind followed by each distinct source once, e.g.
// "estimated (vCPU model, ...; RAM 0.392 W/GB x memory in use, ...)".
std::string measurement_label(const PhaseResult& r);
// One domain's mean power over the phase (process share, or the machine's) with its kind and
// source, e.g. "3.1 W estimated (vCPU model, EPYC 3rd Gen coefficients ..., range 0.445-2.02 W
// per vCPU)"; "none" when no meter covers it.
std::string power_label(const PhaseResult& r, Domain d, bool machine = false);

// Static facts about the run and machine, for emissions.csv and the other sinks.
struct RunInfo {
  std::string project_name;
  std::string run_id;  // random UUID v4
  std::string experiment_id;
  std::string country_name, country_iso_code, region, cloud_provider, cloud_region;
  std::string os;
  std::string python_version;  // TrackerOptions::python_version, or set by the Python package
  std::string cpu_model;
  int cpu_count = 0;
  std::string gpu_model;  // "2 x NVIDIA H100" like CodeCarbon
  int gpu_count = 0;
  double ram_total_gb = 0;
  bool on_cloud = false;
  double pue = 1.0;
  double wue = 0;                  // litres of water per kWh (CodeCarbon's default 0: not counted)
  std::string carbon_description;  // CarbonIntensity::description()
  std::string pue_description;
  std::string currency;
  bool machine_leader = false;
  std::string machine_reason;
  // What emissions.csv rows hold: "process" (the tree's share, the default) or "machine"
  // (the whole machine, written only for phases whose machine_reported is true).
  std::string tracking_mode = "process";
};

class Tracker {
 public:
  Tracker(MeterSet meters, CarbonIntensity carbon, TrackerOptions options = {});
  ~Tracker();
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  void start();
  // Ends open phases, stops sampling and returns the whole run as a phase named "total".
  PhaseResult stop();
  bool running() const;

  class Phase {
   public:
    Phase(Phase&& other) noexcept;
    Phase& operator=(Phase&&) = delete;
    ~Phase();
    PhaseResult end();  // explicit end; the destructor ends it otherwise

   private:
    friend class Tracker;
    Phase(Tracker* t, std::size_t id) : tracker_(t), id_(id) {}
    Tracker* tracker_;
    std::size_t id_;
  };
  Phase phase(std::string name);
  std::size_t begin_phase(std::string name);
  PhaseResult end_phase(std::size_t id);

  // Finished phases in the order they ended ("total" last once stopped).
  std::vector<PhaseResult> results() const;
  // Live figures since start() as a phase named "live" (for the Prometheus endpoint).
  PhaseResult snapshot();
  const RunInfo& run_info() const { return info_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // One sample now (the sampling thread calls this; tests may too).
  void sample_now();

 private:
  struct Point {
    UtcTime time;
    Joules machine;                         // cumulative
    Joules process;                         // cumulative
    std::vector<Meter::DeviceJoules> gpus;  // cumulative, per GPU
    double cpu_share_time = 0;              // integral of share over time, for the mean
    double ram_share_time = 0;
    double cpu_util_time = 0;  // integrals of the machine's figures over time
    double ram_used_time = 0;
    double gpu_util_time = 0;
    double gpu_util_elapsed = 0;  // the time over which a GPU utilisation was read
    double elapsed = 0;
    std::size_t interval_index = 0;  // intervals recorded so far
  };
  struct Open {
    std::string name;
    Point begin;
    bool open = false;
  };
  void sample_locked();
  void read_meters(Point* p);
  ProcessTreeUsage read_tree() const;
  MachineCpuTimes read_machine() const;
  PhaseResult make_result(const std::string& name, const Point& a, const Point& b) const;
  void run_sampler();

  MeterSet meters_;
  CarbonIntensity carbon_;
  TrackerOptions options_;
  MachineLease lease_;
  RunInfo info_;
  std::vector<std::string> warnings_;
  pid_t root_ = 0;
  struct ProcFiles;  // the /proc files every sample reads, kept open
  std::unique_ptr<ProcFiles> proc_;
  double mem_total_bytes_ = 0;
  std::array<int, kDomainCount> domain_meter_{};  // index of the meter covering it, -1 none

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::thread sampler_;
  bool running_ = false;
  bool stopping_ = false;
  Point start_point_;
  Point last_;
  double last_proc_cpu_ = 0;
  double last_busy_ = 0;
  double last_total_ = 0;
  std::vector<EnergyInterval> process_intervals_;
  std::vector<EnergyInterval> machine_intervals_;
  std::vector<Open> phases_;
  std::vector<PhaseResult> finished_;
};

}  // namespace verdant::energy
