// `verdant compress` as a program: a run killed with SIGKILL mid-epoch and resumed writes the
// same bytes as one left alone; bad input gives one error line and leaves nothing behind.
#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include "support/run_program.hpp"
#include "train/test_util.hpp"
#include "verdant/core/io.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test_support::expect_error;
using test_support::RunResult;

class CompressCli : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_fake_fashion_mnist(dir_ / "fmnist", 400, 100);
    // Gradual pruning (masks and schedule state) and QAT from epoch 1 (activation ranges):
    // everything a resumed run must carry over.
    write_file_atomic(dir_ / "r.yaml",
                      "epochs: 3\nlr: 0.05\nmodifiers:\n"
                      "  - prune: {final_sparsity: 0.8, end_epoch: 2, update_every: 0.5}\n"
                      "  - quantize: {mode: qat, start_epoch: 1}\n");
  }
  RunResult run(std::vector<std::string> args, std::vector<std::string> env = {}) {
    return test_support::run_program(VERDANT_EXE, std::move(args), dir_.path(), std::move(env));
  }
  std::vector<std::string> quick(const std::string& out) {
    return {"compress",
            "--model",
            "mlp",
            "--recipe",
            (dir_ / "r.yaml").string(),
            "--data",
            (dir_ / "fmnist").string(),
            "--batch-size",
            "32",
            "--seed",
            "3",
            "--threads",
            "2",
            "--checkpoint-every",
            "5",
            "--no-energy",
            "--quiet",
            "--out",
            (dir_ / out).string()};
  }
  TempDir dir_;
};

TEST_F(CompressCli, SigkillMidEpochThenResumeWritesTheSameBytes) {
  RunResult a = run(quick("straight"));
  ASSERT_EQ(a.exit_code, 0) << a.err;

  auto b = quick("killed");
  RunResult killed = run(b, {"VERDANT_DEBUG_SIGKILL_AT_STEP=23"});
  ASSERT_EQ(killed.signal, SIGKILL) << "exit " << killed.exit_code << " " << killed.err;
  const auto at_kill = train::load_checkpoint(dir_ / "killed" / "checkpoint.vckpt");
  EXPECT_EQ(at_kill.meta_at("train.global_step"), "20");
  EXPECT_EQ(at_kill.meta_at("train.epoch"), "1");  // 13 steps per epoch: mid second epoch
  EXPECT_FALSE(fs::exists(dir_ / "killed" / "model.vckpt"));

  b.push_back("--resume");
  RunResult resumed = run(b);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  // The outputs; the training checkpoint also records each epoch's wall time, which differs.
  for (const char* file : {"model.vckpt", "model.vcz"}) {
    const auto x = read_file_bytes(dir_ / "straight" / file);
    const auto y = read_file_bytes(dir_ / "killed" / file);
    EXPECT_EQ(x, y) << file << " differs after SIGKILL and --resume";
  }
}

TEST_F(CompressCli, BadInputIsOneLineAndLeavesNoOutputFolder) {
  auto with = [&](const std::string& flag, const std::string& value) {
    auto args = quick("out");
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == flag) args[i + 1] = value;
    return run(args);
  };
  expect_error(with("--threads", "100000"), 2, "--threads");
  expect_error(with("--batch-size", "0"), 2, "--batch-size");
  expect_error(with("--model", "resnet9000"), 2, "--model");
  expect_error(with("--recipe", (dir_ / "missing.yaml").string()), 1, "missing.yaml");
  expect_error(with("--data", (dir_ / "nodata").string()), 1, "nodata");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
}  // namespace verdant
