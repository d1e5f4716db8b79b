#include "verdant/energy/tracker.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>

#include "file_util.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/procstat.hpp"

namespace verdant::energy {

struct Tracker::ProcFiles {
  detail::RereadFile machine;  // <proc>/stat
  detail::RereadFile root;     // <proc>/<root>/stat
};

namespace {

std::string random_uuid() {
  std::random_device rd;
  std::array<unsigned char, 16> b{};
  for (auto& x : b) x = static_cast<unsigned char>(rd() & 0xff);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string os_name() {
  struct utsname u {};
  if (::uname(&u) != 0) return "Linux";
  return std::string(u.sysname) + "-" + u.release + "-" + u.machine;
}

double seconds_between(UtcTime a, UtcTime b) {
  return std::chrono::duration<double>(b - a).count();
}

void fill_location(const LocationRequest& request, RunInfo* info) {
  try {
    if (!request.country.empty()) {
      const auto& c = find_country(request.country);
      info->country_name = c.name;
      info->country_iso_code = c.iso3;
    } else if (!request.cloud.empty()) {
      const auto& r = find_cloud_region(request.cloud);
      info->cloud_provider = r.provider;
      info->cloud_region = r.region;
      info->country_name = r.country;
      info->region = r.location;
      info->on_cloud = true;
    } else if (!request.grid_zone.empty()) {
      info->region = request.grid_zone;
    }
  } catch (const Error&) {
    // resolve_carbon_intensity() reports bad locations; labels stay empty here.
  }
}

}  // namespace

void validate_price(double price_per_kwh) {
  if (!(price_per_kwh >= 0) || !std::isfinite(price_per_kwh)) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", price_per_kwh);
    throw SettingError(
        "price", std::string("price must be a finite number of money per kWh >= 0, got ") + text);
  }
}

Tracker::Tracker(MeterSet meters, CarbonIntensity carbon, TrackerOptions options)
    : meters_(std::move(meters)),
      carbon_(std::move(carbon)),
      options_(std::move(options)),
      lease_(options_.lease) {
  if (!(options_.interval_s > 0)) throw UsageError("sampling interval must be > 0 s");
  if (options_.price_per_kwh) validate_price(*options_.price_per_kwh);
  root_ = options_.root_pid ? options_.root_pid : ::getpid();
  proc_.reset(
      new ProcFiles{detail::RereadFile(options_.proc_root / "stat"),
                    detail::RereadFile(options_.proc_root / std::to_string(root_) / "stat")});
  warnings_ = meters_.warnings;
  domain_meter_.fill(-1);
  for (std::size_t i = 0; i < meters_.meters.size(); ++i)
    for (Domain d : meters_.meters[i]->domains())
      if (domain_meter_[static_cast<int>(d)] < 0) domain_meter_[static_cast<int>(d)] = int(i);
  try {
    mem_total_bytes_ = read_memory_usage(options_.proc_root).total_bytes;
  } catch (const Error& e) {
    warnings_.push_back(std::string(e.what()) + "; memory share not attributed");
  }

  info_.project_name = options_.project_name;
  info_.run_id = random_uuid();
  info_.experiment_id = options_.experiment_id;
  info_.os = os_name();
  info_.python_version = options_.python_version;
  CpuInfo cpu = read_cpuinfo(options_.proc_root);
  info_.cpu_model = cpu.model_name;
  info_.cpu_count = cpu.logical_cpus;
  std::vector<std::string> gpus;
  for (auto& m : meters_.meters)
    if (m->name() == "nvml")
      for (auto& n : m->device_names()) gpus.push_back(n);
  info_.gpu_count = static_cast<int>(gpus.size());
  if (!gpus.empty()) info_.gpu_model = std::to_string(gpus.size()) + " x " + gpus.front();
  info_.ram_total_gb = mem_total_bytes_ / (1024.0 * 1024.0 * 1024.0);
  info_.pue = carbon_.pue();
  if (options_.location.wue) validate_wue(*options_.location.wue);
  info_.wue = options_.location.wue.value_or(0.0);
  info_.carbon_description = carbon_.description();
  info_.pue_description = carbon_.pue_description();
  info_.currency = options_.currency;
  info_.machine_leader = lease_.leader();
  info_.machine_reason = lease_.reason();
  fill_location(options_.location, &info_);
}

Tracker::~Tracker() {
  if (running()) {
    try {
      stop();
    } catch (...) {
      // A destructor must not throw; stop() already recorded what it could.
    }
  }
}

bool Tracker::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

void Tracker::start() {
  {
    std::lock_guard lock(mutex_);
    if (running_) throw Error("energy tracker: start() called twice");
    Point p;
    p.time = std::chrono::system_clock::now();
    read_meters(&p);
    last_proc_cpu_ = read_tree().cpu_s;
    const MachineCpuTimes cpu = read_machine();
    last_busy_ = cpu.busy_s;
    last_total_ = cpu.total_s;
    process_intervals_.clear();
    machine_intervals_.clear();
    phases_.clear();
    finished_.clear();
    last_ = start_point_ = p;
    running_ = true;
    stopping_ = false;
  }
  sampler_ = std::thread([this] { run_sampler(); });
}

void Tracker::run_sampler() {
  std::unique_lock lock(mutex_);
  const auto interval = std::chrono::duration<double>(options_.interval_s);
  while (!stopping_) {
    if (wake_.wait_for(lock, interval, [this] { return stopping_; })) break;
    try {
      sample_locked();
    } catch (const std::exception&) {
      // Keep sampling; the next boundary sample will throw to the caller if it persists.
    }
  }
}

void Tracker::sample_now() {
  std::lock_guard lock(mutex_);
  if (!running_) throw Error("energy tracker: not started");
  sample_locked();
}

void Tracker::read_meters(Point* p) {
  std::vector<Joules> readings;
  readings.reserve(meters_.meters.size());
  for (auto& m : meters_.meters) readings.push_back(m->read());
  for (Domain d : kAllDomains)
    if (int i = domain_meter_[int(d)]; i >= 0) p->machine[d] = readings[i][d];
  if (int i = domain_meter_[int(Domain::gpu)]; i >= 0) p->gpus = meters_.meters[i]->device_joules();
}

ProcessTreeUsage Tracker::read_tree() const {
  if (options_.scan_descendants) return read_process_tree(options_.proc_root, root_);
  auto text = proc_->root.read();  // the process may have exited: zeros, as for a scan
  return text ? parse_process_stat(*text) : ProcessTreeUsage{};
}

MachineCpuTimes Tracker::read_machine() const {
  // After read_meters(): a meter may have just read the same file.
  for (const auto& m : meters_.meters)
    if (const MachineCpuTimes* t = m->machine_cpu(options_.proc_root)) return *t;
  std::string why;
  auto text = proc_->machine.read(&why);
  if (!text) throw Error(why);
  return parse_machine_cpu(*text, proc_->machine.path().string());
}

void Tracker::sample_locked() {
  Point p;
  p.time = std::chrono::system_clock::now();
  read_meters(&p);
  const UtcTime now = p.time;
  const Joules& machine = p.machine;
  ProcessTreeUsage tree = read_tree();
  MachineCpuTimes cpu = read_machine();

  MemoryUsage memory;
  if (mem_total_bytes_ > 0) {
    try {
      memory = read_memory_usage(options_.proc_root);
    } catch (const Error&) {
      // meminfo vanished mid-run: this interval charges no memory share.
    }
  }

  const Joules d_machine = machine - last_.machine;
  const double d_busy = cpu.busy_s - last_busy_;
  const double d_total = cpu.total_s - last_total_;
  const double d_proc = tree.cpu_s - last_proc_cpu_;
  const double cpu_share = d_busy > 0 ? std::clamp(d_proc / d_busy, 0.0, 1.0) : 0.0;
  const double utilization = d_total > 0 ? std::clamp(d_busy / d_total, 0.0, 1.0) : 0.0;
  // The memory estimate charges memory in use, so a process's share is of that.
  const double ram_share =
      memory.used_bytes > 0 ? std::clamp(tree.rss_bytes / memory.used_bytes, 0.0, 1.0) : 0.0;
  std::optional<double> gpu_utilization;
  if (int i = domain_meter_[int(Domain::gpu)]; i >= 0)
    gpu_utilization = meters_.meters[i]->utilization();
  Joules d_process;
  d_process[Domain::cpu] = d_machine[Domain::cpu] * cpu_share;
  d_process[Domain::dram] = d_machine[Domain::dram] * ram_share;
  d_process[Domain::gpu] = d_machine[Domain::gpu];  // NVML: whole devices (see header)

  const double dt = std::max(0.0, seconds_between(last_.time, now));
  process_intervals_.push_back({last_.time, now, d_process.total()});
  machine_intervals_.push_back({last_.time, now, d_machine.total()});

  p.process = last_.process;
  p.process += d_process;
  p.cpu_share_time = last_.cpu_share_time + cpu_share * dt;
  p.ram_share_time = last_.ram_share_time + ram_share * dt;
  p.cpu_util_time = last_.cpu_util_time + utilization * dt;
  p.ram_used_time = last_.ram_used_time + memory.used_bytes * dt;
  p.gpu_util_time = last_.gpu_util_time + (gpu_utilization ? *gpu_utilization * dt : 0.0);
  p.gpu_util_elapsed = last_.gpu_util_elapsed + (gpu_utilization ? dt : 0.0);
  p.elapsed = last_.elapsed + dt;
  p.interval_index = process_intervals_.size();
  last_ = p;
  last_busy_ = cpu.busy_s;
  last_total_ = cpu.total_s;
  last_proc_cpu_ = tree.cpu_s;
}

PhaseResult Tracker::make_result(const std::string& name, const Point& a, const Point& b) const {
  PhaseResult r;
  r.name = name;
  r.start = a.time;
  r.end = b.time;
  r.duration_s = b.elapsed - a.elapsed;
  r.process = b.process - a.process;
  r.machine_reported = lease_.leader();
  if (r.machine_reported) r.machine = b.machine - a.machine;
  if (r.duration_s > 0) {
    r.cpu_share = (b.cpu_share_time - a.cpu_share_time) / r.duration_s;
    r.ram_share = (b.ram_share_time - a.ram_share_time) / r.duration_s;
    r.cpu_utilization = (b.cpu_util_time - a.cpu_util_time) / r.duration_s;
    r.ram_used_bytes = (b.ram_used_time - a.ram_used_time) / r.duration_s;
  }
  // The same devices at both ends: the meter's set is fixed at construction.
  for (std::size_t g = 0; g < b.gpus.size() && g < a.gpus.size(); ++g)
    r.gpus.push_back({b.gpus[g].index, b.gpus[g].joules - a.gpus[g].joules});
  r.ram_total_bytes = mem_total_bytes_;
  if (const double t = b.gpu_util_elapsed - a.gpu_util_elapsed; t > 0)
    r.gpu_utilization = (b.gpu_util_time - a.gpu_util_time) / t;
  for (Domain d : kAllDomains) {
    int i = domain_meter_[int(d)];
    r.measured[int(d)] = i >= 0 && meters_.meters[i]->measured();
    r.source[int(d)] = i >= 0 ? meters_.meters[i]->source(d) : "none";
  }
  auto grams = [&](const std::vector<EnergyInterval>& all, double kwh) {
    std::span<const EnergyInterval> span(all.data() + a.interval_index,
                                         b.interval_index - a.interval_index);
    try {
      return carbon_.grams(span);
    } catch (const Error& e) {
      // A historical series (e.g. the bundled 2022 EIA year) does not cover today.
      char note[96];
      std::snprintf(note, sizeof note, "; its mean %.1f gCO2eq/kWh used instead",
                    carbon_.mean_gco2_per_kwh());
      r.carbon_note = std::string(e.what()) + note;
      return carbon_.grams_for_kwh(kwh);
    }
  };
  r.emissions_kg = grams(process_intervals_, r.kwh()) / 1000.0;
  if (r.machine_reported)
    r.machine_emissions_kg = grams(machine_intervals_, r.machine_kwh()) / 1000.0;
  if (options_.price_per_kwh) r.cost = r.kwh() * carbon_.pue() * *options_.price_per_kwh;
  return r;
}

std::size_t Tracker::begin_phase(std::string name) {
  std::lock_guard lock(mutex_);
  if (!running_) throw Error("energy tracker: phase '" + name + "' begun before start()");
  sample_locked();
  phases_.push_back({std::move(name), last_, true});
  return phases_.size() - 1;
}

PhaseResult Tracker::end_phase(std::size_t id) {
  std::lock_guard lock(mutex_);
  if (id >= phases_.size() || !phases_[id].open)
    throw Error("energy tracker: phase ended twice or never begun");
  sample_locked();
  phases_[id].open = false;
  PhaseResult r = make_result(phases_[id].name, phases_[id].begin, last_);
  finished_.push_back(r);
  return r;
}

Tracker::Phase Tracker::phase(std::string name) {
  return Phase(this, begin_phase(std::move(name)));
}

Tracker::Phase::Phase(Phase&& other) noexcept
    : tracker_(std::exchange(other.tracker_, nullptr)), id_(other.id_) {}

Tracker::Phase::~Phase() {
  if (!tracker_) return;
  try {
    end();
  } catch (...) {
    // Ending a phase during unwinding must not throw.
  }
}

PhaseResult Tracker::Phase::end() {
  if (!tracker_) throw Error("energy tracker: phase ended twice");
  return std::exchange(tracker_, nullptr)->end_phase(id_);
}

PhaseResult Tracker::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) throw Error("energy tracker: stop() without start()");
    stopping_ = true;
  }
  wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();
  std::lock_guard lock(mutex_);
  sample_locked();
  for (auto& ph : phases_)
    if (ph.open) {
      ph.open = false;
      finished_.push_back(make_result(ph.name, ph.begin, last_));
    }
  PhaseResult total = make_result("total", start_point_, last_);
  finished_.push_back(total);
  running_ = false;
  return total;
}

