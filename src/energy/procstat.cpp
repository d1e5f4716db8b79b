#include "verdant/energy/procstat.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "file_util.hpp"
#include "verdant/core/error.hpp"

namespace verdant::energy {

namespace fs = std::filesystem;
using detail::read_small_file;
using detail::read_small_file_or_throw;

namespace {

double clock_ticks() {
  static const double ticks = [] {
    long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? static_cast<double>(t) : 100.0;
  }();
  return ticks;
}

double page_size() {
  static const double size = [] {
    long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<double>(p) : 4096.0;
  }();
  return size;
}

struct ProcEntry {
  pid_t ppid = 0;
  double cpu_ticks = 0;
  double rss_pages = 0;
};

// Parses /proc/<pid>/stat. The command name may hold spaces and ')' so fields are counted
// from the last ')'. Returns false for anything unexpected (the process may be exiting).
bool parse_pid_stat(const std::string& text, ProcEntry* out) {
  auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  // Walk the space-separated fields without allocating: this runs for every process on
  // the machine at every sample. f is the field number (3 = state, just after the name).
  const char* p = text.c_str() + close + 1;
  double ticks = 0;
  bool have_ppid = false, have_rss = false;
  for (int f = 3; f <= 24 && *p; ++f) {
    while (*p == ' ') ++p;
    if (!*p) break;
    const char* start = p;
    while (*p && *p != ' ' && *p != '\n') ++p;
    if (f == 4) {
      out->ppid = static_cast<pid_t>(std::strtol(start, nullptr, 10));
      have_ppid = true;
    } else if (f >= 14 && f <= 17) {
      ticks += std::strtod(start, nullptr);
    } else if (f == 24) {
      out->rss_pages = std::strtod(start, nullptr);
      have_rss = true;
    }
  }
  out->cpu_ticks = ticks;
  return have_ppid && have_rss;
}

}  // namespace

MachineCpuTimes read_machine_cpu(const fs::path& proc_root) {
  const fs::path path = proc_root / "stat";
  return parse_machine_cpu(read_small_file_or_throw(path), path.string());
}

MachineCpuTimes parse_machine_cpu(const std::string& text, const std::string& source) {
  std::istringstream lines(text);
  std::string line;
  MachineCpuTimes t;
  bool found = false;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.rfind("cpu", 0) != 0) {
      if (found) break;  // the cpu lines come first; the rest (intr: thousands of counters)
      continue;          // is not needed
    }
    if (line.size() > 3 && line[3] != ' ') {
      ++t.cpus;
      continue;
    }
    std::istringstream in(line.substr(3));
    std::vector<double> v;
    double x;
    while (in >> x) v.push_back(x);
    if (v.size() < 4)
      throw Error(source + ":" + std::to_string(line_no) +
                  ": expected at least 4 counters on the cpu line");
    v.resize(8, 0.0);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    double busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    double idle = v[3] + v[4];
    t.busy_s = busy / clock_ticks();
    t.total_s = (busy + idle) / clock_ticks();
    found = true;
  }
  if (!found) throw Error(source + ": no aggregate 'cpu' line");
  if (t.cpus == 0) t.cpus = 1;
  return t;
}

namespace {

ProcessTreeUsage scan_tree(const fs::path& proc_root, pid_t root, std::vector<pid_t>* members) {
  std::unordered_map<pid_t, ProcEntry> procs;
  std::error_code ec;
  for (fs::directory_iterator it(proc_root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto text = read_small_file(it->path() / "stat");
    ProcEntry e;
    if (!text || !parse_pid_stat(*text, &e)) continue;  // exited meanwhile
    procs[static_cast<pid_t>(std::atol(name.c_str()))] = e;
  }
  ProcessTreeUsage usage;
  if (!procs.count(root)) return usage;
  std::unordered_map<pid_t, std::vector<pid_t>> children;
  for (auto& [pid, e] : procs) children[e.ppid].push_back(pid);
  std::vector<pid_t> todo{root};
  std::set<pid_t> seen;
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    if (!seen.insert(p).second) continue;
    const ProcEntry& e = procs[p];
    if (members) members->push_back(p);
    usage.cpu_s += e.cpu_ticks / clock_ticks();
    usage.rss_bytes += e.rss_pages * page_size();
    ++usage.processes;
    for (pid_t c : children[p]) todo.push_back(c);
  }
  return usage;
}

}  // namespace

