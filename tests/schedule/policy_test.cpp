// Carbon-aware runner: pause/resume through a real checkpoint file loses no progress; the
// wait policy starts at the best window; emissions integrate hour by hour.
#include "verdant/schedule/policy.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/schedule/window.hpp"

namespace fs = std::filesystem;
using namespace verdant;
using namespace verdant::schedule;
using namespace std::chrono;
using energy::IntensitySeries;
using energy::parse_utc_timestamp;

namespace {

UtcSeconds ts(const char* text) {
  return parse_utc_timestamp(text).value();
}

// A tiny model trained by SGD on shuffled synthetic data: y = 3 x0 - 2 x1 + 0.5 + noise.
// Its checkpoint is a real file holding weights, position and the shuffling RNG; after
// checkpoint() the in-memory state is wiped, so resume() must restore everything.
class TinyRegressionJob : public InterruptibleJob {
 public:
  TinyRegressionJob(int total_steps, seconds step_time, fs::path checkpoint_path)
      : total_(total_steps), step_time_(step_time), path_(std::move(checkpoint_path)) {
    std::mt19937 data_rng(42);
    std::normal_distribution<double> n(0, 1);
    for (auto& row : x_) {
      row[0] = n(data_rng);
      row[1] = n(data_rng);
    }
    for (std::size_t i = 0; i < y_.size(); ++i)
      y_[i] = 3 * x_[i][0] - 2 * x_[i][1] + 0.5 + 0.1 * n(data_rng);
  }

  bool finished() const override { return step_ >= total_; }

  StepCost run_step() override {
    std::uniform_int_distribution<std::size_t> pick(0, y_.size() - 1);
    for (int b = 0; b < 8; ++b) {  // a minibatch of 8, one SGD update per sample
      std::size_t i = pick(rng_);
      double err = w_[0] * x_[i][0] + w_[1] * x_[i][1] + w_[2] - y_[i];
      w_[0] -= 0.01 * err * x_[i][0];
      w_[1] -= 0.01 * err * x_[i][1];
      w_[2] -= 0.01 * err;
    }
    ++step_;
    return {step_time_, 3.6e6};  // 1 kWh per step
  }

  void checkpoint() override {
    std::ostringstream out;
    out.precision(17);
    out << step_ << ' ' << rng_ << ' ';
    for (double w : w_) out << std::hexfloat << w << ' ';  // exact round trip
    write_file_atomic(path_, out.str());
    ++checkpoints_;
    // Simulate the process going away: state must come back from the file.
    w_ = {NAN, NAN, NAN};
    step_ = -1000;
    rng_.seed(999);
  }

  void resume() override {
    std::istringstream in(read_file_text(path_));
    in >> step_ >> rng_;
    for (double& w : w_) {
      std::string token;
      in >> token;
      w = std::strtod(token.c_str(), nullptr);
    }
    if (!in) throw Error("bad checkpoint");
  }

  const std::array<double, 3>& weights() const { return w_; }
  int checkpoints() const { return checkpoints_; }

 private:
  int total_;
  seconds step_time_;
  fs::path path_;
  std::array<std::array<double, 2>, 64> x_{};
  std::array<double, 64> y_{};
  std::array<double, 3> w_{0, 0, 0};
  int step_ = 0;
  std::mt19937 rng_{2024};
  int checkpoints_ = 0;
};

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
}

// Alternating clean/dirty hours: 100 (clean) at even hours, 500 (dirty) at odd ones.
IntensitySeries alternating(std::size_t hours_n) {
  std::vector<double> v(hours_n);
  for (std::size_t i = 0; i < hours_n; ++i) v[i] = i % 2 == 0 ? 100 : 500;
  return IntensitySeries("alt", "alt.csv", ts("2022-01-01T00:00:00Z"), hours(1), std::move(v));
}

}  // namespace

TEST(Policy, ParseNames) {
  EXPECT_EQ(parse_policy("wait"), Policy::WaitForBest);
  EXPECT_EQ(parse_policy("pause"), Policy::Pause);
  EXPECT_EQ(parse_policy("now"), Policy::RunNow);
  EXPECT_THROW(parse_policy("sometimes"), UsageError);
  EXPECT_STREQ(policy_name(Policy::Pause), "pause");
}

