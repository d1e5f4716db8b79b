// train::run_training as a library call: settings checked before any work and named as
// settings, results.json written by the library, models told apart by their bytes, and no
// output folder left behind by a run that fails early.
#include "verdant/train/run.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/error_helpers.hpp"
#include "test_util.hpp"
#include "verdant/core/io.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::train {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test_support::contains;
using test_support::error_of;

TrainingOptions quick(const TempDir& dir) {
  TrainingOptions o;
  o.model = "mlp";
  o.data.location = dir / "fmnist";
  o.epochs = 2;
  o.batch_size = 32;
  o.seed = 7;
  o.threads = 1;
  o.out_dir = dir / "out";
  o.energy.enabled = false;
  return o;
}

// The setting a SettingError names, and its message.
std::pair<std::string, std::string> setting_error(const TrainingOptions& o) {
  try {
    validate(o);
  } catch (const SettingError& e) {
    return {e.setting(), e.what()};
  }
  return {};
}

TEST(RunTraining, BadSettingsNameTheSetting) {
  TempDir dir;
  auto with = [&](auto change) {
    TrainingOptions o = quick(dir);
    change(o);
    return setting_error(o);
  };
  EXPECT_EQ(with([](auto& o) { o.batch_size = 0; }).first, "batch_size");
  EXPECT_EQ(with([](auto& o) { o.epochs = 0; }).second, "epochs must be positive, got 0");
  EXPECT_EQ(with([](auto& o) { o.optimizer.lr = -1.0; }).first, "lr");
  EXPECT_EQ(with([](auto& o) { o.optimizer.lr = std::nan(""); }).first, "lr");
  EXPECT_EQ(with([](auto& o) { o.optimizer.momentum = 1.0; }).first, "momentum");
  EXPECT_EQ(with([](auto& o) { o.optimizer.name = "rmsprop"; }).first, "optimizer");
  EXPECT_EQ(with([](auto& o) { o.schedule.warmup = -1; }).first, "warmup");
  EXPECT_EQ(with([](auto& o) { o.schedule.kind = "linear"; }).first, "schedule");
  EXPECT_EQ(with([](auto& o) { o.schedule.cycle_epochs = 0; }).second,
            "cycle_epochs must be at least 1, got 0");
  EXPECT_EQ(with([](auto& o) { o.schedule.cycle_mult = 0; }).first, "cycle_mult");
  EXPECT_EQ(with([](auto& o) { o.threads = 100000; }).first, "threads");
  EXPECT_EQ(with([](auto& o) { o.label_smoothing = 1.0; }).first, "label_smoothing");
  auto energy_on = [](TrainingOptions& o) { o.energy.enabled = true; };
  EXPECT_EQ(with([&](auto& o) {
              energy_on(o);
              o.energy.location.pue = -1.0;
            }).first,
            "pue");
  EXPECT_EQ(with([&](auto& o) {
              energy_on(o);
              o.energy.location.pue = std::nan("");
            }).first,
            "pue");
  EXPECT_EQ(with([&](auto& o) {
              energy_on(o);
              o.energy.price_per_kwh = -5.0;
            }).first,
            "price");
  EXPECT_EQ(with([](auto& o) { o.stop_at_accuracy = 1.5; }).first, "stop_at_accuracy");
  EXPECT_EQ(with([](auto& o) {
              o.stop_at_accuracy = 0.5;
              o.evaluate = false;
            }).first,
            "stop_at_accuracy");
  write_file_atomic(dir / "a_file", "x");
  EXPECT_EQ(with([&](auto& o) { o.out_dir = dir / "a_file"; }).first, "out_dir");
  EXPECT_EQ(with([](auto&) {}).first, "");
}

