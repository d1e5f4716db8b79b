// The tracker with a scripted meter: phases, RAII guards, sampling thread, attribution,
// carbon (constant, series, series that does not cover the run) and cost.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "energy_test_util.hpp"
#include "support/error_helpers.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/tracker.hpp"

namespace verdant::energy {
namespace {

using testing::TempDir;

// Each read adds 10 J cpu, 2 J dram, 4 J gpu to the machine's cumulative totals.
class ScriptedMeter : public Meter {
 public:
  explicit ScriptedMeter(std::atomic<int>* reads, bool measured = true)
      : reads_(reads), measured_(measured) {}
  Joules read() override {
    ++*reads_;
    total_[Domain::cpu] += 10;
    total_[Domain::dram] += 2;
    total_[Domain::gpu] += 4;
    return total_;
  }
  std::string name() const override { return "scripted"; }
  bool measured() const override { return measured_; }
  std::vector<Domain> domains() const override { return {Domain::cpu, Domain::dram, Domain::gpu}; }
  std::string source() const override { return measured_ ? "measured (test)" : "estimated (test)"; }

 private:
  std::atomic<int>* reads_;
  bool measured_;
  Joules total_;
};

MeterSet scripted(std::atomic<int>* reads, bool measured = true) {
  MeterSet set;
  set.meters.push_back(std::make_unique<ScriptedMeter>(reads, measured));
  return set;
}

void burn_cpu(std::chrono::milliseconds ms) {
  auto end = std::chrono::steady_clock::now() + ms;
  volatile double x = 1;
  while (std::chrono::steady_clock::now() < end)
    for (int i = 0; i < 10000; ++i) x = x * 1.0000001 + 1e-9;
}

TrackerOptions quiet_options(const TempDir& t) {
  TrackerOptions o;
  o.interval_s = 3600;  // no background samples: only phase boundaries sample
  o.lease.lock_path = t / "machine.lock";
  o.lease.use_rank_env = false;
  return o;
}

TEST(Tracker, PhasesCarbonAndCost) {
  TempDir t;
  std::atomic<int> reads{0};
  TrackerOptions o = quiet_options(t);
  o.price_per_kwh = 0.25;
  Tracker tracker(scripted(&reads), CarbonIntensity::constant(100.0, "test 100 g/kWh", 1.5), o);
  tracker.start();
  PhaseResult train;
  {
    auto guard = tracker.phase("train");
    burn_cpu(std::chrono::milliseconds(80));
    train = guard.end();
  }
  PhaseResult total = tracker.stop();

  // One read at each boundary: exactly one scripted step inside the phase.
  EXPECT_TRUE(train.machine_reported);
  EXPECT_DOUBLE_EQ(train.machine[Domain::cpu], 10);
  EXPECT_DOUBLE_EQ(train.machine[Domain::dram], 2);
  EXPECT_DOUBLE_EQ(train.machine[Domain::gpu], 4);
  // This process burned CPU: it gets a real, partial share of the cpu; all of the GPU.
  EXPECT_GT(train.process[Domain::cpu], 0);
  EXPECT_LE(train.process[Domain::cpu], 10);
  EXPECT_GT(train.cpu_share, 0);
  EXPECT_LE(train.process[Domain::dram], 2);
  EXPECT_DOUBLE_EQ(train.process[Domain::gpu], 4);
  EXPECT_GT(train.duration_s, 0.07);
  EXPECT_TRUE(train.measured[0]);
  EXPECT_EQ(train.source[0], "measured (test)");
  // Emissions and cost apply PUE 1.5 to the process share.
  EXPECT_NEAR(train.emissions_kg, train.kwh() * 1.5 * 100.0 / 1000.0, 1e-15);
  ASSERT_TRUE(train.cost.has_value());
  EXPECT_NEAR(*train.cost, train.kwh() * 1.5 * 0.25, 1e-15);
  EXPECT_NEAR(train.machine_emissions_kg, 16.0 / 3.6e6 * 1.5 * 100.0 / 1000.0, 1e-15);

  // start, begin, end, stop: three scripted steps over the run.
  EXPECT_EQ(total.name, "total");
  EXPECT_DOUBLE_EQ(total.machine[Domain::cpu], 30);
  auto all = tracker.results();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "train");
  EXPECT_EQ(all[1].name, "total");
}

TEST(Tracker, NestedPhasesAndGuardsEndOnScopeExit) {
  TempDir t;
  std::atomic<int> reads{0};
  Tracker tracker(scripted(&reads), CarbonIntensity::constant(475, "world"), quiet_options(t));
  tracker.start();
  {
    auto train = tracker.phase("train");
    for (int e = 0; e < 2; ++e) auto epoch = tracker.phase("epoch " + std::to_string(e));
  }  // guards end here
  tracker.stop();
  auto all = tracker.results();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].name, "epoch 0");
  EXPECT_EQ(all[1].name, "epoch 1");
  EXPECT_EQ(all[2].name, "train");
  EXPECT_DOUBLE_EQ(all[0].machine[Domain::cpu], 10);
  EXPECT_DOUBLE_EQ(all[2].machine[Domain::cpu], 50);  // five boundaries inside "train"
  EXPECT_FALSE(all[0].cost.has_value());              // no price given
}

