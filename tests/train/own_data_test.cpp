// Bringing your own data through the real binaries: train, eval, compress, export with
// calibration and verdant-edge run on a CSV and on NumPy files, the real scikit-learn tables
// (wine, digits as flat features and as 8x8 images), and the bad-input cases each with one line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/npy_writer.hpp"
#include "support/run_program.hpp"
#include "test_util.hpp"
#include "verdant/core/io.hpp"

namespace verdant {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test_support::expect_error;
using test_support::RunResult;

const fs::path kSklearn = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

class OwnData : public ::testing::Test {
 protected:
  RunResult verdant(std::vector<std::string> args) {
    return test_support::run_program(VERDANT_EXE, std::move(args), dir_.path());
  }
  RunResult edge(std::vector<std::string> args) {
    return test_support::run_program(VERDANT_EDGE_EXE, std::move(args), dir_.path());
  }
  double test_accuracy(const std::string& out) {
    const auto j = nlohmann::json::parse(read_file_text(dir_ / out / "results.json"));
    return j["test"]["accuracy"].get<double>();
  }
  // Two Gaussian blobs per class in 6 features of very different scales, so that learning
  // needs the normalization: feature k of class c is centred at (c + 1) * 10^k.
  void write_blobs(int n) {
    std::string csv = "a,b,c,d,e,f,kind\n";
    std::vector<float> x;
    std::vector<std::int64_t> y;
    std::uint32_t s = 12345;
    auto noise = [&] {
      s = s * 1664525u + 1013904223u;
      return static_cast<float>((s >> 8) % 1000) / 1000.f - 0.5f;
    };
    for (int i = 0; i < n; ++i) {
      const int c = i % 3;
      for (int k = 0; k < 6; ++k) {
        const float v = static_cast<float>((c + 1) * std::pow(10.0, k)) * (1.f + 0.3f * noise());
        x.push_back(v);
        csv += std::to_string(v) + ",";
      }
      csv += std::string(c == 0 ? "low" : c == 1 ? "mid" : "high") + "\n";
      y.push_back(c);
    }
    write_file_atomic(dir_ / "blobs.csv", csv);
    test_support::write_npy(dir_ / "x.npy", "<f4", {n, 6}, x);
    test_support::write_npy(dir_ / "y.npy", "<i8", {n}, y);
  }
  TempDir dir_;
};

TEST_F(OwnData, CsvTrainsEvaluatesExportsAndRunsOnTheEdge) {
  write_blobs(300);
  const std::string csv = (dir_ / "blobs.csv").string();
  RunResult t = verdant({"train", "--model", "mlp", "--data", csv, "--epochs", "8", "--batch-size",
                         "16", "--no-energy", "--threads", "1", "--out", (dir_ / "run").string()});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_GT(test_accuracy("run"), 0.9);
  const std::string ckpt = (dir_ / "run" / "checkpoint.vckpt").string();
  // eval finds the same held-out part and the model's normalization and class names.
  RunResult e = verdant({"eval", "--checkpoint", ckpt, "--data", csv});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("60 test"), std::string::npos) << e.out;
  // int8 export calibrated on the CSV. verdant-edge reads numbers only, so it takes the same
  // features as a NumPy file, with labels numbered as the model's classes: the CSV's names
  // sorted (high, low, mid).
  RunResult x = verdant({"export", ckpt, "--precision", "int8", "--calibration", csv, "--out",
                         (dir_ / "m.vdm").string()});
  ASSERT_EQ(x.exit_code, 0) << x.err;
  std::vector<std::int64_t> by_name;
  for (int i = 0; i < 300; ++i) by_name.push_back(i % 3 == 0 ? 1 : i % 3 == 1 ? 2 : 0);
  test_support::write_npy(dir_ / "y_names.npy", "<i8", {300}, by_name);
  RunResult r = edge({"run", (dir_ / "m.vdm").string(), "--input", (dir_ / "x.npy").string(),
                      "--labels", (dir_ / "y_names.npy").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto at = r.out.find("accuracy: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::stod(r.out.substr(at + 10)), 90.0) << r.out;
  // compress takes the same data flags.
  write_file_atomic(dir_ / "p.yaml", "modifiers:\n  - prune: {final_sparsity: 0.5}\n");
  RunResult c = verdant({"compress", "--model", ckpt, "--recipe", (dir_ / "p.yaml").string(),
                         "--data", csv, "--no-energy", "--quiet", "--threads", "1"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("test accuracy"), std::string::npos) << c.out;
}

TEST_F(OwnData, NumpyArraysTrainAndRunOnTheEdge) {
  write_blobs(300);
  const std::string x = (dir_ / "x.npy").string(), y = (dir_ / "y.npy").string();
  RunResult t = verdant({"train", "--model", "mlp", "--data", x, "--labels", y, "--epochs", "8",
                         "--batch-size", "16", "--no-energy", "--threads", "1", "--out",
                         (dir_ / "run").string()});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_GT(test_accuracy("run"), 0.9);
  RunResult xp = verdant(
      {"export", (dir_ / "run" / "checkpoint.vckpt").string(), "--out", (dir_ / "m.vdm").string()});
  ASSERT_EQ(xp.exit_code, 0) << xp.err;
  RunResult r = edge({"run", (dir_ / "m.vdm").string(), "--input", x, "--labels", y});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto at = r.out.find("accuracy: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_GT(std::stod(r.out.substr(at + 10)), 90.0) << r.out;
}

TEST_F(OwnData, RealScikitLearnTablesTrain) {
  if (!fs::exists(kSklearn / "wine_data.csv"))
    GTEST_SKIP() << "scikit-learn's data not installed (python3-sklearn)";
  auto train = [&](std::vector<std::string> extra, const std::string& out) {
    std::vector<std::string> args = {"train",    "--no-energy", "--threads", "1",
                                     "--epochs", "20",          "--out",     (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = verdant(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const double acc = test_accuracy(out);
    std::printf("%s: test accuracy %.2f%%\n", out.c_str(), 100 * acc);
    RecordProperty(out + "_test_accuracy", std::to_string(acc));
    return acc;
  };
  // 178 wines: small batches, or 20 epochs are 180 steps.
  EXPECT_GT(train({"--model", "mlp", "--data", (kSklearn / "wine_data.csv").string(),
                   "--batch-size", "16"},
                  "wine"),
            0.85);
  EXPECT_GT(train({"--model", "mlp", "--data", (kSklearn / "digits.csv.gz").string()}, "digits"),
            0.9);
  EXPECT_GT(train({"--model", VERDANT_SOURCE_DIR "/recipes/models/cnn_8x8.yaml", "--data",
                   (kSklearn / "digits.csv.gz").string(), "--shape", "1,8,8"},
                  "digits_cnn"),
            0.9);
}

TEST_F(OwnData, BadDataIsOneLineNamingTheFile) {
  write_blobs(30);
  const std::string csv = (dir_ / "blobs.csv").string();
  auto train = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--no-energy", "--epochs",
                                     "1",     "--out",       (dir_ / "out").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return verdant(args);
  };
  write_file_atomic(dir_ / "ragged.csv", "a,b,c\n1,2,0\n1,2\n");
  expect_error(train({"--model", "mlp", "--data", (dir_ / "ragged.csv").string()}), 1,
               "ragged.csv:3: expected 3 fields, found 2");
  write_file_atomic(dir_ / "word.csv", "a,b,c\n1,2,0\n1,two,1\n");
  expect_error(train({"--model", "mlp", "--data", (dir_ / "word.csv").string()}), 1,
               "word.csv:3:2: column 'b': 'two' is not a finite number");
  expect_error(train({"--model", "mlp", "--data", csv, "--label-column", "nope"}), 1,
               "no column named 'nope'");
  test_support::write_npy<std::int64_t>(dir_ / "y5.npy", "<i8", {5}, {0, 1, 2, 0, 1});
  expect_error(train({"--model", "mlp", "--data", (dir_ / "x.npy").string(), "--labels",
                      (dir_ / "y5.npy").string()}),
               1, "30 samples but the labels have shape [5]");
  expect_error(train({"--model", "mlp", "--data", (dir_ / "x.npy").string()}), 2,
               "--labels is needed");
  // A model whose input does not match the data says both shapes.
  expect_error(train({"--model", "lenet5", "--data", csv}), 2, "lenet5 needs images");
  write_file_atomic(dir_ / "m.yaml",
                    "input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: 3}\n");
  expect_error(train({"--model", (dir_ / "m.yaml").string(), "--data", csv}), 1,
               "m.yaml: the model takes samples of shape [1, 28, 28], but the data (");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
}  // namespace verdant
