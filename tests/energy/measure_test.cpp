// Running a command under measurement: exit codes pass through like a shell, a crash still
// gets its report, a command that cannot start is exit 127 with a one-line reason.
#include <gtest/gtest.h>

#include <atomic>

#include "energy_test_util.hpp"
#include "verdant/energy/measure.hpp"

namespace verdant::energy {
namespace {

TEST(RunCommand, ExitCodePassesThrough) {
  CommandOutcome o = run_command({"sh", "-c", "exit 7"});
  EXPECT_TRUE(o.started);
  EXPECT_EQ(o.exit_code, 7);
  EXPECT_EQ(o.signal, 0);
  EXPECT_EQ(run_command({"true"}).exit_code, 0);
}

TEST(RunCommand, SignalBecomes128PlusN) {
  CommandOutcome o = run_command({"sh", "-c", "kill -SEGV $$"});
  EXPECT_TRUE(o.started);
  EXPECT_EQ(o.signal, 11);
  EXPECT_EQ(o.exit_code, 139);
}

TEST(RunCommand, CannotStartIs127WithReason) {
  CommandOutcome o = run_command({"/nonexistent/verdant-no-such-program", "x"});
  EXPECT_FALSE(o.started);
  EXPECT_EQ(o.exit_code, 127);
  EXPECT_EQ(o.error,
            "cannot start '/nonexistent/verdant-no-such-program': No such file or directory");
  EXPECT_EQ(run_command({}).exit_code, 127);
}

// A scripted meter so the report's figures are known.
class FixedMeter : public Meter {
 public:
  Joules read() override {
    total_[Domain::cpu] += 100;
    return total_;
  }
  std::string name() const override { return "fixed"; }
  bool measured() const override { return false; }
  std::vector<Domain> domains() const override { return {Domain::cpu}; }
  std::string source() const override { return "estimated (fixed test meter)"; }

 private:
  Joules total_;
};

TEST(Measure, CrashingCommandStillGetsItsReport) {
  testing::TempDir t;
  MeterSet set;
  set.meters.push_back(std::make_unique<FixedMeter>());
  TrackerOptions o;
  o.interval_s = 3600;
  o.lease.lock_path = t / "lock";
  o.lease.use_rank_env = false;
  Tracker tracker(std::move(set),
                  CarbonIntensity::constant(475, "default: world average", 1.0, true), o);
  tracker.start();
  CommandOutcome outcome =
      run_command({"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; kill -ABRT $$"});
  PhaseResult total = tracker.stop();
  EXPECT_EQ(outcome.exit_code, 128 + 6);
  // The shell's CPU time reaches us through cutime once it has been waited for.
  EXPECT_GT(total.process[Domain::cpu], 0);
  std::string report = format_report(total, tracker.run_info(), {"a warning"});
  EXPECT_NE(report.find("warning: a warning\n"), std::string::npos);
  EXPECT_NE(report.find("energy (process)"), std::string::npos) << report;
  EXPECT_NE(report.find("energy (machine)  100.00 J"), std::string::npos) << report;
  EXPECT_NE(report.find("source cpu        estimated (fixed test meter)"), std::string::npos)
      << report;
  EXPECT_NE(report.find("default: world average"), std::string::npos);
  EXPECT_NE(report.find("not computed (no --price given)"), std::string::npos);
  EXPECT_NE(report.find("'estimated' are a model"), std::string::npos);
}

}  // namespace
}  // namespace verdant::energy
