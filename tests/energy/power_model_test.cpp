// The power-model chooser on recorded /proc/cpuinfo and sysfs trees (tests/energy/data/
// machines/), the estimate's arithmetic against hand-computed values, power-model files, and
// calibration on a fake powercap tree whose counter follows a known linear model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "energy_test_util.hpp"
#include "support/error_helpers.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/calibrate.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/power_model.hpp"

namespace verdant::energy {
namespace {

namespace fs = std::filesystem;
using test_support::contains;
using test_support::error_of;
using testing::TempDir;
using testing::write_text;

const fs::path kMachines = fs::path(VERDANT_SOURCE_DIR) / "tests/energy/data/machines";
const fs::path kCcf = fs::path(VERDANT_SOURCE_DIR) / "data/hardware/ccf";
const fs::path kTdp = fs::path(VERDANT_SOURCE_DIR) / "data/hardware/cpu_tdp.csv";

// The rows these tests use, copied from data/hardware/ccf/coefficients-*-use.csv.
constexpr double kEpyc3AzureMin = 0.44538981119791665, kEpyc3AzureMax = 2.0193277994791665;
constexpr double kEpyc3GcpMin = 0.44538981119791665, kEpyc3GcpMax = 1.8719357994791666;
constexpr double kEpyc2AwsMin = 0.4015625, kEpyc2AwsMax = 1.671875;
constexpr double kCascadeMin[] = {0.5571428571428572, 0.6389493581523519, 0.6389493581523519};
constexpr double kCascadeMax[] = {3.6785714285714284, 3.9673047343937564, 3.6424520285114035};

long ticks() {
  return ::sysconf(_SC_CLK_TCK);
}

// A /proc with a recorded cpuinfo, and stat and meminfo the test moves on.
struct FakeProc {
  TempDir dir;
  fs::path proc = dir / "proc";
  explicit FakeProc(const std::string& machine, double mem_total_gb = 8, double mem_used_gb = 2) {
    write_text(proc / "cpuinfo", read_file_text(kMachines / machine / "cpuinfo"));
    set_memory(mem_total_gb, mem_used_gb);
    set_stat(1000, 1000);
  }
  void set_memory(double total_gb, double used_gb) {
    const auto kb = [](double gb) { return std::to_string(static_cast<long>(gb * 1024 * 1024)); };
    write_text(proc / "meminfo", "MemTotal:       " + kb(total_gb) + " kB\nMemFree:  1 kB\n" +
                                     "MemAvailable:   " + kb(total_gb - used_gb) + " kB\n");
  }
  void set_stat(long busy_ticks, long idle_ticks) {
    write_text(proc / "stat", "cpu  " + std::to_string(busy_ticks) + " 0 0 " +
                                  std::to_string(idle_ticks) + " 0 0 0 0 0 0\n" + cpu_lines() +
                                  "intr 0\n");
  }
  std::string cpu_lines() const {
    const int n = read_cpuinfo(proc).logical_cpus;
    std::string lines;
    for (int i = 0; i < n; ++i) lines += "cpu" + std::to_string(i) + " 1 0 0 1 0 0 0 0 0 0\n";
    return lines;
  }
  PowerModelOptions options() const {
    PowerModelOptions o;
    o.proc_root = proc;
    o.ccf_dir = kCcf;
    o.tdp_csv = kTdp;
    return o;
  }
};

// The recorded VM's cpuinfo with another model number, e.g. 17 for a Zen 4 Genoa slice.
void set_model(const FakeProc& p, int model) {
  std::string text = read_file_text(p.proc / "cpuinfo");
  for (auto at = text.find("model\t\t: 1\n"); at != std::string::npos;
       at = text.find("model\t\t: 1\n", at + 1))
    text.replace(at, 11, "model\t\t: " + std::to_string(model) + "\n");
  write_text(p.proc / "cpuinfo", text);
}

// ---- the chooser on recorded machines -----------------------------------------------------

TEST(PowerModel, VmSliceOfAnEpycUsesTheVcpuModel) {
  FakeProc p("epyc_vm_2vcpu");
  const CpuInfo cpu = read_cpuinfo(p.proc);
  EXPECT_TRUE(cpu.hypervisor);
  EXPECT_EQ(cpu.vendor, "AuthenticAMD");
  EXPECT_EQ(cpu.family, 25);
  EXPECT_EQ(cpu.model, 1);
  EXPECT_EQ(identify_microarchitecture(cpu).name, "Zen 3");

  const CpuPowerModel m = cpu_power_model(p.options());
  EXPECT_EQ(m.kind, "vCPU model");
  EXPECT_EQ(m.unit, "vCPU");
  EXPECT_EQ(m.cpus, 2);
  // No provider given: the mean of the two providers that have an EPYC 3rd Gen row.
  EXPECT_DOUBLE_EQ(m.idle_watts, (kEpyc3AzureMin + kEpyc3GcpMin) / 2);
  EXPECT_DOUBLE_EQ(m.full_watts, (kEpyc3AzureMax + kEpyc3GcpMax) / 2);
  EXPECT_DOUBLE_EQ(m.range_low, kEpyc3AzureMin);
  EXPECT_DOUBLE_EQ(m.range_high, kEpyc3AzureMax);
  const std::string d = m.describe();
  EXPECT_TRUE(contains(d,
                       "vCPU model, EPYC 3rd Gen coefficients (CCF azure, gcp) for AMD family "
                       "25 model 1 (Zen 3), VM: hypervisor flag"))
      << d;
  EXPECT_TRUE(contains(d, "range 0.445-2.02 W per vCPU")) << d;
  // The old figure on this VM was the socket's 85 W TDP x utilisation: the model is within
  // the few watts two vCPUs of a server CPU draw.
  EXPECT_LT(m.watts(1.0), 5.0);
}

TEST(PowerModel, TheCloudProvidersRowsAndTheClosestGenerationStandingIn) {
  FakeProc p("epyc_vm_2vcpu");
  PowerModelOptions o = p.options();
  o.cloud_provider = "gcp";
  CpuPowerModel m = cpu_power_model(o);
  EXPECT_DOUBLE_EQ(m.full_watts, kEpyc3GcpMax);
  EXPECT_TRUE(contains(m.describe(), "EPYC 3rd Gen coefficients (CCF gcp) for")) << m.describe();
  // AWS has no EPYC 3rd Gen row: its EPYC 2nd Gen row stands in, and the label says so.
  o.cloud_provider = "aws";
  m = cpu_power_model(o);
  EXPECT_DOUBLE_EQ(m.idle_watts, kEpyc2AwsMin);
  EXPECT_DOUBLE_EQ(m.full_watts, kEpyc2AwsMax);
  EXPECT_TRUE(contains(m.describe(),
                       "EPYC 2nd Gen coefficients (CCF aws) standing in for AMD "
                       "family 25 model 1 (Zen 3)"))
      << m.describe();
}

TEST(PowerModel, Zen4HasNoRowSoTheThirdGenerationStandsIn) {
  FakeProc p("epyc_vm_2vcpu");
  set_model(p, 17);  // Genoa
  const CpuPowerModel m = cpu_power_model(p.options());
  EXPECT_EQ(identify_microarchitecture(read_cpuinfo(p.proc)).name, "Zen 4");
  EXPECT_TRUE(contains(m.describe(),
                       "EPYC 3rd Gen coefficients (CCF azure, gcp) standing in for "
                       "AMD family 25 model 17 (Zen 4)"))
      << m.describe();
  EXPECT_DOUBLE_EQ(m.full_watts, (kEpyc3AzureMax + kEpyc3GcpMax) / 2);
}

TEST(PowerModel, UnrecognisedCpuOnAVmUsesTheProvidersMean) {
  FakeProc p("epyc_vm_2vcpu");
  set_model(p, 0x70);  // no such AMD model today
  std::string text = read_file_text(p.proc / "cpuinfo");
  for (auto at = text.find("cpu family\t: 25"); at != std::string::npos;
       at = text.find("cpu family\t: 25", at + 1))
    text.replace(at, 15, "cpu family\t: 99");
  write_text(p.proc / "cpuinfo", text);
  PowerModelOptions o = p.options();
  o.cloud_provider = "azure";
  const CpuPowerModel m = cpu_power_model(o);
  const auto rows = load_ccf_coefficients(kCcf);
  double min_sum = 0, max_sum = 0, lo = 1e9, hi = 0;
  int n = 0;
  for (const auto& r : rows)
    if (r.provider == "azure") {
      min_sum += r.min_watts, max_sum += r.max_watts, ++n;
      lo = std::min(lo, r.min_watts), hi = std::max(hi, r.max_watts);
    }
  ASSERT_EQ(n, 8);
  EXPECT_DOUBLE_EQ(m.idle_watts, min_sum / n);
  EXPECT_DOUBLE_EQ(m.full_watts, max_sum / n);
  EXPECT_DOUBLE_EQ(m.range_low, lo);
  EXPECT_DOUBLE_EQ(m.range_high, hi);
  EXPECT_TRUE(contains(m.describe(),
                       "the mean of azure's 8 CCF rows (CCF azure) standing in for "
                       "an unrecognised CPU, AMD family 99 model 112"))
      << m.describe();
}

TEST(PowerModel, BareMetalXeonInTheTdpTableUsesTheTdpCurve) {
  FakeProc p("xeon_6226r_2s");
  const CpuInfo cpu = read_cpuinfo(p.proc);
  EXPECT_FALSE(cpu.hypervisor);
  EXPECT_EQ(cpu.logical_cpus, 64);
  EXPECT_EQ(cpu.sockets, 2);
  EXPECT_EQ(cpu.cores, 32);
  EXPECT_EQ(cpu.threads_per_socket, 32);
  EXPECT_EQ(cpu.cores_per_socket, 16);
  EXPECT_EQ(identify_microarchitecture(cpu).name, "Cascade Lake");

  const CpuPowerModel m = cpu_power_model(p.options());
  EXPECT_EQ(m.kind, "TDP load curve");
  // 2 sockets x 150 W, idle share = mean Min / mean Max of the three Cascade Lake rows.
  const double r = (kCascadeMin[0] + kCascadeMin[1] + kCascadeMin[2]) /
                   (kCascadeMax[0] + kCascadeMax[1] + kCascadeMax[2]);
  EXPECT_NEAR(m.watts(0.0), 300.0 * r, 1e-9);
  EXPECT_NEAR(m.watts(1.0), 300.0, 1e-9);
  EXPECT_NEAR(m.watts(0.4), 300.0 * (r + (1 - r) * 0.4), 1e-9);
  EXPECT_TRUE(contains(m.describe(),
                       "2 sockets x 150 W TDP of 'Intel Xeon Gold 6226R' "
                       "(cpu_tdp.csv) x (0.16 + 0.84 u)"))
      << m.describe();
  EXPECT_TRUE(contains(m.describe(), "idle (share from CCF Cascade Lake Min/Max)"));
}

TEST(PowerModel, FewerCpusVisibleThanTheSocketHasIsAVm) {
  // The Xeon's first 8 logical CPUs only (a VM or a partitioned host without the flag).
  FakeProc p("xeon_6226r_2s");
  std::string text = read_file_text(p.proc / "cpuinfo");
  std::size_t cut = 0;
  for (int i = 0; i < 8; ++i) cut = text.find("\n\n", cut) + 2;
  write_text(p.proc / "cpuinfo", text.substr(0, cut));
  const CpuPowerModel m = cpu_power_model(p.options());
  EXPECT_EQ(m.kind, "vCPU model");
  EXPECT_EQ(m.cpus, 8);
  EXPECT_TRUE(contains(m.describe(), "VM: 8 of the sockets' 32 CPUs visible")) << m.describe();
}

TEST(PowerModel, UnknownCpuUsesCodeCarbon3sFourWattsPerThread) {
  FakeProc p("unknown_bare_metal");
  const CpuPowerModel m = cpu_power_model(p.options());
  EXPECT_EQ(m.kind, "CodeCarbon 3 default");
  EXPECT_EQ(m.unit, "thread");
  // CodeCarbon 3: TDP = 4 W x 4 threads = 16 W, power = TDP x (0.1 + 0.9 u^3).
  EXPECT_NEAR(m.watts(0.0), 1.6, 1e-12);
  EXPECT_NEAR(m.watts(0.5), 16.0 * (0.1 + 0.9 * 0.125), 1e-12);
  EXPECT_NEAR(m.watts(1.0), 16.0, 1e-12);
  EXPECT_TRUE(contains(m.describe(), "'Hygon C86 3185  8-core Processor' is not in cpu_tdp.csv"))
      << m.describe();
}

TEST(PowerModel, GivenTdpIsValidatedAndUsed) {
  FakeProc p("unknown_bare_metal");
  PowerModelOptions o = p.options();
  o.cpu_tdp_w = 40;
  CpuPowerModel m = cpu_power_model(o);
  EXPECT_EQ(m.kind, "TDP load curve");
  EXPECT_NEAR(m.watts(1.0), 40.0, 1e-12);
  o.cpu_tdp_w = -3;
  const std::string e = error_of([&] { cpu_power_model(o); });
  EXPECT_TRUE(contains(e, "cpu_tdp must be a positive number of watts, got -3")) << e;
}

TEST(PowerModel, MachineWithRaplIsMeasuredAndTheModelFileIsNotUsed) {
  FakeProc p("xeon_6226r_2s");  // the Xeon of rapl_xeon/powercap
  MeterOptions o;
  o.powercap_root = kMachines / "rapl_xeon/powercap";
  o.use_nvml = false;
  o.estimate.proc_root = p.proc;
  o.estimate.power_model = p.dir / "fit.json";  // never read: RAPL wins
  MeterSet set = select_meters(o);
  ASSERT_EQ(set.meters.size(), 1u);
  EXPECT_EQ(set.meters[0]->name(), "rapl");
  EXPECT_TRUE(set.meters[0]->measured());
  EXPECT_EQ(set.meters[0]->source(), "measured (rapl: 2 packages + 1 dram)");
  ASSERT_EQ(set.warnings.size(), 1u);
  EXPECT_TRUE(contains(set.warnings[0], "not used: RAPL is readable")) << set.warnings[0];
}

// ---- the estimate's arithmetic ---------------------------------------------------------

TEST(PowerModel, EstimateMeterIntegratesTheVcpuModelAndMemoryInUse) {
  FakeProc p("epyc_vm_2vcpu", 8.0, 2.0);
  EstimateOptions o;
  static_cast<PowerModelOptions&>(o) = p.options();
  auto meter = make_estimate_meter(o);
  EXPECT_FALSE(meter->measured());
  EXPECT_EQ(meter->source(Domain::cpu).rfind("estimated (vCPU model, ", 0), 0u);
  EXPECT_EQ(meter->source(Domain::dram),
            "estimated (RAM 0.392 W/GB x memory in use, Cloud Carbon Footprint's coefficient)");
  const double idle = (kEpyc3AzureMin + kEpyc3GcpMin) / 2;
  const double full = (kEpyc3AzureMax + kEpyc3GcpMax) / 2;
  // One second on two vCPUs (2 x ticks of CPU time), a quarter of it busy.
  p.set_stat(1000 + ticks() / 2, 1000 + 3 * ticks() / 2);
  Joules j = meter->read();
  EXPECT_NEAR(j[Domain::cpu], 2 * (idle + 0.25 * (full - idle)), 1e-9);
  EXPECT_NEAR(j[Domain::dram], 0.392 * 2.0, 1e-9);  // 2 GB in use of 8
  // Then two seconds fully busy with 6 GB in use.
  p.set_memory(8.0, 6.0);
  p.set_stat(1000 + ticks() / 2 + 4 * ticks(), 1000 + 3 * ticks() / 2);
  j = meter->read();
  EXPECT_NEAR(j[Domain::cpu], 2 * (idle + 0.25 * (full - idle)) + 2 * 2 * full, 1e-9);
  EXPECT_NEAR(j[Domain::dram], 0.392 * 2.0 + 0.392 * 6.0 * 2, 1e-9);
}

// ---- power-model files and calibration ---------------------------------------------------

// A powercap tree and /proc whose package counter follows watts = a + b x utilisation (plus
// a small deterministic wobble, as a real counter has) while the fake workload "runs".
struct FakeRaplMachine {
  FakeProc p{"xeon_6226r_2s"};
  fs::path powercap = p.dir / "powercap";
  double a = 60, b = 180;  // W for the whole machine
  double uj = 1'000'000, busy = 1000, idle = 1000;
  int level = 0;