ProcessTreeUsage read_process_tree(const fs::path& proc_root, pid_t root) {
  return scan_tree(proc_root, root, nullptr);
}

ProcessTreeUsage read_process_only(const fs::path& proc_root, pid_t root) {
  auto text = read_small_file(proc_root / std::to_string(root) / "stat");
  return text ? parse_process_stat(*text) : ProcessTreeUsage{};
}

ProcessTreeUsage parse_process_stat(const std::string& text) {
  ProcessTreeUsage usage;
  ProcEntry e;
  if (!parse_pid_stat(text, &e)) return usage;
  usage.cpu_s = e.cpu_ticks / clock_ticks();
  usage.rss_bytes = e.rss_pages * page_size();
  usage.processes = 1;
  return usage;
}

double read_mem_total_bytes(const fs::path& proc_root) {
  const fs::path path = proc_root / "meminfo";
  std::istringstream lines(read_small_file_or_throw(path));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream in(line.substr(9));
    double kb = 0;
    if (!(in >> kb) || kb <= 0) throw Error(path.string() + ": malformed MemTotal line");
    return kb * 1024.0;
  }
  throw Error(path.string() + ": no MemTotal line");
}

MemoryUsage read_memory_usage(const fs::path& proc_root) {
  const fs::path path = proc_root / "meminfo";
  std::istringstream lines(read_small_file_or_throw(path));
  std::string line;
  double total = -1, available = -1, free_etc = 0;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const double kb = std::strtod(line.c_str() + colon + 1, nullptr);
    if (key == "MemTotal") total = kb;
    if (key == "MemAvailable") available = kb;
    if (key == "MemFree" || key == "Buffers" || key == "Cached") free_etc += kb;
  }
  if (!(total > 0)) throw Error(path.string() + ": no MemTotal line");
  if (available < 0) available = free_etc;
  MemoryUsage m;
  m.total_bytes = total * 1024.0;
  m.used_bytes = std::clamp(total - available, 0.0, total) * 1024.0;
  return m;
}

namespace {

// A cpuinfo number: decimal, or hex with 0x (ARM's "CPU part"); -1 if it is neither.
int cpuinfo_number(const std::string& value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 0);
  return value.empty() || *end != '\0' || v < 0 || v > 1 << 20 ? -1 : static_cast<int>(v);
}

}  // namespace

CpuInfo read_cpuinfo(const fs::path& proc_root) {
  CpuInfo info;
  auto text = read_small_file(proc_root / "cpuinfo");
  if (!text) return info;
  std::istringstream lines(*text);
  std::string line;
  std::set<std::string> sockets;
  std::set<std::pair<std::string, std::string>> cores;
  std::string physical_id;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = detail::trim(line.substr(0, colon));
    std::string value = detail::trim(line.substr(colon + 1));
    if (key == "processor") {
      ++info.logical_cpus;
      physical_id.clear();
    }
    if (key == "model name" && info.model_name.empty()) info.model_name = value;
    if (key == "physical id") {
      sockets.insert(value);
      physical_id = value;
    }
    if (key == "core id") cores.insert({physical_id, value});
    // The first processor's description stands for all (one CPU model per machine).
    if (key == "siblings" && info.threads_per_socket == 0)
      info.threads_per_socket = std::max(0, cpuinfo_number(value));
    if (key == "cpu cores" && info.cores_per_socket == 0)
      info.cores_per_socket = std::max(0, cpuinfo_number(value));
    if ((key == "vendor_id" || key == "CPU implementer") && info.vendor.empty())
      info.vendor = value;
    if (key == "cpu family" && info.family < 0) info.family = cpuinfo_number(value);
    if ((key == "model" || key == "CPU part") && info.model < 0) info.model = cpuinfo_number(value);
    if (key == "stepping" && info.stepping < 0) info.stepping = cpuinfo_number(value);
    if (key == "flags" || key == "Features") {
      std::istringstream words(value);
      std::string w;
      while (words >> w) info.hypervisor = info.hypervisor || w == "hypervisor";
    }
  }
  info.sockets = sockets.empty() ? 1 : static_cast<int>(sockets.size());
  info.cores = static_cast<int>(cores.size());
  return info;
}

}  // namespace verdant::energy
