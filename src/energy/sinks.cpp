#include "verdant/energy/sinks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "file_util.hpp"
#include "intensity_text.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::energy {

namespace fs = std::filesystem;

namespace {

std::string num(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return buf;
}

std::string iso_time(UtcTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

double watts(double joules, double seconds) {
  return seconds > 0 ? joules / seconds : 0.0;
}

std::string existing_text(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return {};
  return read_file_text(path);
}

std::string prom_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

const std::vector<std::string>& codecarbon_columns() {
  // The fields of codecarbon.output_methods.emissions_data.EmissionsData in CodeCarbon 3.2
  // (mlco2/codecarbon, tags v3.2.1 to v3.2.9 alike): the header its FileOutput writes.
  static const std::vector<std::string> columns = {"timestamp",
                                                   "project_name",
                                                   "run_id",
                                                   "experiment_id",
                                                   "duration",
                                                   "emissions",
                                                   "emissions_rate",
                                                   "cpu_power",
                                                   "gpu_power",
                                                   "ram_power",
                                                   "cpu_energy",
                                                   "gpu_energy",
                                                   "ram_energy",
                                                   "energy_consumed",
                                                   "water_consumed",
                                                   "country_name",
                                                   "country_iso_code",
                                                   "region",
                                                   "cloud_provider",
                                                   "cloud_region",
                                                   "os",
                                                   "python_version",
                                                   "codecarbon_version",
                                                   "cpu_count",
                                                   "cpu_model",
                                                   "gpu_count",
                                                   "gpu_model",
                                                   "longitude",
                                                   "latitude",
                                                   "ram_total_size",
                                                   "tracking_mode",
                                                   "cpu_utilization_percent",
                                                   "gpu_utilization_percent",
                                                   "ram_utilization_percent",
                                                   "ram_used_gb",
                                                   "on_cloud",
                                                   "pue",
                                                   "wue"};
  return columns;
}

namespace {

constexpr double kBytesPerGb = 1024.0 * 1024.0 * 1024.0;  // CodeCarbon's GB (1024**3)

// The fields of one row, in codecarbon_columns() order.
std::vector<std::string> emissions_fields(const PhaseResult& phase, const RunInfo& info) {
  // tracking_mode "machine" writes the machine's figures, but only where this tracker
  // reports the machine; otherwise the row is the process share and says so.
  const bool machine = info.tracking_mode == "machine" && phase.machine_reported;
  PhaseResult p = phase;
  if (machine) {
    p.process = phase.machine;
    p.emissions_kg = phase.machine_emissions_kg;
  }
  const double kwh = 1.0 / kJoulesPerKwh;
  const double ram_percent =
      p.ram_total_bytes > 0 ? p.ram_used_bytes / p.ram_total_bytes * 100.0 : NAN;
  return {iso_time(p.end),
          info.project_name,
          info.run_id,
          info.experiment_id,
          num(p.duration_s),
          num(p.emissions_kg),
          num(p.duration_s > 0 ? p.emissions_kg / p.duration_s : 0.0),
          num(watts(p.process[Domain::cpu], p.duration_s)),
          num(watts(p.process[Domain::gpu], p.duration_s)),
          num(watts(p.process[Domain::dram], p.duration_s)),
          num(p.process[Domain::cpu] * kwh),
          num(p.process[Domain::gpu] * kwh),
          num(p.process[Domain::dram] * kwh),
          num(p.process.total() * kwh),
          num(p.process.total() * kwh * info.wue),  // litres: WUE is per kWh of IT energy
          info.country_name,
          info.country_iso_code,
          info.region,
          info.cloud_provider,
          info.cloud_region,
          info.os,
          info.python_version,  // the tracked program's, when it is Python
          "",                   // codecarbon_version: written by Verdant, not CodeCarbon
          std::to_string(info.cpu_count),
          info.cpu_model,
          std::to_string(info.gpu_count),
          info.gpu_model,
          "",  // longitude: not looked up (no network)
          "",  // latitude
          num(info.ram_total_gb),
          machine ? "machine" : "process",
          num(p.cpu_utilization * 100.0),  // the machine's, like CodeCarbon's psutil figure
          p.gpu_utilization ? num(*p.gpu_utilization * 100.0) : "",  // no GPU read: empty
          num(ram_percent),
          num(p.ram_used_bytes / kBytesPerGb),
          info.on_cloud ? "Y" : "N",
          num(info.pue),
          num(info.wue)};
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string row;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) row += ',';
    row += csv_field(fields[i]);
  }
  return row;
}

// Where CodeCarbon's backup() moves a file: <path>.bak, else <path>_0.bak, <path>_1.bak, ...
fs::path free_backup_path(const fs::path& path) {
  fs::path backup = path;
  backup += ".bak";
  std::error_code ec;
  for (int i = 0; fs::exists(backup, ec); ++i) {
    backup = path;
    backup += "_" + std::to_string(i) + ".bak";
  }
  return backup;
}

}  // namespace