TEST(Tracker, SamplingThreadReadsAtTheInterval) {
  TempDir t;
  std::atomic<int> reads{0};
  TrackerOptions o = quiet_options(t);
  o.interval_s = 0.02;
  Tracker tracker(scripted(&reads), CarbonIntensity::constant(475, "world"), o);
  tracker.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  PhaseResult total = tracker.stop();
  // ~15 interval samples expected; a loaded machine may deliver fewer.
  EXPECT_GE(reads.load(), 5);
  EXPECT_LE(reads.load(), 40);
  EXPECT_DOUBLE_EQ(total.machine[Domain::cpu], 10.0 * (reads.load() - 1));
}

TEST(Tracker, SecondTrackerOnTheMachineReportsOnlyItsShare) {
  TempDir t;
  std::atomic<int> r1{0}, r2{0};
  Tracker first(scripted(&r1), CarbonIntensity::constant(475, "world"), quiet_options(t));
  Tracker second(scripted(&r2, false), CarbonIntensity::constant(475, "world"), quiet_options(t));
  EXPECT_TRUE(first.run_info().machine_leader);
  EXPECT_FALSE(second.run_info().machine_leader);
  second.start();
  burn_cpu(std::chrono::milliseconds(30));
  PhaseResult r = second.stop();
  EXPECT_FALSE(r.machine_reported);
  EXPECT_DOUBLE_EQ(r.machine.total(), 0);
  EXPECT_GT(r.process.total(), 0);
  EXPECT_FALSE(r.measured[0]);
  EXPECT_EQ(r.source[0], "estimated (test)");
}

// Two GPUs seen one by one: GPU 1 draws 1 J per read, GPU 3 draws 3 J.
class TwoGpuMeter : public Meter {
 public:
  Joules read() override {
    ++reads_;
    Joules j;
    j[Domain::gpu] = 4.0 * reads_;
    return j;
  }
  std::string name() const override { return "nvml"; }
  bool measured() const override { return true; }
  std::vector<Domain> domains() const override { return {Domain::gpu}; }
  std::string source() const override { return "measured (two gpus)"; }
  std::vector<DeviceJoules> device_joules() const override {
    return {{1, 1.0 * reads_}, {3, 3.0 * reads_}};
  }

 private:
  int reads_ = 0;
};

TEST(Tracker, PhasesReportEachGpuByIndex) {
  TempDir t;
  std::atomic<int> reads{0};
  MeterSet set = scripted(&reads);
  set.meters.insert(set.meters.begin(), std::make_unique<TwoGpuMeter>());
  Tracker tracker(std::move(set), CarbonIntensity::constant(475, "world"), quiet_options(t));
  tracker.start();
  PhaseResult window;
  {
    auto outer = tracker.phase("outer");
    window = tracker.phase("inner").end();
  }
  tracker.stop();
  ASSERT_EQ(window.gpus.size(), 2u);
  EXPECT_EQ(window.gpus[0].index, 1);
  EXPECT_EQ(window.gpus[1].index, 3);
  EXPECT_DOUBLE_EQ(window.gpus[0].joules, 1.0);
  EXPECT_DOUBLE_EQ(window.gpus[1].joules, 3.0);
  EXPECT_DOUBLE_EQ(window.machine[Domain::gpu], 4.0);  // the first meter covering gpu
  auto all = tracker.results();
  ASSERT_EQ(all[1].name, "outer");
  EXPECT_DOUBLE_EQ(all[1].gpus[1].joules, 9.0);  // begin inner, end inner, end outer
}