TEST(Policy, PauseAndResumeLosesNoTrainingProgress) {
  auto series = alternating(200);
  auto ckpt = temp_path("verdant-policy-ckpt");

  TinyRegressionJob plain(40, minutes(30), ckpt);
  SimulatedClock c1(series.start());
  auto baseline = run_carbon_aware(plain, series, c1, {Policy::RunNow});
  EXPECT_EQ(baseline.steps, 40u);
  EXPECT_EQ(baseline.pauses, 0u);
  EXPECT_EQ(plain.checkpoints(), 0);

  TinyRegressionJob paused(40, minutes(30), ckpt);
  SimulatedClock c2(series.start());
  PolicyOptions pause{Policy::Pause};
  pause.threshold = 200;
  auto report = run_carbon_aware(paused, series, c2, pause);
  EXPECT_EQ(report.steps, 40u);
  EXPECT_GT(report.pauses, 5u);
  EXPECT_EQ(paused.checkpoints(), static_cast<int>(report.pauses));
  // Bit-identical final weights: nothing was lost or repeated across the pauses.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(paused.weights()[i], plain.weights()[i]) << i;
  EXPECT_NEAR(plain.weights()[0], 3.0, 0.3);  // and it did learn

  // Every step ran in a clean hour: 40 kWh x 100 g/kWh. The baseline ran 20 h straight,
  // half clean, half dirty: 20 x 100 + 20 x 500.
  EXPECT_NEAR(report.grams, 40 * 100.0, 1e-6);
  EXPECT_NEAR(baseline.grams, 20 * 100.0 + 20 * 500.0, 1e-6);
  EXPECT_EQ(report.finished - report.submitted, hours(39));  // 20 clean hours, 19 paused
  EXPECT_EQ(report.waited, hours(19));
  fs::remove(ckpt);
}

TEST(Policy, PauseGivesUpAfterMaxDelay) {
  std::vector<double> v(48, 500.0);
  v[30] = 50;
  IntensitySeries s("dirty", "dirty.csv", ts("2022-01-01T00:00:00Z"), hours(1), v);
  TinyRegressionJob job(4, hours(1), temp_path("verdant-policy-giveup"));
  SimulatedClock clock(s.start());
  PolicyOptions o{Policy::Pause};
  o.threshold = 100;
  o.max_delay = hours(10);  // the clean hour at 30:00 is too far away
  auto r = run_carbon_aware(job, s, clock, o);
  EXPECT_TRUE(r.gave_up);
  EXPECT_EQ(r.started, s.start());
  EXPECT_NEAR(r.grams, 4 * 500.0, 1e-9);
  fs::remove(temp_path("verdant-policy-giveup"));
}

TEST(Policy, WaitStartsAtTheBestWindowAndIntegratesHourly) {
  // 3-hour job of 1-hour steps; cleanest 3 hours start at 05:00.
  IntensitySeries s("z", "z.csv", ts("2022-01-01T00:00:00Z"), hours(1),
                    {400, 400, 300, 300, 250, 100, 50, 150, 400, 400, 400, 400});
  TinyRegressionJob job(3, hours(1), temp_path("verdant-policy-wait"));
  SimulatedClock clock(s.start());
  PolicyOptions o{Policy::WaitForBest};
  o.expected_duration = hours(3);
  o.horizon = hours(8);
  auto r = run_carbon_aware(job, s, clock, o);
  EXPECT_EQ(r.started, ts("2022-01-01T05:00:00Z"));
  EXPECT_EQ(r.waited, hours(5));
  EXPECT_NEAR(r.grams, 100 + 50 + 150, 1e-9);
  // Steps of 90 minutes straddle hours: 1.5 kWh each, charged per hour.
  class Halves : public InterruptibleJob {
   public:
    bool finished() const override { return n_ == 2; }
    StepCost run_step() override {
      ++n_;
      return {minutes(90), 1.5 * 3.6e6};
    }
    void checkpoint() override {}
    void resume() override {}
    int n_ = 0;
  } halves;
  SimulatedClock c2(s.start());
  auto h = run_carbon_aware(halves, s, c2, {Policy::RunNow});
  // 00:00-03:00 at 1 kWh/h: 400 + 400 + 300.
  EXPECT_NEAR(h.grams, 1100, 1e-9);
}

TEST(Policy, RunBeyondTheSeriesNamesTheFile) {
  IntensitySeries s("z", "short.csv", ts("2022-01-01T00:00:00Z"), hours(1), {100, 100});
  TinyRegressionJob job(5, hours(1), temp_path("verdant-policy-short"));
  SimulatedClock clock(s.start());
  try {
    run_carbon_aware(job, s, clock, {Policy::RunNow});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("short.csv"), std::string::npos) << e.what();
  }
}

// ---- the real-clock path, with a fake clock that records sleeps instead of sleeping ----
namespace {

// Behaves like the system clock (time passes by itself while a step runs: see
// ClockedJob; step_taken() is the real-clock default), but sleep_until only records.
class FakeClock : public Clock {
 public:
  explicit FakeClock(UtcSeconds start) : now_(start) {}
  UtcSeconds now() const override { return now_; }
  void sleep_until(UtcSeconds t) override {
    sleeps.push_back(t);
    if (t > now_) now_ = t;
  }
  void pass(seconds d) { now_ += d; }  // real time going by during work
  std::vector<UtcSeconds> sleeps;