TEST(RunTraining, WritesResultsAndACheckpointThatResumes) {
  TempDir dir;
  test::write_fake_fashion_mnist(dir / "fmnist", 200, 64);
  TrainingOptions o = quick(dir);
  std::vector<std::string> lines;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  const TrainingReport r = run_training(o);
  ASSERT_EQ(r.fit.epochs.size(), 2u);
  ASSERT_TRUE(r.test.has_value());
  EXPECT_EQ(r.test->samples, 64);
  EXPECT_EQ(r.parameters, 266610);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(contains(lines[0], "training mlp (266610 parameters)")) << lines[0];
  const auto j = nlohmann::json::parse(read_file_text(dir / "out" / "results.json"));
  EXPECT_EQ(j["command"], "train");
  EXPECT_EQ(j["epochs"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["test"]["accuracy"].get<double>(), r.test->accuracy);
  const double a = r.fit.epochs[0].seconds, b = r.fit.epochs[1].seconds;
  EXPECT_DOUBLE_EQ(j["timing"]["median_epoch_seconds"].get<double>(), (a + b) / 2);

  // Resuming the finished run trains nothing more and reports the same epochs.
  o.resume = true;
  lines.clear();
  const TrainingReport again = run_training(o);
  EXPECT_TRUE(contains(lines.at(0), "resumed from")) << lines.at(0);
  ASSERT_EQ(again.fit.epochs.size(), 2u);
  EXPECT_EQ(again.fit.epochs[1].loss, r.fit.epochs[1].loss);
}

TEST(RunTraining, StopsAfterTheFirstEpochThatReachesTheAccuracyTarget) {
  TempDir dir;
  test::write_fake_fashion_mnist(dir / "fmnist", 200, 64);
  TrainingOptions o = quick(dir);
  o.epochs = 6;
  // A target the first epoch already reaches: the run ends there, and its last evaluation is
  // the final test figure (nothing trained after it).
  o.stop_at_accuracy = 1e-6;
  const TrainingReport r = run_training(o);
  ASSERT_EQ(r.fit.epochs.size(), 1u);
  EXPECT_TRUE(r.fit.stopped_early);
  EXPECT_TRUE(contains(r.fit.stop_reason, "reached 0.00% after epoch 1")) << r.fit.stop_reason;
  ASSERT_TRUE(r.test.has_value());
  EXPECT_DOUBLE_EQ(r.test->accuracy, r.fit.epochs[0].eval_accuracy);

  // One just above what any epoch of the same (seeded, barely learning) run reaches: the whole
  // budget runs.
  o.epochs = 3;
  o.optimizer.lr = 1e-6;
  o.stop_at_accuracy.reset();
  o.out_dir = dir / "out2";
  const TrainingReport budget = run_training(o);
  double best = 0;
  for (const auto& e : budget.fit.epochs) best = std::max(best, e.eval_accuracy);
  ASSERT_LT(best, 1.0);
  o.stop_at_accuracy = best + 1e-9;
  o.out_dir = dir / "out3";
  const TrainingReport all = run_training(o);
  EXPECT_EQ(all.fit.epochs.size(), 3u);
  EXPECT_FALSE(all.fit.stopped_early);
}

TEST(RunTraining, EarlyErrorsLeaveNoOutputFolder) {
  TempDir dir;
  test::write_fake_fashion_mnist(dir / "fmnist", 200, 64);
  auto fails = [&](auto change) {
    TrainingOptions o = quick(dir);
    change(o);
    const std::string msg = error_of([&] { run_training(o); });
    EXPECT_FALSE(fs::exists(o.out_dir)) << msg;
    return msg;
  };
  EXPECT_TRUE(contains(fails([](auto& o) { o.model = "resnet9000"; }), "resnet9000"));
  EXPECT_TRUE(
      contains(fails([&](auto& o) { o.data.location = dir / "nodata"; }), "does not exist"));
  EXPECT_TRUE(contains(fails([](auto& o) { o.data.limit_train = 100000; }), "limit_train 100000"));
  // A learning rate so large the loss overflows in the first epoch, before any checkpoint.
  EXPECT_TRUE(contains(fails([](auto& o) { o.optimizer.lr = 1e30; }), "training diverged"));
}

TEST(ModelSource, FilesAreToldApartByTheirBytes) {
  TempDir dir;
  auto model = build_model("mlp");
  Checkpoint c;
  c.meta = {{"model.spec", "mlp"}};
  for (auto& [n, p] : model->named_parameters()) c.tensors.emplace_back("param/" + n, p.value());
  save_checkpoint(dir / "weights.bin", c);  // a checkpoint without the .vckpt extension
  const LoadedModel loaded = load_model((dir / "weights.bin").string());
  EXPECT_EQ(loaded.format, ModelFormat::checkpoint);
  EXPECT_EQ(loaded.model->num_parameters(), 266610);

  write_file_atomic(dir / "m.vckpt",
                    "input: [1, 4, 4]\nlayers:\n  - flatten\n  - linear: {out_features: 3}\n");
  EXPECT_EQ(load_model((dir / "m.vckpt").string()).format, ModelFormat::yaml);

  write_file_atomic(dir / "junk.yaml", std::string("\x01\x02\0\x03", 4));
  EXPECT_TRUE(contains(error_of([&] { load_model((dir / "junk.yaml").string()); }),
                       "neither a checkpoint (.vckpt) nor a YAML model file"));
  write_file_atomic(dir / "bad.yaml", "a: \"\\q\"\n");
  EXPECT_TRUE(contains(error_of([&] { load_model((dir / "bad.yaml").string()); }),
                       "neither a checkpoint (.vckpt) nor a YAML model file"));
  EXPECT_TRUE(
      contains(error_of([&] { load_model((dir / "none.yaml").string()); }), "no such model file"));
  EXPECT_TRUE(contains(error_of([&] { load_model(dir.path().string()); }), "is a directory"));
  EXPECT_THROW(build_model((dir / "weights.bin").string()), SettingError);
}

}  // namespace
}  // namespace verdant::train