std::string emissions_csv_row(const PhaseResult& p, const RunInfo& info) {
  return csv_line(emissions_fields(p, info));
}

std::string append_emissions_csv(const fs::path& path, std::span<const PhaseResult> phases,
                                 const RunInfo& info) {
  const auto& columns = codecarbon_columns();
  std::string text = existing_text(path);
  std::string warning;
  // The order rows are written in: an existing file's own, when it has the same columns.
  std::vector<std::size_t> order(columns.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!text.empty()) {
    std::string first = text.substr(0, text.find('\n'));
    if (!first.empty() && first.back() == '\r') first.pop_back();
    // Names may be quoted, as pandas quotes when it must.
    std::vector<std::string> existing;
    if (!detail::split_csv(first, existing)) existing.clear();
    // CodeCarbon compares the header as a set: another order is the same file.
    std::vector<std::string> a = existing, b = columns;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) {
      const fs::path backup = free_backup_path(path);
      fs::rename(path, backup);
      warning = path.string() + ": its columns are not CodeCarbon 3.2's; old file moved to " +
                backup.string() + ", new file started";
      text.clear();
    } else {
      for (std::size_t i = 0; i < existing.size(); ++i)
        order[i] = static_cast<std::size_t>(std::find(columns.begin(), columns.end(), existing[i]) -
                                            columns.begin());
      if (text.back() != '\n') text += '\n';
    }
  }
  if (text.empty()) text = csv_line(columns) + "\n";
  for (const auto& p : phases) {
    const std::vector<std::string> fields = emissions_fields(p, info);
    std::vector<std::string> ordered;
    for (std::size_t i : order) ordered.push_back(fields[i]);
    text += csv_line(ordered) + "\n";
  }
  write_file_atomic(path, text);
  return warning;
}

std::string energy_json_record(const PhaseResult& p, const RunInfo& info) {
  using nlohmann::json;
  json j;
  j["run_id"] = info.run_id;
  j["project_name"] = info.project_name;
  if (!info.experiment_id.empty()) j["experiment_id"] = info.experiment_id;
  j["phase"] = p.name;
  j["start"] = iso_time(p.start) + "Z";
  j["end"] = iso_time(p.end) + "Z";
  j["duration_s"] = p.duration_s;
  json process, machine, sources;
  for (Domain d : kAllDomains) {
    const char* n = domain_name(d);
    process[n] = p.process[d];
    if (p.machine_reported) machine[n] = p.machine[d];
    sources[n] = {{"kind", domain_kind(p, d)}, {"source", p.source[int(d)]}};
  }
  j["process_joules"] = process;
  j["process_kwh"] = p.kwh();
  if (p.samples > 0) {
    j["samples"] = p.samples;
    j["joules_per_sample"] = p.process.total() / static_cast<double>(p.samples);
  }
  j["cpu_share"] = p.cpu_share;
  j["ram_share"] = p.ram_share;
  if (p.machine_reported) {
    j["machine_joules"] = machine;
    j["machine_kwh"] = p.machine_kwh();
    j["machine_emissions_kg"] = p.machine_emissions_kg;
  } else {
    j["machine_joules"] = nullptr;  // another tracker on this machine reports it
  }
  j["machine_reporting"] = info.machine_reason;
  j["sources"] = sources;
  j["emissions_kg"] = p.emissions_kg;
  j["carbon_intensity"] = info.carbon_description;
  if (!p.carbon_note.empty()) j["carbon_note"] = p.carbon_note;
  j["pue"] = info.pue;
  j["pue_source"] = info.pue_description;
  if (p.cost) {
    j["cost"] = *p.cost;
    j["currency"] = info.currency;
  } else {
    j["cost"] = nullptr;
  }
  return j.dump();
}

void append_energy_jsonl(const fs::path& path, std::span<const PhaseResult> phases,
                         const RunInfo& info) {
  std::string text = existing_text(path);
  if (!text.empty() && text.back() != '\n') text += '\n';
  for (const auto& p : phases) text += energy_json_record(p, info) + "\n";
  write_file_atomic(path, text);
}

