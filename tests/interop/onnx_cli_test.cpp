// `verdant import`, and .onnx files given to the other verbs: one error line naming the file
// for bad input, and nothing written.
#include <gtest/gtest.h>

#include "onnx_builder.hpp"
#include "support/run_program.hpp"
#include "train/test_util.hpp"
#include "verdant/core/io.hpp"

namespace verdant::interop {
namespace {

namespace fs = std::filesystem;
using test_support::expect_error;
using test_support::RunResult;
using testing::OnnxBuilder;

class OnnxCli : public ::testing::Test {
 protected:
  void SetUp() override { test::write_fake_fashion_mnist(dir_ / "fmnist", 300, 100); }
  RunResult verdant(std::vector<std::string> args) {
    return test_support::run_program(VERDANT_EXE, std::move(args), dir_.path());
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Flatten -> Gemm -> Relu -> Gemm over samples of `sample` shape.
  std::string write_mlp(const std::string& name, std::vector<std::int64_t> sample) {
    OnnxBuilder b(17);
    b.input("x", sample);
    std::int64_t n = 1;
    for (auto d : sample) n *= d;
    b.weight("w1", {16, n});
    b.weight("w2", {10, 16});
    b.node("Flatten", {"x"}, {"f"});
    OnnxBuilder::attr(b.node("Gemm", {"f", "w1"}, {"h"}), "transB", std::int64_t{1});
    b.node("Relu", {"h"}, {"r"});
    OnnxBuilder::attr(b.node("Gemm", {"r", "w2"}, {"y"}), "transB", std::int64_t{1});
    b.output("y", {10});
    write_file_atomic(dir_ / name, b.bytes());
    return path(name);
  }
  test::TempDir dir_;
};

TEST_F(OnnxCli, ImportWritesACheckpointThatEvalAndInfoRead) {
  const std::string m = write_mlp("m.onnx", {1, 28, 28});
  RunResult r = verdant({"import", m, "--out", path("m.vckpt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("imported " + m + " (opset 17, from verdant-test)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Linear(in=784, out=16, bias=false)"), std::string::npos) << r.out;
  for (const std::string& model : {m, path("m.vckpt")}) {
    r = verdant({"eval", "--checkpoint", model, "--data", path("fmnist")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;
  }
  r = verdant({"info", m});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("12,704"), std::string::npos) << r.out;  // 784 * 16 + 16 * 10
  r = verdant({"train", "--model", m, "--data", path("fmnist"), "--epochs", "1", "--threads", "1",
               "--no-energy", "--out", path("run")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "run" / "checkpoint.vckpt"));
  r = verdant({"eval", "--checkpoint", path("run/checkpoint.vckpt"), "--data", path("fmnist")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(OnnxCli, BadFilesAreOneLineAndWriteNothing) {
  write_file_atomic(dir_ / "text.onnx", std::string("hello, not protobuf\n"));
  RunResult r = verdant({"import", path("text.onnx"), "--out", path("a.vckpt")});
  expect_error(r, 1, path("text.onnx") + ": not an ONNX model");
  const std::string good = write_mlp("good.onnx", {1, 28, 28});
  const auto bytes = read_file_bytes(good);
  write_file_atomic(dir_ / "cut.onnx",
                    std::span<const std::uint8_t>(bytes.data(), bytes.size() / 3));
  r = verdant({"import", path("cut.onnx"), "--out", path("a.vckpt")});
  expect_error(r, 1, path("cut.onnx") + ": ");
  OnnxBuilder b(16);
  b.input("x", {4});
  b.node("Elu", {"x"}, {"y"}, "act");
  b.output("y", {4});
  write_file_atomic(dir_ / "elu.onnx", b.bytes());
  r = verdant({"import", path("elu.onnx"), "--out", path("a.vckpt")});
  expect_error(r, 1,
               path("elu.onnx") +
                   ": node 'act' (op Elu, opset 16) is not supported; supported "
                   "operators: Add, AveragePool");
  OnnxBuilder ext(17);
  ext.input("x", {4});
  ext.external_weight("w", {2, 4}, "weights.bin", 0);
  OnnxBuilder::attr(ext.node("Gemm", {"x", "w"}, {"y"}), "transB", std::int64_t{1});
  ext.output("y", {2});
  write_file_atomic(dir_ / "ext.onnx", ext.bytes());
  r = verdant({"import", path("ext.onnx"), "--out", path("a.vckpt")});
  expect_error(r, 1,
               path("ext.onnx") +
                   ": initializer 'w' reads its data from external file "
                   "'weights.bin', which does not exist (" +
                   path("weights.bin") + ")");
  r = verdant({"import", path("missing.onnx"), "--out", path("a.vckpt")});
  expect_error(r, 2, "missing.onnx: no such model file");
  r = verdant({"import", good, "--out", good});
  expect_error(r, 2, "--out " + good + " is the ONNX file itself");
  EXPECT_FALSE(fs::exists(dir_ / "a.vckpt"));
  EXPECT_EQ(read_file_bytes(good), bytes);
}

TEST_F(OnnxCli, ExportFormatOnnxAndItsMistakes) {
  RunResult r = verdant({"export", "mlp", "--format", "onnx", "--out", path("mlp.onnx")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ONNX opset 13, fp32"), std::string::npos) << r.out;
  r = verdant({"info", path("mlp.onnx")});
  EXPECT_NE(r.out.find("266,610"), std::string::npos) << r.out;
  r = verdant({"export", "mlp", "--out", path("x.onnx")});
  expect_error(r, 2, "out " + path("x.onnx") + " is an .onnx file but --format is vdm");
  r = verdant({"export", "mlp", "--format", "onnx", "--precision", "int8", "--opset", "11", "--out",
               path("x.onnx")});
  expect_error(r, 2, "--opset 11 has no per-channel DequantizeLinear");
  r = verdant({"export", path("mlp.onnx"), "--format", "onnx", "--precision", "int8", "--out",
               path("q.onnx"), "--calibration", path("fmnist"), "--agreement-samples", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("int8 QDQ"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "x.onnx"));
  // A QDQ file is for other runtimes; importing it names the first quantization node.
  r = verdant({"info", path("q.onnx")});
  expect_error(r, 1, "(op QuantizeLinear, opset 13) is not supported");
}

TEST_F(OnnxCli, InputShapeThatDoesNotFitTheDataSaysBothShapes) {
  OnnxBuilder b(13);
  b.input("x", {3, 32, 32});
  b.weight("w", {4, 3, 3, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("GlobalAveragePool", {"c"}, {"g"});
  b.node("Flatten", {"g"}, {"y"});
  b.output("y", {4});
  write_file_atomic(dir_ / "rgb.onnx", b.bytes());
  RunResult r = verdant({"eval", "--checkpoint", path("rgb.onnx"), "--data", path("fmnist")});
  expect_error(r, 1,
               path("rgb.onnx") +
                   ": the model takes samples of shape [3, 32, 32], but the data "
                   "(Fashion-MNIST (" +
                   path("fmnist") + "): 100 test) has samples of shape [1, 28, 28]");
  r = verdant({"train", "--model", path("rgb.onnx"), "--data", path("fmnist"), "--epochs", "1",
               "--no-energy", "--out", path("run")});
  expect_error(r, 1, "the model takes samples of shape [3, 32, 32]");
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

}  // namespace
}  // namespace verdant::interop
