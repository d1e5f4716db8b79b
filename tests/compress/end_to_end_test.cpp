// `verdant compress`'s whole path on a slice of Fashion-MNIST: train with a prune + QAT
// recipe, then check the report and that the written files load back. Labelled slow.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "verdant/compress/compact.hpp"
#include "verdant/compress/run.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/train/checkpoint.hpp"

namespace vc = verdant::compress;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("verdant_compress_e2e_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A quiet run of `recipe` on `model` over the Fashion-MNIST slice these tests share.
vc::RunOptions slice_run(const std::string& model, const fs::path& recipe, const fs::path& out) {
  vc::RunOptions o;
  o.training.model = model;
  o.recipe = recipe;
  o.training.out_dir = out;
  o.training.data.limit_train = 2000;
  o.training.data.limit_test = 500;
  o.training.energy.enabled = false;
  return o;
}

// One epoch of the dense mlp on the slice (a recipe that changes nothing), written to `out`.
vc::RunOptions dense_epoch(const TempDir& tmp, const fs::path& out) {
  verdant::write_file_atomic(tmp.path / "dense.yaml",
                             "modifiers:\n  - prune: {final_sparsity: 0.0}\n");
  vc::RunOptions o = slice_run("mlp", tmp.path / "dense.yaml", out);
  o.training.epochs = 1;
  o.training.optimizer.lr = 0.05;
  return o;
}
}  // namespace

TEST(Session, EndToEndPruneAndQuantizeOnASlice) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (dataset-fashion-mnist)";
  TempDir tmp;
  verdant::write_file_atomic(
      tmp.path / "r.yaml",
      "epochs: 2\nlr: 0.05\nmodifiers:\n  - prune: {final_sparsity: 0.9, end_epoch: 1}\n"
      "  - quantize: {mode: qat}\n");
  const auto rep = vc::run_recipe(slice_run("mlp", tmp.path / "r.yaml", tmp.path / "out"));
  EXPECT_GT(rep.accuracy_after, rep.accuracy_before + 0.2);  // it trained, masks and all
  EXPECT_NEAR(1.0 - double(rep.nonzero_after) / double(rep.params_before), 0.9, 0.01);
  EXPECT_GT(double(rep.bytes_dense_fp32) / double(rep.bytes_compact), 15.0);
  EXPECT_LT(rep.flops_after, rep.flops_dense / 5);
  // The written files load back.
  const auto ckpt = verdant::train::load_checkpoint(tmp.path / "out" / "model.vckpt");
  EXPECT_NE(ckpt.find_meta("model.yaml"), nullptr);
  const auto compact =
      vc::decode_compact(verdant::read_file_bytes(tmp.path / "out" / "model.vcz"), "model.vcz");
  EXPECT_EQ(compact.size(), 6u);
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "report.json"));
}

TEST(Session, EndToEndDistillationUsesTheTeachersLogitsOfEachSample) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (dataset-fashion-mnist)";
  TempDir tmp;
  // A teacher: mlp trained for one epoch on the slice.
  vc::RunOptions o = dense_epoch(tmp, tmp.path / "teacher");
  const auto teacher = vc::run_recipe(o);
  // The student starts as the teacher and learns only from its soft outputs (alpha 0, T 1):
  // when every sample meets its own teacher logits the gradient is zero and nothing changes;
  // logits of other samples would pull the student away within one epoch.
  verdant::write_file_atomic(tmp.path / "kd.yaml",
                             "modifiers:\n  - distill: {teacher: teacher/model.vckpt, alpha: 0, "
                             "temperature: 1}\n");
  o.training.model = (tmp.path / "teacher" / "model.vckpt").string();
  o.recipe = tmp.path / "kd.yaml";
  o.training.out_dir.clear();
  o.training.optimizer.momentum = 0;
  const auto kd = vc::run_recipe(o);
  EXPECT_NEAR(kd.accuracy_before, teacher.accuracy_after, 1e-9);
  EXPECT_NEAR(kd.accuracy_after, kd.accuracy_before, 0.004);
  ASSERT_FALSE(kd.log.empty());
  EXPECT_NE(kd.log[0].find("teacher test accuracy"), std::string::npos) << kd.log[0];
  // The same with a student trained on the hard labels too moves on: the check above can fail.
  verdant::write_file_atomic(tmp.path / "kd.yaml",
                             "modifiers:\n  - distill: {teacher: teacher/model.vckpt, alpha: 1, "
                             "temperature: 1}\n");
  o.training.optimizer.lr = 0.1;
  const auto ce = vc::run_recipe(o);
  EXPECT_GT(std::fabs(ce.accuracy_after - ce.accuracy_before), 0.004);
}

TEST(Session, CollapsedRunStopsWithOneClearErrorAndWritesNothing) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (dataset-fashion-mnist)";
  TempDir tmp;
  vc::RunOptions o = dense_epoch(tmp, tmp.path / "first");
  o.training.data.limit_train =
      2560;  // a collapse needs at least CollapseWatch::kMinSamples to show
  vc::run_recipe(o);
  // Every weight and bias zero: the ReLUs never fire and only the output bias learns, so all
  // examples of a batch get the same class.
  auto ckpt = verdant::train::load_checkpoint(tmp.path / "first" / "model.vckpt");
  for (auto& [name, t] : ckpt.tensors)
    if (name.rfind("compress/", 0) != 0) std::memset(t.raw(), 0, t.nbytes());
  verdant::train::save_checkpoint(tmp.path / "zero.vckpt", ckpt);
  o.training.model = (tmp.path / "zero.vckpt").string();
  o.training.out_dir = tmp.path / "out";
  o.training.epochs = 3;
  try {
    vc::run_recipe(o);
    FAIL() << "no error";
  } catch (const verdant::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("training collapsed in epoch 1: within every batch (2560 examples)"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
}