  FakeRaplMachine() {
    write_text(powercap / "intel-rapl:0/name", "package-0\n");
    write_text(powercap / "intel-rapl:0/max_energy_range_uj", "262143328850\n");
    write_counter();
  }
  void write_counter() {
    write_text(powercap / "intel-rapl:0/energy_uj", std::to_string(static_cast<long long>(uj)));
  }
  // The machine reaches the duty cycle's utilisation plus a little background load.
  void run(double load, double seconds, int threads) {
    const int cpus = 64;
    const double u = std::min(1.0, load * threads / cpus + 0.02);
    const double wobble = 1.0 + 0.004 * ((level++ % 3) - 1);
    uj += (a + b * u) * wobble * seconds * 1e6;
    busy += u * cpus * seconds * ticks();
    idle += (1 - u) * cpus * seconds * ticks();
    write_counter();
    p.set_stat(static_cast<long>(busy), static_cast<long>(idle));
  }
};

TEST(Calibration, FitRecoversAKnownLinearModelWithinTwoPercent) {
  FakeRaplMachine fake;
  CalibrationOptions o;
  o.powercap_root = fake.powercap;
  o.proc_root = fake.p.proc;
  o.seconds_per_level = 5;
  o.workload = [&](double load, double seconds, int threads) { fake.run(load, seconds, threads); };
  std::vector<std::string> log;
  o.log = [&](const std::string& line) { log.push_back(line); };
  const PowerModelFit fit = calibrate(o);
  EXPECT_EQ(fit.cpus, 64);
  EXPECT_EQ(fit.points.size(), 5u);
  EXPECT_EQ(log.size(), 5u);
  EXPECT_EQ(fit.counter, "rapl: 1 package");
  EXPECT_EQ(fit.cpu_model, "Intel(R) Xeon(R) Gold 6226R CPU @ 2.90GHz");
  EXPECT_NEAR(fit.idle_watts * 64, fake.a, 0.02 * fake.a);
  EXPECT_NEAR(fit.full_watts * 64, fake.a + fake.b, 0.02 * (fake.a + fake.b));
  EXPECT_LT(fit.max_residual, 0.02);

  // Saved and read back, it is what a twin machine's estimate uses.
  save_power_model(fake.p.dir / "fit.json", fit);
  const PowerModelFit back = load_power_model(fake.p.dir / "fit.json");
  EXPECT_DOUBLE_EQ(back.idle_watts, fit.idle_watts);
  EXPECT_DOUBLE_EQ(back.full_watts, fit.full_watts);
  EXPECT_EQ(back.points.size(), 5u);

  FakeProc twin("xeon_6226r_2s");
  PowerModelOptions po = twin.options();
  po.power_model = fake.p.dir / "fit.json";
  const CpuPowerModel m = cpu_power_model(po);
  EXPECT_EQ(m.kind, "calibrated model");
  EXPECT_TRUE(m.warnings.empty());
  EXPECT_NEAR(m.watts(0.5), 64 * (fit.idle_watts + 0.5 * (fit.full_watts - fit.idle_watts)), 1e-9);
  EXPECT_TRUE(contains(m.describe(), "fitted with rapl: 1 package on 'Intel(R) Xeon(R) Gold 6226R"))
      << m.describe();

  // On another CPU model the fit is still used, with a warning.
  FakeProc other("epyc_vm_2vcpu");
  po.proc_root = other.proc;
  EXPECT_EQ(cpu_power_model(po).warnings.size(), 1u);
}

TEST(Calibration, NoReadableCounterOrAFlatCounterIsOneClearError) {
  FakeRaplMachine fake;
  CalibrationOptions o;
  o.proc_root = fake.p.proc;
  o.powercap_root = fake.p.dir / "no-such-tree";
  o.workload = [&](double load, double seconds, int threads) { fake.run(load, seconds, threads); };
  std::string e = error_of([&] { calibrate(o); });
  EXPECT_TRUE(contains(e, "calibrate needs a readable RAPL counter: ")) << e;

  o.powercap_root = fake.powercap;
  o.workload = [&](double, double seconds, int) {  // time passes, the counter stands still
    fake.busy += 64 * seconds * ticks() * 0.5;
    fake.idle += 64 * seconds * ticks() * 0.5;
    fake.p.set_stat(static_cast<long>(fake.busy), static_cast<long>(fake.idle));
  };
  e = error_of([&] { calibrate(o); });
  EXPECT_TRUE(contains(e, "the RAPL counter did not advance")) << e;

  o.loads = {0.5};
  e = error_of([&] { calibrate(o); });
  EXPECT_TRUE(contains(e, "loads needs at least 2 levels")) << e;
}

TEST(Calibration, FitNeedsUtilisationThatVaries) {
  std::vector<CalibrationPoint> same = {{0, 0.50, 1, 10}, {1, 0.52, 1, 11}};
  std::string e = error_of([&] { fit_power_model(same, 2); });
  EXPECT_TRUE(contains(e, "only ranged from 50.0% to 52.0%")) << e;
  std::vector<CalibrationPoint> falling = {{0, 0.0, 1, 20}, {1, 1.0, 1, 10}};
  e = error_of([&] { fit_power_model(falling, 2); });
  EXPECT_TRUE(contains(e, "did not rise with load")) << e;
}

TEST(PowerModelFile, DefectsNameTheFileAndField) {
  TempDir t;
  write_text(t / "a.json", "not json");
  std::string e = error_of([&] { load_power_model(t / "a.json"); });
  EXPECT_TRUE(contains(e, "a.json: not a power model (not JSON)")) << e;
  write_text(t / "b.json", R"({"format": "verdant power model", "cpu_model": "x", "counter": "c",
    "fitted_at": "t", "cpus": 2, "idle_watts_per_cpu": 5, "full_watts_per_cpu": 1,
    "max_residual": 0})");
  e = error_of([&] { load_power_model(t / "b.json"); });
  EXPECT_TRUE(contains(e, "b.json: needs 0 <= \"idle_watts_per_cpu\" <= \"full_watts_per_cpu\""))
      << e;
  write_text(t / "c.json", R"({"format": "verdant power model", "cpu_model": 3})");
  e = error_of([&] { load_power_model(t / "c.json"); });
  EXPECT_TRUE(contains(e, "c.json: \"cpu_model\" must be a string")) << e;
  e = error_of([&] { load_power_model(t / "missing.json"); });
  EXPECT_TRUE(contains(e, "missing.json: No such file")) << e;

  // Through the chooser the error names the setting.
  FakeProc p("epyc_vm_2vcpu");
  PowerModelOptions o = p.options();
  o.power_model = t / "a.json";
  try {
    cpu_power_model(o);
    FAIL();
  } catch (const SettingError& err) {
    EXPECT_EQ(err.setting(), "power_model");
  }
}

TEST(Ccf, TablesLoadWithEveryProvider) {
  const auto rows = load_ccf_coefficients(kCcf);
  EXPECT_EQ(rows.size(), 11u + 8u + 8u);
  EXPECT_EQ(rows.front().provider, "aws");
  TempDir t;
  write_text(t / "coefficients-x-use.csv",
             ",Architecture,Min Watts,Max Watts,GB/Chip\n0,A,2,1,8\n");
  const std::string e = error_of([&] { load_ccf_coefficients(t.path()); });
  EXPECT_TRUE(contains(e, "coefficients-x-use.csv:2: Min Watts must not exceed Max Watts")) << e;
  EXPECT_EQ(cloud_provider_of("AWS:us-east-1"), "aws");
  EXPECT_EQ(cloud_provider_of(""), "");
}

}  // namespace
}  // namespace verdant::energy
