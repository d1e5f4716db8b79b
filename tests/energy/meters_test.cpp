// RAPL on fake powercap trees, the estimate on fake /proc trees, /proc readers.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "energy_test_util.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/procstat.hpp"

namespace verdant::energy {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text;

void make_zone(const fs::path& root, const std::string& dir, const std::string& name,
               long long energy_uj, long long max_uj = 262143328850LL) {
  write_text(root / dir / "name", name + "\n");
  write_text(root / dir / "energy_uj", std::to_string(energy_uj) + "\n");
  write_text(root / dir / "max_energy_range_uj", std::to_string(max_uj) + "\n");
}
void set_energy(const fs::path& root, const std::string& dir, long long energy_uj) {
  write_text(root / dir / "energy_uj", std::to_string(energy_uj) + "\n");
}

TEST(Rapl, TwoSocketsWithDramSkipsCoreAndPsys) {
  TempDir t;
  make_zone(t.path(), "intel-rapl:0", "package-0", 1'000'000);
  make_zone(t.path(), "intel-rapl:1", "package-1", 5'000'000);
  make_zone(t.path(), "intel-rapl:0:0", "core", 700'000);
  make_zone(t.path(), "intel-rapl:0:1", "dram", 200'000);
  make_zone(t.path(), "intel-rapl:2", "psys", 9'000'000);
  auto meter = make_rapl_meter(t.path());
  EXPECT_TRUE(meter->measured());
  EXPECT_EQ(meter->name(), "rapl");
  EXPECT_EQ(meter->source(), "measured (rapl: 2 packages + 1 dram)");

  set_energy(t.path(), "intel-rapl:0", 3'000'000);    // +2 J
  set_energy(t.path(), "intel-rapl:1", 5'500'000);    // +0.5 J
  set_energy(t.path(), "intel-rapl:0:0", 9'700'000);  // core: inside the package, ignored
  set_energy(t.path(), "intel-rapl:0:1", 1'200'000);  // +1 J dram
  set_energy(t.path(), "intel-rapl:2", 99'000'000);   // psys: ignored
  Joules j = meter->read();
  EXPECT_DOUBLE_EQ(j[Domain::cpu], 2.5);
  EXPECT_DOUBLE_EQ(j[Domain::dram], 1.0);
  EXPECT_DOUBLE_EQ(j[Domain::gpu], 0.0);

  set_energy(t.path(), "intel-rapl:0", 4'000'000);  // +1 J more, cumulative 3.5 J
  EXPECT_DOUBLE_EQ(meter->read()[Domain::cpu], 3.5);
}

TEST(Rapl, WraparoundIsCorrectedWithMaxEnergyRange) {
  TempDir t;
  make_zone(t.path(), "intel-rapl:0", "package-0", 900'000, 1'000'000);
  auto meter = make_rapl_meter(t.path());
  set_energy(t.path(), "intel-rapl:0", 100'000);  // wrapped: 100k to max, then 100k
  EXPECT_NEAR(meter->read()[Domain::cpu], 0.2, 1e-12);
  set_energy(t.path(), "intel-rapl:0", 50'000);  // wrapped again: +950k
  EXPECT_NEAR(meter->read()[Domain::cpu], 1.15, 1e-12);
  set_energy(t.path(), "intel-rapl:0", 60'000);  // no wrap: +10k
  EXPECT_NEAR(meter->read()[Domain::cpu], 1.16, 1e-12);
}

TEST(Rapl, AmdRaplNamesAreRead) {
  TempDir t;
  make_zone(t.path(), "amd-rapl:0", "package-0", 0);
  auto meter = make_rapl_meter(t.path());
  set_energy(t.path(), "amd-rapl:0", 2'000'000);
  EXPECT_DOUBLE_EQ(meter->read()[Domain::cpu], 2.0);
  EXPECT_EQ(meter->domains().size(), 1u);
}

TEST(Rapl, UnreadableCounterNamesTheFile) {
  // We may run as root, where chmod 000 does not stop a read; a directory where the
  // counter should be fails for everyone, with EISDIR.
  TempDir t;
  make_zone(t.path(), "intel-rapl:0", "package-0", 0);
  fs::remove(t / "intel-rapl:0/energy_uj");
  fs::create_directories(t / "intel-rapl:0/energy_uj");
  try {
    make_rapl_meter(t.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("intel-rapl:0/energy_uj"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Is a directory"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(Rapl, PermissionDeniedWhenNotRoot) {
  TempDir t;
  make_zone(t.path(), "intel-rapl:0", "package-0", 0);
  ::chmod((t / "intel-rapl:0/energy_uj").c_str(), 0);
  if (::access((t / "intel-rapl:0/energy_uj").c_str(), R_OK) == 0)
    GTEST_SKIP() << "running as root: chmod 000 does not deny reads (see the EISDIR test)";
  try {
    make_rapl_meter(t.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
}

TEST(Rapl, MissingTreeAndGarbageCounter) {
  TempDir t;
  EXPECT_THROW(make_rapl_meter(t / "nope"), Error);
  EXPECT_THROW(make_rapl_meter(t.path()), Error);  // exists but has no zones
  make_zone(t.path(), "intel-rapl:0", "package-0", 0);
  write_text(t / "intel-rapl:0/energy_uj", "abc\n");
  try {
    make_rapl_meter(t.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("energy_uj: expected a non-negative integer"),
              std::string::npos)
        << e.what();
  }
}

// ---- fake /proc for the estimate --------------------------------------------------------

long ticks() {
  return ::sysconf(_SC_CLK_TCK);
}

void write_stat(const fs::path& proc, long busy_ticks, long idle_ticks) {
  // Two CPUs; the aggregate line carries everything.
  write_text(proc / "stat", "cpu  " + std::to_string(busy_ticks) + " 0 0 " +
                                std::to_string(idle_ticks) +
                                " 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n"
                                "cpu1 1 0 0 1 0 0 0 0 0 0\nintr 0\n");
}

// A bare-metal machine of two CPUs (no hypervisor flag, both of the socket's CPUs visible);
// `mem_gb` installed, a quarter of it in use.
void write_fake_proc(const fs::path& proc, const std::string& model, double mem_gb) {
  const std::string cpu = "\nmodel name\t: " + model + "\nphysical id\t: 0\nsiblings\t: 2\n";
  write_text(proc / "cpuinfo", "processor\t: 0" + cpu + "\nprocessor\t: 1" + cpu);
  const auto kb = [](double gb) { return std::to_string(static_cast<long>(gb * 1024 * 1024)); };
  write_text(proc / "meminfo", "MemTotal:       " + kb(mem_gb) + " kB\nMemFree: 1 kB\n" +
                                   "MemAvailable:   " + kb(mem_gb * 0.75) + " kB\n");
  write_stat(proc, 1000, 1000);
}

// One Cloud Carbon Footprint row whose Min/Max is 0.25: the TDP curve's idle share.
fs::path write_ccf(const TempDir& t) {
  write_text(t / "ccf/coefficients-test-use.csv",
             ",Architecture,Min Watts,Max Watts,GB/Chip\n0,Test Lake,1.0,4.0,16.0\n");
  return t / "ccf";
}

const char* kTable =
    "Name,TDP\n"
    "Intel Xeon E5-2620,95.0\n"
    "Intel Xeon E5-2620 v3,85\n"
    "\"Intel EP80579 Integrated, 1066 MHz\",18.0\n"
    "AMD EPYC 7282,120.0\n";

TEST(Estimate, TdpCurveTimesUtilisationPlusRamInUse) {
  TempDir t;
  write_fake_proc(t / "proc", "Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz", 8.0);
  write_text(t / "tdp.csv", kTable);
  EstimateOptions o;
  o.proc_root = t / "proc";
  o.tdp_csv = t / "tdp.csv";
  o.ccf_dir = write_ccf(t);
  auto meter = make_estimate_meter(o);
  EXPECT_FALSE(meter->measured());
  EXPECT_NE(meter->source().find("estimated (TDP load curve, 1 socket x 85 W TDP of 'Intel Xeon "
                                 "E5-2620 v3' (cpu_tdp.csv) x (0.25 + 0.75 u)"),
            std::string::npos)
      << meter->source();
  EXPECT_NE(meter->source().find("RAM 0.392 W/GB x memory in use"), std::string::npos)
      << meter->source();
  // One second on two CPUs = 2*ticks of CPU time, half of it busy: 50% utilisation.
  write_stat(t / "proc", 1000 + ticks(), 1000 + ticks());
  Joules j = meter->read();
  EXPECT_NEAR(j[Domain::cpu], 85.0 * (0.25 + 0.75 * 0.5) * 1.0, 1e-9);
  EXPECT_NEAR(j[Domain::dram], 0.392 * 2.0 * 1.0, 1e-9);  // 2 GB of 8 in use
  // Next second fully busy.
  write_stat(t / "proc", 1000 + 3 * ticks(), 1000 + ticks());
  j = meter->read();
  EXPECT_NEAR(j[Domain::cpu], 85.0 * 0.625 + 85.0, 1e-9);
  EXPECT_NEAR(j[Domain::dram], 0.392 * 2.0 * 2, 1e-9);
}

TEST(Estimate, ItsProcStatReadingServesATrackerOnTheSameRoot) {
  TempDir t;
  write_fake_proc(t / "proc", "AMD EPYC", 4.0);
  EstimateOptions o;
  o.proc_root = t / "proc";
  o.cpu_tdp_w = 100;
  auto meter = make_estimate_meter(o);
  write_stat(t / "proc", 1000 + 2 * ticks(), 1000);  // rewritten in place, as /proc's are
  meter->read();
  const MachineCpuTimes* seen = meter->machine_cpu(t / "proc");
  ASSERT_NE(seen, nullptr);
  EXPECT_DOUBLE_EQ(seen->busy_s, (1000.0 + 2 * ticks()) / ticks());
  EXPECT_EQ(seen->cpus, 2);
  EXPECT_EQ(meter->machine_cpu("/proc"), nullptr);  // another root: the tracker reads its own
}

TEST(Estimate, UnknownModelUsesCodeCarbon3sDefault) {
  TempDir t;
  write_fake_proc(t / "proc", "AMD EPYC", 4.0);  // a bare family name: not in the table
  write_text(t / "tdp.csv", kTable);
  EstimateOptions o;
  o.proc_root = t / "proc";
  o.tdp_csv = t / "tdp.csv";
  o.ccf_dir = write_ccf(t);
  auto meter = make_estimate_meter(o);
  EXPECT_NE(meter->source().find("estimated (CodeCarbon 3 default, 'AMD EPYC' is not in "
                                 "cpu_tdp.csv: 2 threads x 4 W x (0.1 + 0.9 u^3)"),
            std::string::npos)
      << meter->source();
  write_stat(t / "proc", 1000 + 2 * ticks(), 1000);  // one second, both threads busy
  EXPECT_NEAR(meter->read()[Domain::cpu], 8.0, 1e-9);
}

TEST(Estimate, GivenTdpOverridesTheTable) {
  TempDir t;
  write_fake_proc(t / "proc", "AMD EPYC 7282 16-Core Processor", 1.0);
  EstimateOptions o;
  o.proc_root = t / "proc";
  o.tdp_csv = t / "missing.csv";  // not read when the TDP is given
  o.ccf_dir = write_ccf(t);
  o.cpu_tdp_w = 200;
  auto meter = make_estimate_meter(o);
  write_stat(t / "proc", 1000 + 2 * ticks(), 1000);
  EXPECT_NEAR(meter->read()[Domain::cpu], 200.0, 1e-9);
}

TEST(TdpTable, MatchesRealTableFuzzily) {
  const fs::path table = fs::path(VERDANT_SOURCE_DIR) / "data/hardware/cpu_tdp.csv";
  TdpMatch m = match_cpu_tdp("AMD EPYC 7282 16-Core Processor", table);
  EXPECT_TRUE(m.known);
  EXPECT_EQ(m.table_name, "AMD EPYC 7282");
  EXPECT_DOUBLE_EQ(m.watts, 120.0);
  m = match_cpu_tdp("Intel(R) Xeon(R) Gold 6226R CPU @ 2.90GHz", table);
  EXPECT_TRUE(m.known);
  EXPECT_DOUBLE_EQ(m.watts, 150.0);
  m = match_cpu_tdp("Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz", table);
  EXPECT_EQ(m.table_name, "Intel Xeon E5-2620 v3");
  // A bare family name matches 148 EPYC models with different TDPs: none is chosen.
  m = match_cpu_tdp("AMD EPYC", table);
  EXPECT_FALSE(m.known);
  EXPECT_DOUBLE_EQ(m.watts, 0.0);
}

TEST(TdpTable, MalformedLineNamesFileAndLine) {
  TempDir t;
  write_text(t / "tdp.csv", "Name,TDP\nGood CPU 1,10\nBad CPU 2\n");
  try {
    match_cpu_tdp("x", t / "tdp.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tdp.csv:3: expected 'Name,TDP'"), std::string::npos)
        << e.what();
  }
  write_text(t / "tdp1.csv", "Name,TDP\nGood CPU 1,\n");
  EXPECT_THROW(match_cpu_tdp("x", t / "tdp1.csv"), Error);
  // A value that is not a number (a range "27.29.5" in the real table) is skipped, counted.
  write_text(t / "tdp3.csv", "Name,TDP\nOld CPU 1000A,27.29.5\nNew CPU 2000,30\n");
  TdpMatch m = match_cpu_tdp("Old CPU 1000A", t / "tdp3.csv");
  EXPECT_FALSE(m.known);
  EXPECT_EQ(m.skipped_rows, 1);
  EXPECT_TRUE(match_cpu_tdp("New CPU 2000 @ 3GHz", t / "tdp3.csv").known);
  write_text(t / "tdp2.csv", "Model,Watts\n");
  EXPECT_THROW(match_cpu_tdp("x", t / "tdp2.csv"), Error);
}

TEST(Selection, UnreadableRaplFallsBackToEstimateWithReason) {
  TempDir t;
  make_zone(t / "powercap", "intel-rapl:0", "package-0", 0);
  fs::remove(t / "powercap/intel-rapl:0/energy_uj");
  fs::create_directories(t / "powercap/intel-rapl:0/energy_uj");
  write_fake_proc(t / "proc", "AMD EPYC", 2.0);
  write_text(t / "tdp.csv", kTable);
  MeterOptions o;
  o.powercap_root = t / "powercap";
  o.use_nvml = false;
  o.estimate.proc_root = t / "proc";
  o.estimate.tdp_csv = t / "tdp.csv";
  o.estimate.ccf_dir = write_ccf(t);
  MeterSet set = select_meters(o);
  ASSERT_EQ(set.meters.size(), 1u);
  EXPECT_EQ(set.meters[0]->name(), "estimate");
  ASSERT_EQ(set.warnings.size(), 1u);
  EXPECT_EQ(set.warnings[0],
            "RAPL unreadable: " + (t / "powercap/intel-rapl:0/energy_uj").string() +
                ": Is a directory; using the estimate");
}

TEST(Selection, ReadableRaplIsPreferred) {
  TempDir t;
  make_zone(t / "powercap", "intel-rapl:0", "package-0", 0);
  MeterOptions o;
  o.powercap_root = t / "powercap";
  o.use_nvml = false;
  MeterSet set = select_meters(o);
  ASSERT_EQ(set.meters.size(), 1u);
  EXPECT_EQ(set.meters[0]->name(), "rapl");
  EXPECT_TRUE(set.warnings.empty());
}

// ---- /proc readers ---------------------------------------------------------------------

std::string pid_stat(int pid, const std::string& comm, int ppid, long utime, long stime,
                     long cutime, long cstime, long rss_pages) {
  // Fields 1..24 of /proc/<pid>/stat; the rest are irrelevant here.
  return std::to_string(pid) + " (" + comm + ") S " + std::to_string(ppid) +
         " 1 1 0 -1 4194304 0 0 0 0 " + std::to_string(utime) + " " + std::to_string(stime) + " " +
         std::to_string(cutime) + " " + std::to_string(cstime) + " 20 0 1 0 100 1000 " +
         std::to_string(rss_pages) + " 0 0 0\n";
}

TEST(ProcStat, ProcessTreeSumsLiveDescendantsOnly) {
  TempDir t;
  const fs::path proc = t / "proc";
  const long tk = ticks();
  write_text(proc / "10/stat", pid_stat(10, "trainer", 1, tk, tk, 2 * tk, 0, 100));
  write_text(proc / "11/stat", pid_stat(11, "odd ) name (x", 10, tk, 0, 0, 0, 50));
  write_text(proc / "12/stat", pid_stat(12, "grandchild", 11, 3 * tk, 0, 0, 0, 10));
  write_text(proc / "13/stat", pid_stat(13, "stranger", 1, 100 * tk, 0, 0, 0, 999));
  write_text(proc / "14/stat", "garbage");  // a process caught while exiting
  ProcessTreeUsage u = read_process_tree(proc, 10);
  EXPECT_EQ(u.processes, 3);
  EXPECT_NEAR(u.cpu_s, 2 + 2 + 1 + 3, 1e-9);
  EXPECT_NEAR(u.rss_bytes, 160.0 * ::sysconf(_SC_PAGESIZE), 1e-6);
  EXPECT_EQ(read_process_tree(proc, 99).processes, 0);
}

TEST(ProcStat, MachineTimesAndRealProc) {
  TempDir t;
  write_stat(t / "proc", 300, 100);
  MachineCpuTimes m = read_machine_cpu(t / "proc");
  EXPECT_EQ(m.cpus, 2);
  EXPECT_NEAR(m.busy_s, 300.0 / ticks(), 1e-9);
  EXPECT_NEAR(m.total_s, 400.0 / ticks(), 1e-9);
  write_text(t / "bad/stat", "cpu  1 2\n");
  EXPECT_THROW(read_machine_cpu(t / "bad"), Error);
  EXPECT_THROW(read_machine_cpu(t / "missing"), Error);

  // The real /proc: this process is found and has used some CPU.
  ProcessTreeUsage self = read_process_tree("/proc", ::getpid());
  EXPECT_GE(self.processes, 1);
  EXPECT_GT(self.rss_bytes, 0);
  EXPECT_GT(read_mem_total_bytes("/proc"), 0);
  const MemoryUsage mem = read_memory_usage("/proc");
  EXPECT_GT(mem.used_bytes, 0);
  EXPECT_LT(mem.used_bytes, mem.total_bytes);
}

TEST(ProcStat, MemoryInUseWithAndWithoutMemAvailable) {
  TempDir t;
  write_text(t / "a/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n");
  MemoryUsage m = read_memory_usage(t / "a");
  EXPECT_DOUBLE_EQ(m.total_bytes, 1000 * 1024.0);
  EXPECT_DOUBLE_EQ(m.used_bytes, 400 * 1024.0);
  // Kernels before 3.14: free + buffers + cached is what is available.
  write_text(t / "b/meminfo",
             "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n");
  EXPECT_DOUBLE_EQ(read_memory_usage(t / "b").used_bytes, 600 * 1024.0);
  write_text(t / "c/meminfo", "MemFree: 100 kB\n");
  EXPECT_THROW(read_memory_usage(t / "c"), Error);
}

}  // namespace
}  // namespace verdant::energy
