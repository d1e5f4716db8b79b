// Runs the built `verdant` binary: bad flags and files give one error line and the right
// exit code; a run killed with SIGKILL mid-epoch and resumed ends bit-identical.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/run_program.hpp"
#include "test_util.hpp"
#include "verdant/core/io.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

using test_support::expect_error;
using test_support::RunResult;

RunResult run_verdant(const TempDir& dir, std::vector<std::string> args,
                      std::vector<std::string> extra_env = {}) {
  return test_support::run_program(VERDANT_EXE, std::move(args), dir.path(), std::move(extra_env));
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { test::write_fake_fashion_mnist(dir_ / "fmnist", 400, 100); }
  std::vector<std::string> quick(const std::string& out) {
    return {"train",
            "--model",
            "mlp",
            "--data",
            (dir_ / "fmnist").string(),
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--lr",
            "0.05",
            "--seed",
            "7",
            "--threads",
            "2",
            "--out",
            (dir_ / out).string()};
  }
  // quick(out) with `extra` flags; a flag given there replaces the base value (CLI11 rejects
  // repeated options). Only the first of `extra` is looked up, the rest are added as they are.
  RunResult quick_with(const std::string& out, std::vector<std::string> extra) {
    auto a = quick(out);
    for (std::size_t i = 1; i + 1 < a.size(); i += 2)
      if (a[i] == extra[0])
        a.erase(a.begin() + static_cast<std::ptrdiff_t>(i),
                a.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    a.insert(a.end(), extra.begin(), extra.end());
    return run_verdant(dir_, a);
  }
  TempDir dir_;
};

TEST_F(Cli, BadFlagsExitTwoNamingTheFlag) {
  auto with = [&](std::vector<std::string> extra) { return quick_with("bad", extra); };
  expect_error(with({"--batch-size", "0"}), 2, "--batch-size: must be positive, got 0");
  expect_error(with({"--batch-size", "-5"}), 2, "--batch-size: must be positive, got -5");
  expect_error(with({"--epochs", "0"}), 2, "--epochs");
  expect_error(with({"--model", "resnet9000"}), 2, "--model");
  expect_error(with({"--optimizer", "rmsprop"}), 2, "--optimizer");
  expect_error(with({"--lr", "-1"}), 2, "--lr");
  expect_error(with({"--limit-train", "100000"}), 2, "--limit-train 100000 exceeds");
  expect_error(with({"--batch-size", "abc"}), 2, "--batch-size");
  expect_error(with({"--resume", (dir_ / "nope.vckpt").string()}), 2, "no such checkpoint file");
  expect_error(with({"--stop-at-accuracy", "1.5"}), 2, "--stop-at-accuracy");
  expect_error(with({"--stop-at-accuracy", "0.9", "--no-eval"}), 2,
               "--stop-at-accuracy needs the per-epoch evaluation, which is off (--no-eval)");
}

// VERDANT_GEMM picks the dense backend; the run says which, and an unknown name is refused.
TEST_F(Cli, GemmBackendIsChosenByEnvironmentAndNamed) {
  RunResult dnnl = run_verdant(dir_, quick("dnnl"));
  ASSERT_EQ(dnnl.exit_code, 0) << dnnl.err;
  EXPECT_NE(dnnl.out.find("kernels: dense oneDNN"), std::string::npos) << dnnl.out;
  RunResult openblas = run_verdant(dir_, quick("openblas"), {"VERDANT_GEMM=openblas"});
  ASSERT_EQ(openblas.exit_code, 0) << openblas.err;
  EXPECT_NE(openblas.out.find("kernels: dense OpenBLAS"), std::string::npos) << openblas.out;
  expect_error(run_verdant(dir_, quick("mkl"), {"VERDANT_GEMM=mkl"}), 1,
               "VERDANT_GEMM must be dnnl or openblas, got 'mkl'");
}

TEST_F(Cli, BadDataExitsOneNamingTheFile) {
  auto args = quick("o");
  args[4] = (dir_ / "missing_dir").string();
  expect_error(run_verdant(dir_, args), 1, "missing_dir: dataset directory does not exist");

  // A truncated image file, a label file of another length, a wrong magic number.
  fs::create_directories(dir_ / "broken");
  for (auto& e : fs::directory_iterator(dir_ / "fmnist"))
    fs::copy_file(e.path(), dir_ / "broken" / e.path().filename());
  args[4] = (dir_ / "broken").string();
  auto images = dir_ / "broken" / "train-images-idx3-ubyte.gz";
  auto bytes = read_file_bytes(images);
  bytes.resize(bytes.size() - 100);
  write_file_atomic(images, bytes);
  expect_error(run_verdant(dir_, args), 1, images.string() + ": truncated gzip data");

  fs::copy_file(dir_ / "fmnist" / "t10k-labels-idx1-ubyte.gz",
                dir_ / "broken" / "train-labels-idx1-ubyte.gz",
                fs::copy_options::overwrite_existing);
  fs::copy_file(dir_ / "fmnist" / "train-images-idx3-ubyte.gz", images,
                fs::copy_options::overwrite_existing);
  expect_error(run_verdant(dir_, args), 1, "100 labels but");

  write_file_atomic(images, std::string_view("\x12\x34\x56\x78garbage", 11));
  expect_error(run_verdant(dir_, args), 1,
               images.string() + ": not an IDX file (bad magic 0x12345678)");

  // Zero images: the error names the file (it used to say only that 0 samples give no batch).
  fs::remove_all(dir_ / "broken");
  test::write_fake_fashion_mnist(dir_ / "broken", 0, 100);
  expect_error(run_verdant(dir_, args), 1,
               images.string() + ": holds no images (its IDX header declares 0)");
}

TEST_F(Cli, YamlModelWithUnknownLayerIsAnError) {
  write_file_atomic(
      dir_ / "m.yaml",
      std::string_view("input: [1, 28, 28]\nlayers:\n  - flatten\n  - warp_drive: {x: 1}\n"));
  auto args = quick("o");
  args[2] = (dir_ / "m.yaml").string();
  RunResult r = run_verdant(dir_, args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("m.yaml"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("warp_drive"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST_F(Cli, TrainWritesResultsAndEvalAndInfoReadTheCheckpoint) {
  RunResult r = run_verdant(dir_, quick("run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("epoch 2/2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(read_file_text(dir_ / "run" / "results.json"));
  EXPECT_EQ(j["config"]["model"], "mlp");
  EXPECT_EQ(j["config"]["batch_size"], 32);
  ASSERT_EQ(j["epochs"].size(), 2u);
  EXPECT_GT(j["epochs"][1]["train_accuracy"].get<double>(), 0.5);
  double acc = j["test"]["accuracy"];
  EXPECT_GT(acc, 0.5);
  EXPECT_EQ(j["test"]["samples"], 100);
  EXPECT_GT(j["peak_rss_mib"].get<double>(), 1.0);

  auto ckpt = (dir_ / "run" / "checkpoint.vckpt").string();
  RunResult e =
      run_verdant(dir_, {"eval", "--checkpoint", ckpt, "--data", (dir_ / "fmnist").string(),
                         "--json", (dir_ / "eval.json").string()});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto ej = nlohmann::json::parse(read_file_text(dir_ / "eval.json"));
  EXPECT_DOUBLE_EQ(ej["accuracy"].get<double>(), acc);
  EXPECT_EQ(ej["samples"], 100);

  RunResult i = run_verdant(dir_, {"info", ckpt});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_NE(i.out.find("Linear"), std::string::npos) << i.out;

  auto bytes = read_file_bytes(ckpt);
  bytes.resize(bytes.size() / 2);
  write_file_atomic(dir_ / "cut.vckpt", bytes);
  expect_error(run_verdant(dir_, {"eval", "--checkpoint", (dir_ / "cut.vckpt").string(), "--data",
                                  (dir_ / "fmnist").string()}),
               1, "cut.vckpt: truncated checkpoint");
  expect_error(run_verdant(dir_, {"eval", "--checkpoint", ckpt, "--batch-size", "0"}), 2,
               "--batch-size");
}

// What a probe of the CLI found: each is one line naming the flag or file, a non-zero exit, and
// nothing left behind.
TEST_F(Cli, ProbedBadInputIsOneLineAndLeavesNothing) {
  auto with = [&](std::vector<std::string> extra) { return quick_with("probe", extra); };
  expect_error(with({"--threads", "100000"}), 2, "--threads: must be a whole number in [0, 1024]");
  expect_error(with({"--threads", "40000"}), 2, "--threads");
  expect_error(with({"--pue", "-1"}), 2, "--pue: must be at least 1, got -1");
  expect_error(with({"--pue", "0"}), 2, "--pue");
  expect_error(with({"--pue", "nan"}), 2, "--pue");
  expect_error(with({"--price", "-5"}), 2, "--price: must be non-negative, got -5");
  // Early errors: unknown model, bad recipe, missing data, divergence in the first epoch.
  expect_error(with({"--model", "resnet9000"}), 2, "--model: unknown model");
  write_file_atomic(dir_ / "bad.yaml", "modifiers:\n  - prune: {final_sparsity: 2}\n");
  expect_error(with({"--recipe", (dir_ / "bad.yaml").string()}), 1, "bad.yaml:2:");
  expect_error(with({"--data", (dir_ / "nodata").string()}), 1, "nodata");
  expect_error(with({"--lr", "1e30", "--no-energy"}), 1, "training diverged");
  // The energy model's settings: a power model that is not one, a negative WUE.
  write_file_atomic(dir_ / "model.json", "[1, 2]");
  expect_error(with({"--power-model", (dir_ / "model.json").string()}), 2,
               "--power-model " + (dir_ / "model.json").string() + ": not a power model");
  expect_error(with({"--wue", "-1"}), 2, "--wue: must be non-negative, got -1");
  EXPECT_FALSE(fs::exists(dir_ / "probe"));

  // Temporaries left by a run killed mid-write are cleared when the next run starts; a live
  // process's are kept.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  fs::create_directories(dir_ / "probe");
  const auto stale = dir_ / "probe" / ("checkpoint.vckpt.tmp." + std::to_string(child));
  const auto live = dir_ / "probe" / ("checkpoint.vckpt.tmp." + std::to_string(::getpid()));
  write_file_atomic(stale, "half a checkpoint");
  write_file_atomic(live, "a write in progress");
  RunResult ok = with({"--epochs", "1"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  const std::string ckpt = (dir_ / "probe" / "checkpoint.vckpt").string();

  // An export over its own input is refused and the checkpoint survives.
  const auto before = read_file_bytes(ckpt);
  expect_error(run_verdant(dir_, {"export", ckpt, "--out", ckpt}), 2,
               "--out " + ckpt + " is the input model");
  EXPECT_EQ(read_file_bytes(ckpt), before);

  // A checkpoint without its extension is still a checkpoint, for every verb.
  fs::copy_file(ckpt, dir_ / "weights");
  const std::string renamed = (dir_ / "weights").string();
  RunResult info = run_verdant(dir_, {"info", renamed});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  RunResult exported = run_verdant(dir_, {"export", renamed, "--out", (dir_ / "w.vdm").string()});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  RunResult evaluated =
      run_verdant(dir_, {"eval", "--checkpoint", renamed, "--data", (dir_ / "fmnist").string()});
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.err;
  write_file_atomic(dir_ / "junk", std::string("\x7f\0\x01garbage", 11));
  expect_error(run_verdant(dir_, {"info", (dir_ / "junk").string()}), 1,
               "neither a checkpoint (.vckpt) nor a YAML model file");
}

TEST_F(Cli, InfoDescribesBuiltInModels) {
  RunResult r = run_verdant(dir_, {"info", "lenet5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Conv2d"), std::string::npos) << r.out;
  expect_error(run_verdant(dir_, {"info", "nosuchmodel"}), 2, "nosuchmodel");
}

// The resume requirement, for real: SIGKILL mid-epoch (after global step 23; the
// last periodic checkpoint is from step 20), resume, and compare with an uninterrupted run.
TEST_F(Cli, SigkillMidEpochThenResumeEndsBitIdentical) {
  auto a = quick("straight");
  a.insert(a.end(), {"--checkpoint-every", "5", "--no-eval"});
  RunResult ra = run_verdant(dir_, a);
  ASSERT_EQ(ra.exit_code, 0) << ra.err;

  auto b = quick("killed");
  b.insert(b.end(), {"--checkpoint-every", "5", "--no-eval"});
  RunResult rb = run_verdant(dir_, b, {"VERDANT_DEBUG_SIGKILL_AT_STEP=23"});
  ASSERT_EQ(rb.signal, SIGKILL) << "exit " << rb.exit_code << " " << rb.err;
  auto at_kill = train::load_checkpoint(dir_ / "killed" / "checkpoint.vckpt");
  EXPECT_EQ(at_kill.meta_at("train.global_step"), "20");
  EXPECT_EQ(at_kill.meta_at("train.epoch"), "1");  // 13 steps per epoch: mid second epoch
  EXPECT_FALSE(fs::exists(dir_ / "killed" / "results.json"));

  b.push_back("--resume");
  RunResult rc = run_verdant(dir_, b);
  ASSERT_EQ(rc.exit_code, 0) << rc.err;
  EXPECT_NE(rc.out.find("resumed from"), std::string::npos) << rc.out;

  auto x = train::load_checkpoint(dir_ / "straight" / "checkpoint.vckpt");
  auto y = train::load_checkpoint(dir_ / "killed" / "checkpoint.vckpt");
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  int compared = 0;
  for (std::size_t i = 0; i < x.tensors.size(); ++i) {
    const auto& [name, tx] = x.tensors[i];
    const Tensor& ty = y.tensors[i].second;
    EXPECT_EQ(name, y.tensors[i].first);
    ASSERT_EQ(tx.nbytes(), ty.nbytes()) << name;
    EXPECT_EQ(std::memcmp(tx.raw(), ty.raw(), tx.nbytes()), 0) << name << " differs after resume";
    ++compared;
  }
  EXPECT_GE(compared, 6 + 6);  // 3 Linear layers' params and their momentum buffers
  // Per-epoch loss and accuracy (fields 2 and 3 of each history line) match too; the
  // timings (field 4) naturally differ.
  auto loss_acc = [](const std::string& history) {
    std::vector<std::string> out;
    std::istringstream lines(history);
    std::string line, epoch, loss, acc;
    while (std::getline(lines, line)) {
      std::istringstream f(line);
      f >> epoch >> loss >> acc;
      out.push_back(epoch + " " + loss + " " + acc);
    }
    return out;
  };
  auto hx = loss_acc(x.meta_at("train.history"));
  EXPECT_EQ(hx.size(), 2u);
  EXPECT_EQ(hx, loss_acc(y.meta_at("train.history")));
}

}  // namespace
}  // namespace verdant