std::vector<PhaseResult> Tracker::results() const {
  std::lock_guard lock(mutex_);
  return finished_;
}

PhaseResult Tracker::snapshot() {
  std::lock_guard lock(mutex_);
  if (!running_) {
    if (!finished_.empty()) return finished_.back();
    throw Error("energy tracker: not started");
  }
  sample_locked();
  return make_result("live", start_point_, last_);
}

const char* domain_kind(const PhaseResult& r, Domain d) {
  const std::string& source = r.source[int(d)];
  if (source.empty() || source == "none") return "none";
  return r.measured[int(d)] ? "measured" : "estimated";
}

std::string measurement_kind(const PhaseResult& r) {
  int measured = 0, estimated = 0;
  for (Domain d : kAllDomains) {
    const std::string kind = domain_kind(r, d);
    measured += kind == "measured";
    estimated += kind == "estimated";
  }
  if (estimated == 0) return "measured";
  return measured == 0 ? "estimated" : "partly measured, partly estimated";
}

std::string measurement_label(const PhaseResult& r) {
  std::string sources;
  for (Domain d : kAllDomains) {
    if (std::string(domain_kind(r, d)) == "none") continue;
    const std::string& s = r.source[int(d)];
    if (sources.find(s) == std::string::npos) sources += (sources.empty() ? "" : "; ") + s;
  }
  const std::string kind = measurement_kind(r);
  // Each source already starts with "measured" or "estimated": say it once.
  return sources.rfind(kind, 0) == 0 ? sources : kind + ": " + sources;
}

std::string power_label(const PhaseResult& r, Domain d, bool machine) {
  if (std::string(domain_kind(r, d)) == "none") return "none";
  const double joules = machine ? r.machine[d] : r.process[d];
  char watts[32];
  std::snprintf(watts, sizeof watts, "%.3g W ", r.duration_s > 0 ? joules / r.duration_s : 0.0);
  // The source reads "estimated (...)" or "measured (...)": the kind stays on the figure.
  return watts + r.source[int(d)];
}

}  // namespace verdant::energy