std::string prometheus_text(std::span<const PhaseResult> phases, const RunInfo& info) {
  std::string out;
  auto labels = [&](const PhaseResult& p) {
    return "run_id=\"" + prom_escape(info.run_id) + "\",project=\"" +
           prom_escape(info.project_name) + "\",phase=\"" + prom_escape(p.name) + "\"";
  };
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  // Per domain and scope: one series for the process tree's share, one for the machine when
  // this process reports it.
  auto per_domain = [&](const char* name, auto value) {
    for (const auto& p : phases)
      for (Domain d : kAllDomains) {
        const std::string base =
            labels(p) + ",domain=\"" + domain_name(d) + "\",source=\"" + domain_kind(p, d) + "\"";
        out += std::string(name) + "{" + base + ",scope=\"process\"} " + num(value(p, d, false)) +
               "\n";
        if (p.machine_reported)
          out += std::string(name) + "{" + base + ",scope=\"machine\"} " + num(value(p, d, true)) +
                 "\n";
      }
  };
  family("verdant_energy_joules_total", "counter",
         "Energy of a phase by domain; scope=process is the tracked process tree's share, "
         "scope=machine the whole machine; source says measured or estimated.");
  per_domain("verdant_energy_joules_total", [](const PhaseResult& p, Domain d, bool machine) {
    return machine ? p.machine[d] : p.process[d];
  });
  family("verdant_power_watts", "gauge", "Mean power of a phase by domain (energy / duration).");
  per_domain("verdant_power_watts", [](const PhaseResult& p, Domain d, bool machine) {
    return watts(machine ? p.machine[d] : p.process[d], p.duration_s);
  });
  family("verdant_emissions_grams_total", "counter",
         "Emissions of a phase in grams CO2eq (PUE included).");
  for (const auto& p : phases) {
    out += "verdant_emissions_grams_total{" + labels(p) + ",scope=\"process\"} " +
           num(p.emissions_kg * 1000.0) + "\n";
    if (p.machine_reported)
      out += "verdant_emissions_grams_total{" + labels(p) + ",scope=\"machine\"} " +
             num(p.machine_emissions_kg * 1000.0) + "\n";
  }
  family("verdant_phase_duration_seconds", "gauge", "Wall time of a phase.");
  for (const auto& p : phases)
    out += "verdant_phase_duration_seconds{" + labels(p) + "} " + num(p.duration_s) + "\n";
  family("verdant_cpu_utilization_ratio", "gauge",
         "The machine's mean CPU utilisation over a phase (0 to 1).");
  for (const auto& p : phases)
    out += "verdant_cpu_utilization_ratio{" + labels(p) + "} " + num(p.cpu_utilization) + "\n";
  bool any_cost = false;
  for (const auto& p : phases) any_cost = any_cost || p.cost.has_value();
  if (any_cost) {
    family("verdant_energy_cost_total", "counter",
           "Electricity cost of a phase in the currency label (process share, PUE included).");
    for (const auto& p : phases)
      if (p.cost)
        out += "verdant_energy_cost_total{" + labels(p) + ",currency=\"" +
               prom_escape(info.currency) + "\"} " + num(*p.cost) + "\n";
  }
  return out;
}

void write_prometheus_textfile(const fs::path& path, const std::string& text) {
  write_file_atomic(path, text);
}

// ---- MetricsServer -------------------------------------------------------------------

struct MetricsServer::Impl {
  std::function<std::string()> body;
  int fd = -1;
  std::uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  void serve_one(int client) {
    // Read the request head (bounded in size and time), answer, close.
    std::string req;
    char buf[1024];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
      pollfd pfd{client, POLLIN, 0};
      if (::poll(&pfd, 1, 2000) <= 0) break;
      ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.append(buf, static_cast<std::size_t>(n));
    }
    std::string first = req.substr(0, req.find("\r\n"));
    std::string status = "404 Not Found", content = "not found\n";
    if (first.rfind("GET /metrics ", 0) == 0 || first == "GET /metrics") {
      status = "200 OK";
      try {
        content = body();
      } catch (const std::exception& e) {
        status = "500 Internal Server Error";
        content = std::string(e.what()) + "\n";
      }
    }
    std::string resp = "HTTP/1.1 " + status +
                       "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                       "Content-Length: " +
                       std::to_string(content.size()) + "\r\nConnection: close\r\n\r\n" + content;
    std::size_t done = 0;
    while (done < resp.size()) {
      ssize_t n = ::send(client, resp.data() + done, resp.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(client);
  }

  void loop() {
    while (!stop.load()) {
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, 100);  // wakes up to notice stop
      if (r <= 0) continue;
      int client = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) serve_one(client);
    }
  }
};

MetricsServer::MetricsServer(std::function<std::string()> body, std::uint16_t port)
    : impl_(std::make_unique<Impl>()) {
  impl_->body = std::move(body);
  impl_->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl_->fd < 0) throw Error(std::string("metrics endpoint: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(impl_->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only, never exposed
  addr.sin_port = htons(port);
  if (::bind(impl_->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(impl_->fd, 16) != 0) {
    int err = errno;
    ::close(impl_->fd);
    throw Error("metrics endpoint: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " +
                std::strerror(err));
  }
  socklen_t len = sizeof addr;
  ::getsockname(impl_->fd, reinterpret_cast<sockaddr*>(&addr), &len);
  impl_->port = ntohs(addr.sin_port);
  impl_->thread = std::thread([impl = impl_.get()] { impl->loop(); });
}

MetricsServer::~MetricsServer() {
  impl_->stop = true;
  if (impl_->thread.joinable()) impl_->thread.join();
  ::close(impl_->fd);
}

std::uint16_t MetricsServer::port() const {
  return impl_->port;
}

}  // namespace verdant::energy
