#pragma once
// Readers for Linux /proc: machine CPU time, a process tree's CPU time and memory, the CPU
// model. The proc root is a parameter so tests use fake trees in temporary folders.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace verdant::energy {

struct MachineCpuTimes {
  double busy_s = 0;   // user+nice+system+irq+softirq+steal, all CPUs
  double total_s = 0;  // busy + idle + iowait
  int cpus = 0;        // cpuN lines
};
// Throws verdant::Error naming the file when /proc/stat is missing or malformed.
MachineCpuTimes read_machine_cpu(const std::filesystem::path& proc_root);
// The same from the text of a /proc/stat; `source` names it in errors.
MachineCpuTimes parse_machine_cpu(const std::string& text, const std::string& source);

struct ProcessTreeUsage {
  double cpu_s = 0;      // utime+stime+cutime+cstime over the live tree (reaped children
                         // are already in their parent's cutime/cstime, so none counts twice)
  double rss_bytes = 0;  // resident memory of the live tree
  int processes = 0;
};
// The process `root` and all its live descendants. A root that does not exist -> zeros.
// Scans every /proc/<pid>/stat (tens of microseconds each on some kernels: ~5 ms for 120
// processes here). A cheaper partial scan was tried and dropped: descendants found late
// would bring CPU time from earlier intervals into one interval, and the per-interval share
// (capped at 1) would lose it.
ProcessTreeUsage read_process_tree(const std::filesystem::path& proc_root, pid_t root);
// Only `root` itself (its cutime/cstime still hold the children it has reaped): one file.
ProcessTreeUsage read_process_only(const std::filesystem::path& proc_root, pid_t root);
// The same from the text of /proc/<pid>/stat (zeros when it is malformed).
ProcessTreeUsage parse_process_stat(const std::string& text);

// MemTotal from meminfo, in bytes. Throws verdant::Error if missing.
double read_mem_total_bytes(const std::filesystem::path& proc_root);

struct MemoryUsage {
  double total_bytes = 0;  // MemTotal
  double used_bytes = 0;   // MemTotal - MemAvailable: what the machine's processes hold
};
// From meminfo. A kernel without MemAvailable (before 3.14) counts MemFree + Buffers +
// Cached as available. Throws verdant::Error naming the file when MemTotal is missing.
MemoryUsage read_memory_usage(const std::filesystem::path& proc_root);

struct CpuInfo {
  std::string model_name;  // first "model name" line; empty if absent
  int sockets = 1;         // distinct "physical id" values (1 if none listed)
  int logical_cpus = 0;    // "processor" entries: the CPUs this machine sees
  int cores = 0;           // distinct (physical id, core id) pairs among them; 0 if unlisted
  // What one socket has, as the CPU reports it ("siblings", "cpu cores"); 0 if unlisted.
  int threads_per_socket = 0;
  int cores_per_socket = 0;
  std::string vendor;  // "GenuineIntel", "AuthenticAMD"; ARM: "CPU implementer" (0x41)
  int family = -1;     // x86 "cpu family"; -1 if absent
  int model = -1;      // x86 "model"; ARM "CPU part" (0xd0c); -1 if absent
  int stepping = -1;
  bool hypervisor = false;  // "hypervisor" among the flags: running in a VM
};
CpuInfo read_cpuinfo(const std::filesystem::path& proc_root);

}  // namespace verdant::energy
