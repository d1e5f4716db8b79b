// ONNX import: graphs like torch.onnx.export's become layer stacks whose outputs equal the
// same computation done with the autograd ops; bad files give one line naming the file.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "onnx_builder.hpp"
#include "support/error_helpers.hpp"
#include "train/test_util.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/core/io.hpp"
#include "verdant/interop/onnx_import.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::interop {
namespace {

namespace fs = std::filesystem;
using autograd::Variable;
using test_support::contains;
using test_support::error_of;
using testing::OnnxBuilder;

Tensor input(Shape s, std::uint32_t seed) {
  Tensor t(std::move(s), DType::f32);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

Variable constant(Shape s, const std::vector<float>& v) {
  return Variable(Tensor::from(std::move(s), std::span<const float>(v.data(), v.size())));
}

Tensor run(nn::Sequential& m, const Tensor& x) {
  nn::NoGradGuard g;
  m.eval();
  return m(Variable(x)).value();
}

void expect_close(const Tensor& a, const Tensor& b, double tol = 1e-5) {
  ASSERT_EQ(a.shape(), b.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i)
    ASSERT_NEAR(a.at(i), b.at(i), tol * (1 + std::abs(b.at(i)))) << "element " << i;
}

ImportedModel import(const OnnxBuilder& b, const fs::path& folder = {}) {
  const auto bytes = b.bytes();
  return import_onnx_bytes(bytes, "m.onnx", folder);
}

// Flatten -> Gemm (transB) -> Relu -> MatMul + Add -> LogSoftmax, as torch writes an MLP.
OnnxBuilder mlp_graph(std::vector<float>* w1, std::vector<float>* b1, std::vector<float>* w2,
                      std::vector<float>* b2, std::int64_t opset = 13) {
  OnnxBuilder b(opset);
  b.input("x", {1, 4, 4});
  *w1 = b.weight("fc1.weight", {5, 16});
  *b1 = b.weight("fc1.bias", {5});
  *w2 = b.weight("fc2.weight", {5, 3});  // MatMul's [in, out]
  *b2 = b.weight("fc2.bias", {3});
  b.node("Flatten", {"x"}, {"f"});
  auto* g = b.node("Gemm", {"f", "fc1.weight", "fc1.bias"}, {"h"});
  OnnxBuilder::attr(g, "transB", std::int64_t{1});
  b.node("Relu", {"h"}, {"r"});
  b.node("MatMul", {"r", "fc2.weight"}, {"m"});
  b.node("Add", {"fc2.bias", "m"}, {"logits"});
  b.node("LogSoftmax", {"logits"}, {"y"});
  b.output("y", {3});
  return b;
}

TEST(OnnxImport, MlpMatchesTheSameComputation) {
  std::vector<float> w1, b1, w2, b2;
  const ImportedModel m = import(mlp_graph(&w1, &b1, &w2, &b2));
  EXPECT_EQ(m.opset, 13);
  EXPECT_EQ(m.producer, "verdant-test");
  ASSERT_EQ(m.model->size(), 5u);  // Flatten, Linear, ReLU, Linear, LogSoftmax
  EXPECT_EQ(m.model->input_shape(), (Shape{1, 4, 4}));
  EXPECT_EQ((*m.model)[3]->type_name(), "Linear");
  EXPECT_EQ((*m.model)[4]->type_name(), "LogSoftmax");

  const Tensor x = input({3, 1, 4, 4}, 1);
  Variable h = autograd::relu(
      autograd::linear(autograd::flatten(Variable(x)), constant({5, 16}, w1), constant({5}, b1)));
  Variable y = autograd::log_softmax(
      autograd::add(autograd::matmul(h, constant({5, 3}, w2)), constant({3}, b2)));
  expect_close(run(*m.model, x), y.value());
  // The YAML rebuilds the same stack.
  auto rebuilt = nn::parse_model_yaml(m.yaml, "yaml");
  EXPECT_EQ(rebuilt->num_parameters(), m.model->num_parameters());
  EXPECT_EQ(nn::model_yaml(*rebuilt), m.yaml);
}

TEST(OnnxImport, GemmWithoutTransposeAlphaBetaAndReshape) {
  OnnxBuilder b(11);
  b.input("x", {1, 2, 3});
  const auto w = b.weight("w", {6, 4});  // [in, out]
  const auto c = b.weight("c", {4});
  b.ints("shape", {0, -1});
  b.node("Reshape", {"x", "shape"}, {"f"});
  auto* g = b.node("Gemm", {"f", "w", "c"}, {"y"});
  OnnxBuilder::attr(g, "alpha", 0.5f);
  OnnxBuilder::attr(g, "beta", 2.f);
  b.output("y", {4});
  const ImportedModel m = import(b);
  const Tensor x = input({5, 1, 2, 3}, 2);
  Variable ref = autograd::add(
      autograd::mul(autograd::matmul(autograd::reshape(Variable(x), {5, 6}), constant({6, 4}, w)),
                    0.5f),
      autograd::mul(constant({4}, c), 2.f));
  expect_close(run(*m.model, x), ref.value());
}

// Conv with groups, dilation, strides and pads; BatchNormalization; LeakyRelu; MaxPool; a Pad
// folded into AveragePool; GlobalAveragePool; Flatten; Gemm; Softmax.
TEST(OnnxImport, CnnLayersMatchTheSameComputation) {
  OnnxBuilder b(17);
  b.input("x", {4, 13, 13});
  const auto cw = b.weight("conv.w", {8, 2, 3, 3});
  const auto cb = b.weight("conv.b", {8});
  const auto gamma = b.weight("bn.scale", {8}), beta = b.weight("bn.bias", {8});
  const auto mean = b.weight("bn.mean", {8});
  std::vector<float> var(8);
  for (int i = 0; i < 8; ++i) var[i] = 0.5f + 0.25f * i;
  b.weight("bn.var", {8}, var);
  const auto dw = b.weight("dw.w", {8, 1, 3, 3});
  const auto fw = b.weight("fc.w", {3, 8});
  const auto fb = b.weight("fc.b", {3});
  b.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  auto* conv = b.node("Conv", {"x", "conv.w", "conv.b"}, {"c1"});
  OnnxBuilder::attr(conv, "group", std::int64_t{2});
  OnnxBuilder::attr(conv, "dilations", std::vector<std::int64_t>{2, 2});
  OnnxBuilder::attr(conv, "pads", std::vector<std::int64_t>{1, 1, 1, 1});
  OnnxBuilder::attr(conv, "kernel_shape", std::vector<std::int64_t>{3, 3});
  auto* bn =
      b.node("BatchNormalization", {"c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"n1"});
  OnnxBuilder::attr(bn, "epsilon", 1e-3f);
  OnnxBuilder::attr(b.node("LeakyRelu", {"n1"}, {"a1"}), "alpha", 0.2f);
  auto* dwc = b.node("Conv", {"a1", "dw.w"}, {"c2"});
  OnnxBuilder::attr(dwc, "group", std::int64_t{8});
  OnnxBuilder::attr(dwc, "strides", std::vector<std::int64_t>{2, 2});
  OnnxBuilder::attr(dwc, "pads", std::vector<std::int64_t>{1, 1, 1, 1});
  auto* mp = b.node("MaxPool", {"c2"}, {"p1"});
  OnnxBuilder::attr(mp, "kernel_shape", std::vector<std::int64_t>{2, 2});
  OnnxBuilder::attr(mp, "strides", std::vector<std::int64_t>{1, 1});
  b.node("Pad", {"p1", "pads"}, {"pp"});
  auto* ap = b.node("AveragePool", {"pp"}, {"p2"});
  OnnxBuilder::attr(ap, "kernel_shape", std::vector<std::int64_t>{2, 2});
  OnnxBuilder::attr(ap, "strides", std::vector<std::int64_t>{2, 2});
  b.node("GlobalAveragePool", {"p2"}, {"g"});
  b.node("Flatten", {"g"}, {"f"});
  OnnxBuilder::attr(b.node("Gemm", {"f", "fc.w", "fc.b"}, {"l"}), "transB", std::int64_t{1});
  b.node("Softmax", {"l"}, {"y"});
  b.output("y", {3});
  const ImportedModel m = import(b);
  EXPECT_TRUE(contains(m.notes.at(0), "Pad")) << m.notes.at(0);

  const Tensor x = input({2, 4, 13, 13}, 3);
  Variable h = autograd::conv2d(Variable(x), constant({8, 2, 3, 3}, cw), constant({8}, cb),
                                autograd::Conv2dParams(1, 1, 2, 2));
  Tensor rm = Tensor::from({8}, std::span<const float>(mean.data(), 8));
  Tensor rv = Tensor::from({8}, std::span<const float>(var.data(), 8));
  h = autograd::batch_norm(h, constant({8}, gamma), constant({8}, beta), rm, rv, false, 0.1f,
                           1e-3f);
  h = autograd::leaky_relu(h, 0.2f);
  h = autograd::conv2d(h, constant({8, 1, 3, 3}, dw), {}, autograd::Conv2dParams(2, 1, 1, 8));
  h = autograd::max_pool2d(h, 2, 1);
  h = autograd::avg_pool2d(h, 2, 2, 1);
  h = autograd::avg_pool2d(h, h.dim(2));
  h = autograd::softmax(
      autograd::linear(autograd::flatten(h), constant({3, 8}, fw), constant({3}, fb)));
  expect_close(run(*m.model, x), h.value());
  auto* bnl = dynamic_cast<nn::BatchNorm*>((*m.model)[1].get());
  ASSERT_NE(bnl, nullptr);
  EXPECT_FLOAT_EQ(bnl->momentum(), 0.1f);  // ONNX's 0.9 on the running value
}

// GELU as torch.onnx.export writes it before opset 20.
TEST(OnnxImport, ErfDecompositionBecomesGelu) {
  OnnxBuilder b;
  b.input("x", {6});
  b.scalar("sqrt2", 1.41421356f);
  b.scalar("one", 1.f);
  b.scalar("half", 0.5f);
  b.node("Div", {"x", "sqrt2"}, {"d"});
  b.node("Erf", {"d"}, {"e"});
  b.node("Add", {"e", "one"}, {"a"});
  b.node("Mul", {"x", "a"}, {"m"});
  b.node("Mul", {"m", "half"}, {"y"});
  b.output("y", {6});
  const ImportedModel m = import(b);
  ASSERT_EQ(m.model->size(), 1u);
  EXPECT_EQ((*m.model)[0]->type_name(), "GELU");
  const Tensor x = input({4, 6}, 4);
  expect_close(run(*m.model, x), autograd::gelu(Variable(x)).value());
}

TEST(OnnxImport, DropoutIdentityAndFixedBatchAreAccepted) {
  OnnxBuilder b;
  b.input("x", {5}, /*dynamic_batch=*/false);
  b.weight("w", {2, 5});
  b.node("Identity", {"x"}, {"i"});
  b.node("Dropout", {"i"}, {"d"});
  OnnxBuilder::attr(b.node("Gemm", {"d", "w"}, {"y"}), "transB", std::int64_t{1});
  b.output("y", {2});
  const ImportedModel m = import(b);
  EXPECT_EQ(m.model->size(), 1u);
  EXPECT_EQ(m.notes.size(), 2u);
  EXPECT_EQ(run(*m.model, input({7, 5}, 5)).shape(), (Shape{7, 2}));  // any batch
}

// ------------------------------------------------------------------ bad input
TEST(OnnxImport, NotProtobufOrTruncatedNamesTheFile) {
  const std::string text = "input: [1, 28, 28]\nlayers: [relu]\n";
  const std::vector<std::uint8_t> yaml(text.begin(), text.end());
  std::string e = error_of([&] { import_onnx_bytes(yaml, "m.onnx", {}); });
  EXPECT_EQ(e.rfind("m.onnx: not an ONNX model", 0), 0u) << e;
  std::vector<float> w1, b1, w2, b2;
  auto bytes = mlp_graph(&w1, &b1, &w2, &b2).bytes();
  for (std::size_t keep : {bytes.size() / 2, bytes.size() - 3, std::size_t{5}}) {
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + keep);
    e = error_of([&] { import_onnx_bytes(cut, "m.onnx", {}); });
    EXPECT_EQ(e.rfind("m.onnx: ", 0), 0u) << e;
  }
  EXPECT_FALSE(looks_like_onnx(yaml));
  EXPECT_TRUE(looks_like_onnx(bytes));
  e = error_of([&] { import_onnx(fs::path("/nonexistent/m.onnx")); });
  EXPECT_EQ(e, "/nonexistent/m.onnx: no such ONNX file");
}

TEST(OnnxImport, UnsupportedOperatorNamesNodeOpOpsetAndTheSupportedOnes) {
  OnnxBuilder b(15);
  b.input("x", {4});
  b.node("Softplus", {"x"}, {"y"}, "act/softplus");
  b.output("y", {4});
  const std::string e = error_of([&] { import(b); });
  EXPECT_EQ(e.rfind("m.onnx: node 'act/softplus' (op Softplus, opset 15) is not supported; "
                    "supported operators: Add, AveragePool, BatchNormalization,",
                    0),
            0u)
      << e;
  EXPECT_TRUE(contains(e, "Tanh")) << e;
}

TEST(OnnxImport, StructuralProblemsAreOneLineErrors) {
  auto err = [](OnnxBuilder& b) { return error_of([&] { import(b); }); };
  {  // a residual connection
    OnnxBuilder b;
    b.input("x", {4});
    b.node("Relu", {"x"}, {"r"});
    b.node("Add", {"x", "r"}, {"y"});
    b.output("y", {4});
    EXPECT_TRUE(contains(err(b), "no branches or residual connections")) << err(b);
  }
  {  // an opset outside 11..17
    OnnxBuilder b(9);
    b.input("x", {4});
    b.node("Relu", {"x"}, {"y"});
    b.output("y", {4});
    EXPECT_TRUE(contains(err(b), "m.onnx: opset 9 is not supported (opsets 11 to 17")) << err(b);
  }
  {  // a reshape that is not a flatten
    OnnxBuilder b;
    b.input("x", {16});
    b.ints("shape", {-1, 1, 4, 4});
    b.node("Reshape", {"x", "shape"}, {"y"});
    b.output("y", {1, 4, 4});
    EXPECT_TRUE(contains(err(b), "is supported only as a flatten")) << err(b);
  }
  {  // weights that do not fit the input
    OnnxBuilder b;
    b.input("x", {4});
    b.weight("w", {3, 5});
    OnnxBuilder::attr(b.node("Gemm", {"x", "w"}, {"y"}, "fc"), "transB", std::int64_t{1});
    b.output("y", {3});
    EXPECT_TRUE(contains(err(b), "m.onnx: node 'fc' (Gemm): B [3, 5] does not fit 4 input"))
        << err(b);
  }
  {  // a weight computed in the graph
    OnnxBuilder b;
    b.input("x", {4});
    b.weight("w", {4, 4});
    b.node("Relu", {"w"}, {"w2"});
    b.node("MatMul", {"x", "w2"}, {"y"}, "mm");
    b.output("y", {4});
    EXPECT_TRUE(contains(err(b), "must be a constant")) << err(b);
  }
  {  // a dynamic image size
    OnnxBuilder b;
    b.input("x", {1, 28, 28});
    b.graph()
        ->mutable_input(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->mutable_dim(2)
        ->set_dim_param("H");
    b.node("Relu", {"x"}, {"y"});
    b.output("y", {1, 28, 28});
    EXPECT_TRUE(contains(err(b), "only the batch dimension may be dynamic")) << err(b);
  }
  {  // libonnx's shape inference would divide by these zeros
    for (const char* attribute : {"strides", "dilations", "group"}) {
      OnnxBuilder b;
      b.input("x", {1, 6, 6});
      b.weight("w", {1, 1, 3, 3});
      auto* conv = b.node("Conv", {"x", "w"}, {"y"}, "c");
      if (std::string(attribute) == "group")
        OnnxBuilder::attr(conv, attribute, std::int64_t{0});
      else
        OnnxBuilder::attr(conv, attribute, std::vector<std::int64_t>{0, 2});
      b.output("y", {1, 4, 4});
      EXPECT_EQ(err(b), std::string("m.onnx: node 'c' (Conv): attribute ") + attribute +
                            " holds 0; it must be positive");
    }
  }
  {  // onnx.checker's complaint, in one line
    OnnxBuilder b;
    b.input("x", {4});
    b.node("Relu", {"nowhere"}, {"y"});
    b.output("y", {4});
    EXPECT_TRUE(contains(err(b), "m.onnx: the model fails onnx.checker")) << err(b);
  }
}

// ------------------------------------------------------------------ external data and files
class OnnxFiles : public ::testing::Test {
 protected:
  test::TempDir dir_;
};

// The first layer's weight in a file beside the model, as onnx.save_model(...,
// save_as_external_data=True) writes it.
OnnxBuilder external_model(const std::string& location, std::vector<float>* w) {
  OnnxBuilder b;
  b.input("x", {4});
  *w = {1, 2, 3, 4, 5, 6, 7, 8};
  b.external_weight("w", {2, 4}, location, 16);
  OnnxBuilder::attr(b.node("Gemm", {"x", "w"}, {"y"}), "transB", std::int64_t{1});
  b.output("y", {2});
  return b;
}

TEST_F(OnnxFiles, ExternalDataIsReadFromTheModelsFolder) {
  std::vector<float> w;
  const auto b = external_model("weights/w.bin", &w);
  fs::create_directories(dir_ / "weights");
  std::vector<float> file(4, 0.f);  // 16 bytes of padding before the tensor (its offset)
  file.insert(file.end(), w.begin(), w.end());
  write_file_atomic(dir_ / "weights" / "w.bin",
                    std::span<const std::uint8_t>(
                        reinterpret_cast<const std::uint8_t*>(file.data()), file.size() * 4));
  write_file_atomic(dir_ / "m.onnx", b.bytes());
  const ImportedModel m = import_onnx(dir_ / "m.onnx");
  const Tensor y = run(*m.model, Tensor::from({1, 4}, {1, 0, 0, 1}));
  EXPECT_FLOAT_EQ(y.at(0), 1 + 4);
  EXPECT_FLOAT_EQ(y.at(1), 5 + 8);
}

TEST_F(OnnxFiles, MissingOrEscapingExternalDataNamesTheFile) {
  std::vector<float> w;
  write_file_atomic(dir_ / "m.onnx", external_model("w.bin", &w).bytes());
  const std::string model = (dir_ / "m.onnx").string();
  std::string e = error_of([&] { import_onnx(model); });
  EXPECT_EQ(e.rfind(model +
                        ": initializer 'w' reads its data from external file 'w.bin', which "
                        "does not exist (" +
                        (dir_ / "w.bin").string() + ")",
                    0),
            0u)
      << e;
  write_file_atomic(dir_ / "m.onnx", external_model("../w.bin", &w).bytes());
  e = error_of([&] { import_onnx(model); });
  EXPECT_TRUE(contains(e, "must be a relative path inside the model's folder")) << e;
  write_file_atomic(dir_ / "w.bin", std::string(20, 'x'));  // offset 16 + 32 bytes needed
  write_file_atomic(dir_ / "m.onnx", external_model("w.bin", &w).bytes());
  e = error_of([&] { import_onnx(model); });
  EXPECT_TRUE(contains(e, "has 20 bytes, fewer than offset 16 + length 32")) << e;
}

// .onnx wherever a model is accepted: train::load_model by extension and by content, and
// `verdant import`'s checkpoint rebuilds the same model.
TEST_F(OnnxFiles, LoadModelAndImportToCheckpoint) {
  std::vector<float> w1, b1, w2, b2;
  const auto bytes = mlp_graph(&w1, &b1, &w2, &b2).bytes();
  write_file_atomic(dir_ / "m.onnx", bytes);
  write_file_atomic(dir_ / "m.model", bytes);
  const Tensor x = input({2, 1, 4, 4}, 6);
  auto a = train::load_model((dir_ / "m.onnx").string());
  EXPECT_EQ(a.format, train::ModelFormat::onnx);
  EXPECT_FALSE(a.yaml.empty());
  auto b = train::load_model((dir_ / "m.model").string());
  EXPECT_EQ(b.format, train::ModelFormat::onnx);
  const Tensor ya = run(*a.model, x);
  expect_close(run(*b.model, x), ya, 0);

  const auto out = dir_ / "m.vckpt";
  const train::ImportReport r =
      train::import_to_checkpoint({.model = (dir_ / "m.onnx").string(), .out = out});
  EXPECT_EQ(r.opset, 13);
  auto c = train::load_model(out.string());
  EXPECT_EQ(c.format, train::ModelFormat::checkpoint);
  expect_close(run(*c.model, x), ya, 0);
  EXPECT_EQ(*c.checkpoint->find_meta("verdant.kind"), "import");

  // A bad file writes nothing.
  write_file_atomic(dir_ / "bad.onnx", std::string("not a model"));
  const std::string e = error_of([&] {
    train::import_to_checkpoint({.model = (dir_ / "bad.onnx").string(), .out = dir_ / "bad.vckpt"});
  });
  EXPECT_EQ(e.rfind((dir_ / "bad.onnx").string() + ": not an ONNX model", 0), 0u) << e;
  EXPECT_FALSE(fs::exists(dir_ / "bad.vckpt"));
}

TEST(OnnxInputShape, MismatchNamesTheFileAndBothShapes) {
  OnnxBuilder b;
  b.input("x", {3, 32, 32});
  b.node("Relu", {"x"}, {"y"});
  b.output("y", {3, 32, 32});
  const ImportedModel m = import(b);
  const std::string e = error_of([&] {
    train::check_model_fits(*m.model, {{1, 28, 28}}, "m.onnx", "the data (Fashion-MNIST)");
  });
  EXPECT_EQ(e,
            "m.onnx: the model takes samples of shape [3, 32, 32], but the data (Fashion-MNIST) "
            "has samples of shape [1, 28, 28]");
  train::check_model_fits(*m.model, {{3, 32, 32}}, "m.onnx", "data");  // fits
  std::vector<float> w1, b1, w2, b2;
  const ImportedModel mlp = import(mlp_graph(&w1, &b1, &w2, &b2));
  train::check_model_fits(*mlp.model, {{16}}, "m.onnx", "data");  // Flatten takes any [16]
}

}  // namespace
}  // namespace verdant::interop
