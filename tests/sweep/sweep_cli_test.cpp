// `verdant sweep` end to end on a Fashion-MNIST-shaped slice: three tiny trials; the same
// sweep killed after its first trial and restarted gives the results of an uninterrupted one.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

#include "support/run_program.hpp"
#include "train/test_util.hpp"
#include "verdant/core/io.hpp"
#include "verdant/sweep/run.hpp"

namespace verdant {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test_support::RunResult;

class SweepCli : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_fake_fashion_mnist(dir_ / "fmnist", 256, 64);
    write_file_atomic(dir_ / "s.yaml",
                      "models: [mlp]\ndata: fmnist\nepochs: 2\nseeds: [5]\nbatch_size: 32\n"
                      "latency_samples: 20\ncandidates:\n  grid:\n    sparsity: [0, 0.5]\n"
                      "    precision: [fp32, int8_ptq]\n");
  }
  RunResult sweep(const std::string& out, std::vector<std::string> env = {}) {
    return test_support::run_program(
        VERDANT_EXE,
        {"sweep", (dir_ / "s.yaml").string(), "--out", (dir_ / out).string(), "--threads", "1",
         "--max-accuracy-loss", "50", "--objective", "bytes"},
        dir_.path(), std::move(env));
  }
  TempDir dir_;
};

TEST_F(SweepCli, KilledAndRestartedGivesTheUninterruptedResults) {
  RunResult a = sweep("straight");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("<- pick"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("break-even"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("edge or cloud"), std::string::npos) << a.out;
  EXPECT_TRUE(fs::exists(dir_ / "straight" / "pick" / "model.vdm"));

  RunResult killed = sweep("killed", {"VERDANT_DEBUG_SIGKILL_AFTER_TRIALS=1"});
  ASSERT_EQ(killed.signal, SIGKILL) << killed.err;
  std::size_t done = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "killed" / "trials"))
    done += e.is_regular_file();
  EXPECT_EQ(done, 1u);
  RunResult resumed = sweep("killed");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("3 trials run, 1 already done"), std::string::npos) << resumed.out;

  const auto x = sweep::read_results(dir_ / "straight"), y = sweep::read_results(dir_ / "killed");
  ASSERT_EQ(x.trials.size(), 4u);
  ASSERT_EQ(x.trials.size(), y.trials.size());
  for (std::size_t i = 0; i < x.trials.size(); ++i) {
    const auto &p = x.trials[i], &q = y.trials[i];
    EXPECT_EQ(p.id, q.id);
    EXPECT_EQ(p.accuracy, q.accuracy) << p.id;  // trained alike, to the bit
    EXPECT_EQ(p.nonzero, q.nonzero) << p.id;
    EXPECT_EQ(p.bytes, q.bytes) << p.id;
    EXPECT_EQ(p.flops, q.flops) << p.id;
  }
  ASSERT_TRUE(x.pick && y.pick);
  EXPECT_EQ(x.summaries[x.pick->index].candidate, y.summaries[y.pick->index].candidate);
}

TEST_F(SweepCli, SweepFileErrorsComeBeforeAnyTraining) {
  write_file_atomic(dir_ / "s.yaml", "models: [mlp]\ncandidates:\n  grid:\n    sparsity: [2]\n");
  RunResult r = sweep("bad");
  test_support::expect_error(r, 1, "s.yaml:4: grid sparsity 2 is outside [0, 1)");
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
}

}  // namespace
}  // namespace verdant
