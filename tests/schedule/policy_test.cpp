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
