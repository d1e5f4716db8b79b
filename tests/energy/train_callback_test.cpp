// train::EnergyCallback on a tiny synthetic training run: phases per epoch and eval, joules
// per sample, and emissions.csv + energy.jsonl in the output folder.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../train/test_util.hpp"
#include "energy_test_util.hpp"
#include "verdant/autograd/generator.hpp"
#include "verdant/core/io.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/train/energy_callback.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::train {
namespace {

// 1 J of cpu per read: the phase figures then count boundary samples exactly.
class CountingMeter : public energy::Meter {
 public:
  energy::Joules read() override {
    total_[energy::Domain::cpu] += 1.0;
    return total_;
  }
  std::string name() const override { return "counting"; }
  bool measured() const override { return false; }
  std::vector<energy::Domain> domains() const override { return {energy::Domain::cpu}; }
  std::string source() const override { return "estimated (counting test meter)"; }

 private:
  energy::Joules total_;
};

// A private machine lock: any other Verdant process on the machine (a user's run, another
// test) would otherwise hold the default one, and this tracker would not report the machine.
class EnergyCallbackTest : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("VERDANT_MACHINE_LOCK", (lock_dir_ / "lock").c_str(), 1); }
  void TearDown() override { ::unsetenv("VERDANT_MACHINE_LOCK"); }
  energy::testing::TempDir lock_dir_;
};

TEST_F(EnergyCallbackTest, PhasesPerEpochAndEvalWithOutputs) {
  energy::testing::TempDir t;
  auto train_set = test::synthetic_dataset(96, 8, 1);
  auto eval_set = test::synthetic_dataset(32, 8, 2);
  autograd::manual_seed(1);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Linear>(64, 10));
  nn::SGD opt(model->named_parameters(), nn::SGDOptions{.lr = 0.1});
  Trainer trainer(*model, opt, train_set, {.epochs = 2, .batch_size = 32, .seed = 3});
  trainer.set_eval_set(&eval_set);

  energy::MeterSet meters;
  meters.meters.push_back(std::make_unique<CountingMeter>());
  EnergyCallbackOptions o;
  o.out_dir = t / "run";
  o.interval_s = 3600;
  o.print = false;
  o.project_name = "callback-test";
  auto cb = std::make_shared<EnergyCallback>(o, std::move(meters),
                                             energy::CarbonIntensity::constant(100, "test"));
  trainer.add_callback(cb);
  trainer.fit();

  std::vector<std::string> names;
  for (auto& r : cb->results()) names.push_back(r.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"epoch 1", "eval 1", "epoch 2", "eval 2", "train", "total"}));
  const auto* e0 = cb->find("epoch 1");
  ASSERT_NE(e0, nullptr);
  EXPECT_EQ(e0->samples, 96);
  EXPECT_DOUBLE_EQ(e0->machine[energy::Domain::cpu], 1.0);  // begin + end sample
  EXPECT_FALSE(e0->measured[0]);
  const auto* train = cb->find("train");
  EXPECT_EQ(train->samples, 192);
  // After "train" begins: per epoch, 4 boundary samples (epoch begin/end, eval begin/end),
  // then the end of "train": 2 x 4 + 1 reads.
  EXPECT_DOUBLE_EQ(train->machine[energy::Domain::cpu], 9.0);
  EXPECT_NEAR(cb->joules_per_sample(), train->process.total() / 192.0, 1e-12);

  std::string csv = read_file_text(t / "run/emissions.csv");
  EXPECT_EQ(csv.rfind("timestamp,project_name,run_id,experiment_id,duration,", 0), 0u);
  EXPECT_NE(csv.find("\n20"), std::string::npos);  // one data row with a timestamp
  std::istringstream lines(read_file_text(t / "run/energy.jsonl"));
  std::string line;
  int records = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["project_name"], "callback-test");
    if (j["phase"] == "train") EXPECT_EQ(j["samples"], 192);
    ++records;
  }
  EXPECT_EQ(records, 6);
}

TEST_F(EnergyCallbackTest, NoEvalSetMeansNoEvalPhase) {
  energy::testing::TempDir t;
  auto train_set = test::synthetic_dataset(64, 8, 1);
  autograd::manual_seed(1);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Linear>(64, 10));
  nn::SGD opt(model->named_parameters(), nn::SGDOptions{.lr = 0.1});
  Trainer trainer(*model, opt, train_set, {.epochs = 1, .batch_size = 32, .seed = 3});
  energy::MeterSet meters;
  meters.meters.push_back(std::make_unique<CountingMeter>());
  EnergyCallbackOptions o;
  o.interval_s = 3600;
  o.print = false;
  auto cb = std::make_shared<EnergyCallback>(o, std::move(meters),
                                             energy::CarbonIntensity::constant(100, "test"));
  trainer.add_callback(cb);
  trainer.fit();
  std::vector<std::string> names;
  for (auto& r : cb->results()) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"epoch 1", "train", "total"}));
}

}  // namespace
}  // namespace verdant::train
