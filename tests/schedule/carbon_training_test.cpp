// Carbon-aware training with the real trainer: the built-in mlp on a small data slice,
// paused (checkpoint + fresh trainer + resume) whenever replayed intensity is high, ends
// with exactly the weights of an uninterrupted run.
#include "verdant/schedule/carbon_training.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "verdant/autograd/generator.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/train/model_source.hpp"

namespace fs = std::filesystem;
using namespace verdant;
using namespace verdant::schedule;
using namespace std::chrono;

namespace {

// 192 synthetic 28x28 images, 10 classes (deterministic), so no dataset install is needed.
data::ImageDataset small_images() {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> noise(0, 63);
  const int n = 192, side = 28;
  std::vector<std::uint8_t> images, labels;
  for (int i = 0; i < n; ++i) {
    int k = i % 10;
    labels.push_back(static_cast<std::uint8_t>(k));
    for (int p = 0; p < side * side; ++p)
      images.push_back(static_cast<std::uint8_t>((p % 10 == k ? 150 : 0) + noise(rng)));
  }
  return data::ImageDataset({n, side, side}, images, labels, 10, 0.2f, 0.3f);
}

struct TrainSetup {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<nn::SGD> optimizer;
};

TrainSetup fresh_run() {
  autograd::manual_seed(5);
  TrainSetup r;
  r.model = train::build_model("mlp");
  r.optimizer =
      std::make_unique<nn::SGD>(r.model->named_parameters(),
                                nn::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  return r;
}

std::vector<float> weights(nn::Module& m) {
  std::vector<float> out;
  for (auto& p : m.parameters()) {
    const float* d = p.value().data<float>();
    out.insert(out.end(), d, d + p.value().numel());
  }
  return out;
}

// Hourly series alternating clean (100) and dirty (500) hours.
energy::IntensitySeries alternating() {
  std::vector<double> v(400);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = i % 2 == 0 ? 100 : 500;
  return energy::IntensitySeries("alt", "alt.csv",
                                 energy::parse_utc_timestamp("2022-01-01T00:00:00Z").value(),
                                 hours(1), std::move(v));
}

}  // namespace

TEST(CarbonTraining, PauseAndResumeGivesTheUninterruptedWeights) {
  auto data = small_images();
  auto dir = fs::temp_directory_path() / ("verdant-carbon-train-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  train::TrainOptions opts{.epochs = 2, .batch_size = 32, .seed = 3};  // 12 steps
  auto series = alternating();

  // Uninterrupted.
  TrainSetup plain = fresh_run();
  train::Trainer t(*plain.model, *plain.optimizer, data, opts);
  auto plain_fit = t.fit();
  ASSERT_EQ(plain_fit.epochs.size(), 2u);

  // Carbon-aware: 20 simulated minutes per step, pause in every dirty hour.
  TrainSetup paused = fresh_run();
  opts.checkpoint_path = dir / "ckpt.vckpt";
  int trainers = 1;
  auto make_next = [&] {
    ++trainers;
    // Scramble the in-memory weights before every rebuild: the resumed state must come
    // from the checkpoint file alone.
    for (auto& p : paused.model->parameters())
      std::memset(p.value().data<float>(), 0, p.value().numel() * sizeof(float));
    return std::make_unique<train::Trainer>(*paused.model, *paused.optimizer, data, opts);
  };
  train::Trainer first(*paused.model, *paused.optimizer, data, opts);
  SimulatedClock clock(series.start());
  PolicyOptions policy{Policy::Pause};
  policy.threshold = 200;
  CarbonAwareController controller(series, clock, policy);
  int pauses_seen = 0;
  auto result =
      train_carbon_aware(first, make_next, controller, {minutes(20), 300.0},
                         [&](const RunReport&, std::optional<UtcSeconds>) { ++pauses_seen; });
  EXPECT_FALSE(result.fit.stopped_early);
  ASSERT_EQ(result.fit.epochs.size(), 2u);
  EXPECT_EQ(result.report.steps, 12u);
  EXPECT_EQ(result.report.pauses, 3u);  // 12 steps x 20 min = 4 clean hours, 3 dirty skipped
  EXPECT_EQ(pauses_seen, 3);
  EXPECT_EQ(trainers, 4);

  auto a = weights(*plain.model), b = weights(*paused.model);
  ASSERT_EQ(a.size(), 266610u);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
      << "pause/resume changed the training result";
  EXPECT_EQ(result.fit.epochs[1].loss, plain_fit.epochs[1].loss);

  // Each step: 300 W x 20 min = 0.1 kWh, all in clean hours: 12 x 0.1 x 100 g.
  EXPECT_NEAR(result.report.grams, 120.0, 1e-9);
  EXPECT_EQ(result.report.finished - result.report.started, hours(7));
  fs::remove_all(dir);
}

// The live path: a clock that is not simulated (the callback measures each step's wall
// time) and that records sleeps instead of sleeping. Each step "takes" 20 minutes of it.
namespace {
class FakeLiveClock : public Clock {
 public:
  explicit FakeLiveClock(UtcSeconds start) : now_(start) {}
  UtcSeconds now() const override { return now_; }
  void sleep_until(UtcSeconds t) override {
    sleeps.push_back(t);
    if (t > now_) now_ = t;
  }
  UtcSeconds step_taken(seconds) override {
    now_ += minutes(20);  // as if the step had taken 20 minutes of real time
    return now_ - minutes(20);
  }
  std::vector<UtcSeconds> sleeps;

 private:
  UtcSeconds now_;
};
}  // namespace

TEST(CarbonTraining, LivePauseSleepsWhileHighAndGivesTheUninterruptedWeights) {
  auto data = small_images();
  auto dir = fs::temp_directory_path() / ("verdant-carbon-live-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  train::TrainOptions opts{.epochs = 1, .batch_size = 32, .seed = 3};  // 6 steps
  auto series = alternating();

  TrainSetup plain = fresh_run();
  train::Trainer t(*plain.model, *plain.optimizer, data, opts);
  t.fit();

  TrainSetup paused = fresh_run();
  opts.checkpoint_path = dir / "ckpt.vckpt";
  auto make_next = [&] {
    for (auto& p : paused.model->parameters())
      std::memset(p.value().data<float>(), 0, p.value().numel() * sizeof(float));
    return std::make_unique<train::Trainer>(*paused.model, *paused.optimizer, data, opts);
  };
  train::Trainer first(*paused.model, *paused.optimizer, data, opts);
  FakeLiveClock clock(series.start() + minutes(70));  // submitted in a dirty hour
  PolicyOptions policy{Policy::Pause};
  policy.threshold = 200;
  CarbonAwareController controller(series, clock, policy);
  std::vector<UtcSeconds> announced;
  auto result = train_carbon_aware(first, make_next, controller, {minutes(1), 300.0},
                                   [&](const RunReport&, std::optional<UtcSeconds> until) {
                                     ASSERT_TRUE(until.has_value());
                                     announced.push_back(*until);
                                   });
  EXPECT_EQ(result.report.steps, 6u);
  EXPECT_EQ(result.report.pauses, 1u);  // 6 x 20 min = 2 clean hours, 1 dirty in between
  const auto h = [&](int n) { return series.start() + hours(n); };
  ASSERT_EQ(clock.sleeps.size(), 2u);
  EXPECT_EQ(clock.sleeps[0], h(2));  // the dirty submission hour
  EXPECT_EQ(clock.sleeps[1], h(4));  // the dirty hour 03:00
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0], h(4));  // announced before sleeping
  EXPECT_EQ(result.report.finished, h(5));

  auto a = weights(*plain.model), b = weights(*paused.model);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
      << "pause/resume changed the training result";
  EXPECT_GT(result.report.joules, 0.0);  // measured wall time x assumed power
  fs::remove_all(dir);
}