TEST(Tracker, SeriesNotCoveringTheRunFallsBackToItsMeanAndSaysSo) {
  TempDir t;
  std::atomic<int> reads{0};
  IntensitySeries old("TEST", "test", UtcSeconds(std::chrono::seconds(1640995200)),
                      std::chrono::hours(1), {100.0, 300.0});  // 2022-01-01, two hours
  Tracker tracker(scripted(&reads), CarbonIntensity::from_series(old, "test series"),
                  quiet_options(t));
  tracker.start();
  PhaseResult r = tracker.stop();
  EXPECT_FALSE(r.carbon_note.empty());
  EXPECT_NE(r.carbon_note.find("mean 200.0 gCO2eq/kWh used"), std::string::npos) << r.carbon_note;
  EXPECT_NEAR(r.emissions_kg, r.kwh() * 200.0 / 1000.0, 1e-15);
}

TEST(Tracker, SeriesCoveringTheRunIsIntegrated) {
  TempDir t;
  std::atomic<int> reads{0};
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto hour = std::chrono::floor<std::chrono::hours>(now);
  // The same intensity in the hours around now, so the expected value is exact even if
  // the run crosses an hour boundary; the fallback (mean of all slots) would differ.
  IntensitySeries s("TEST", "test", UtcSeconds(hour - std::chrono::hours(2)), std::chrono::hours(1),
                    {900.0, 900.0, 50.0, 50.0, 900.0, 900.0});
  Tracker tracker(scripted(&reads), CarbonIntensity::from_series(s, "test series"),
                  quiet_options(t));
  tracker.start();
  PhaseResult r = tracker.stop();
  EXPECT_TRUE(r.carbon_note.empty()) << r.carbon_note;
  EXPECT_NEAR(r.emissions_kg, r.kwh() * 50.0 / 1000.0, 1e-12);
}

TEST(Tracker, MisuseIsAnError) {
  TempDir t;
  std::atomic<int> reads{0};
  Tracker tracker(scripted(&reads), CarbonIntensity::constant(475, "world"), quiet_options(t));
  EXPECT_THROW(tracker.phase("early"), Error);
  EXPECT_THROW(tracker.stop(), Error);
  tracker.start();
  EXPECT_THROW(tracker.start(), Error);
  auto id = tracker.begin_phase("p");
  tracker.end_phase(id);
  EXPECT_THROW(tracker.end_phase(id), Error);
  TrackerOptions bad = quiet_options(t);
  bad.interval_s = 0;
  std::atomic<int> r2{0};
  EXPECT_THROW(Tracker(scripted(&r2), CarbonIntensity::constant(475, "world"), bad), UsageError);
}

TEST(Tracker, PriceMustBeAFiniteNumberNotBelowZero) {
  using verdant::test_support::error_of;
  EXPECT_NO_THROW(validate_price(0));
  EXPECT_NO_THROW(validate_price(0.25));
  EXPECT_EQ(error_of([] { validate_price(-1); }),
            "price must be a finite number of money per kWh >= 0, got -1");
  EXPECT_EQ(error_of([] { validate_price(std::nan("")); }),
            "price must be a finite number of money per kWh >= 0, got nan");
  EXPECT_EQ(error_of([] { validate_price(HUGE_VAL); }),
            "price must be a finite number of money per kWh >= 0, got inf");
  EXPECT_THROW(validate_price(-1), UsageError);  // a bad flag or setting: exit code 2
  TempDir t;
  TrackerOptions bad = quiet_options(t);
  bad.price_per_kwh = std::nan("");
  std::atomic<int> reads{0};
  EXPECT_THROW(Tracker(scripted(&reads), CarbonIntensity::constant(475, "world"), bad), UsageError);
}

}  // namespace
}  // namespace verdant::energy