 private:
  UtcSeconds now_;
};

// A job whose steps take real (fake-clock) time, as a live training step would.
class ClockedJob : public InterruptibleJob {
 public:
  ClockedJob(InterruptibleJob& inner, FakeClock& clock) : inner_(inner), clock_(clock) {}
  bool finished() const override { return inner_.finished(); }
  StepCost run_step() override {
    auto cost = inner_.run_step();
    clock_.pass(cost.duration);
    return cost;
  }
  void checkpoint() override { inner_.checkpoint(); }
  void resume() override { inner_.resume(); }

 private:
  InterruptibleJob& inner_;
  FakeClock& clock_;
};

}  // namespace

TEST(RealClock, WaitSleepsUntilTheBestWindow) {
  IntensitySeries s("z", "forecast.csv", ts("2022-01-01T00:00:00Z"), hours(1),
                    {400, 400, 300, 300, 250, 100, 50, 150, 400, 400, 400, 400});
  FakeClock clock(ts("2022-01-01T00:20:00Z"));  // submitted mid-hour
  TinyRegressionJob inner(3, hours(1), temp_path("verdant-realclock-wait"));
  ClockedJob job(inner, clock);
  PolicyOptions o{Policy::WaitForBest};
  o.expected_duration = hours(3);
  o.horizon = hours(8);
  CarbonAwareController controller(s, clock, o);
  auto plan = controller.plan();
  EXPECT_EQ(plan.best.start, ts("2022-01-01T05:00:00Z"));
  ASSERT_TRUE(plan.now.has_value());
  EXPECT_GT(plan.saving_percent, 50.0);  // 100 vs ~367 g/kWh

  auto r = run_carbon_aware(job, s, clock, o);
  ASSERT_EQ(clock.sleeps.size(), 1u);
  EXPECT_EQ(clock.sleeps[0], ts("2022-01-01T05:00:00Z"));
  EXPECT_EQ(r.submitted, ts("2022-01-01T00:20:00Z"));
  EXPECT_EQ(r.started, ts("2022-01-01T05:00:00Z"));
  EXPECT_EQ(r.waited, hours(4) + minutes(40));
  EXPECT_EQ(r.finished, ts("2022-01-01T08:00:00Z"));
  EXPECT_NEAR(r.grams, 100 + 50 + 150, 1e-9);  // 1 kWh per hour, hour by hour
}

TEST(RealClock, PauseSleepsWhileIntensityIsHighAndLosesNoProgress) {
  auto series = alternating(200);
  auto ckpt = temp_path("verdant-realclock-ckpt");
  TinyRegressionJob plain(40, minutes(30), ckpt);
  SimulatedClock c1(series.start());
  run_carbon_aware(plain, series, c1, {Policy::RunNow});

  TinyRegressionJob inner(40, minutes(30), ckpt);
  FakeClock clock(ts("2022-01-01T01:10:00Z"));  // submitted in a dirty hour
  ClockedJob job(inner, clock);
  PolicyOptions pause{Policy::Pause};
  pause.threshold = 200;
  auto r = run_carbon_aware(job, series, clock, pause);
  EXPECT_EQ(r.steps, 40u);
  // The first sleep waits out the dirty submission hour; then one per dirty hour.
  ASSERT_EQ(clock.sleeps.size(), r.pauses + 1);
  EXPECT_EQ(clock.sleeps[0], ts("2022-01-01T02:00:00Z"));
  for (std::size_t i = 0; i < clock.sleeps.size(); ++i) {
    auto slot = series.index_of(clock.sleeps[i]);
    ASSERT_TRUE(slot.has_value());
    EXPECT_EQ(series.value(*slot), 100.0) << "sleep " << i << " ends in a dirty hour";
    if (i > 0) EXPECT_EQ(clock.sleeps[i] - clock.sleeps[i - 1], hours(2));  // 1 h run, 1 h pause
  }
  EXPECT_EQ(inner.checkpoints(), static_cast<int>(r.pauses));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(inner.weights()[i], plain.weights()[i]) << i;
  EXPECT_NEAR(r.grams, 40 * 100.0, 1e-6);  // every step in a clean hour
  fs::remove(ckpt);
}

TEST(RealClock, SeriesNotCoveringNowIsOneClearError) {
  IntensitySeries s("US-CISO", "US-CISO.csv", ts("2022-01-01T00:00:00Z"), hours(1),
                    std::vector<double>(48, 200.0));
  EXPECT_NO_THROW(require_covers_now(s, ts("2022-01-02T23:59:59Z")));
  try {
    require_covers_now(s, ts("2026-11-26T21:00:00Z"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("US-CISO.csv"), std::string::npos) << m;
    EXPECT_NE(m.find("2022-01-01T00:00:00Z to 2022-01-03T00:00:00Z"), std::string::npos) << m;
    EXPECT_NE(m.find("2026-11-26T21:00:00Z"), std::string::npos) << m;
    EXPECT_NE(m.find("--simulate-clock"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}
