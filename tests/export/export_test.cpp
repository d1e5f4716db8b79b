// Export against the engine: fp32 .vdm reproduces the engine's outputs; int8 stays close.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <limits>
#include <random>

#include "support/models.hpp"
#include "verdant/core/error.hpp"
#include "verdant/export/export.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/runtime/model.hpp"

namespace verdant::exporter {
namespace {

std::vector<float> random_inputs(std::size_t n, std::size_t size, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);  // like normalised pixels
  std::vector<float> v(n * size);
  for (float& x : v) x = d(g);
  return v;
}

std::vector<float> engine_forward(nn::Sequential& model, const float* x, std::size_t size) {
  nn::NoGradGuard guard;
  Shape shape = model.input_shape();
  shape.insert(shape.begin(), 1);
  Tensor t = Tensor::from(shape, std::span<const float>(x, size));
  autograd::Variable out = model.forward(autograd::Variable(t));
  const float* p = out.value().data<float>();
  return std::vector<float>(p, p + out.numel());
}

std::unique_ptr<runtime::Model> load(const ExportResult& r) {
  std::string err;
  auto m = runtime::Model::load_buffer(r.bytes.data(), r.bytes.size(), &err);
  EXPECT_NE(m, nullptr) << err;
  return m;
}

class ExportModels : public ::testing::TestWithParam<const char*> {};

TEST_P(ExportModels, Fp32ReproducesTheEngine) {
  auto model = nn::make_model(GetParam());
  model->eval();
  ExportOptions o;
  auto r = export_vdm(*model, o, {}, 0);
  auto m = load(r);
  ASSERT_NE(m, nullptr);
  const std::size_t n = m->input_size();
  ASSERT_EQ(n, 784u);
  const auto xs = random_inputs(8, n, 1);
  for (std::size_t i = 0; i < 8; ++i) {
    const auto ref = engine_forward(*model, xs.data() + i * n, n);
    std::vector<float> out(m->output_size());
    ASSERT_EQ(m->run(xs.data() + i * n, n, out.data(), out.size()), runtime::RunStatus::ok);
    ASSERT_EQ(ref.size(), out.size());
    for (std::size_t j = 0; j < out.size(); ++j)
      EXPECT_NEAR(out[j], ref[j], 1e-4f + 1e-4f * std::abs(ref[j]));
  }
}

TEST_P(ExportModels, Int8StaysCloseToTheEngine) {
  auto model = nn::make_model(GetParam());
  model->eval();
  ExportOptions o;
  o.precision = Precision::int8;
  const std::size_t n = 784;
  const auto cal = random_inputs(64, n, 2);
  auto r = export_vdm(*model, o, cal, 64);
  auto m = load(r);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->layer(m->num_layers() - 1).encoding, vdm::Encoding::int8);
  const auto xs = random_inputs(16, n, 3);
  double err = 0, mag = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const auto ref = engine_forward(*model, xs.data() + i * n, n);
    std::vector<float> out(m->output_size());
    m->run(xs.data() + i * n, n, out.data(), out.size());
    for (std::size_t j = 0; j < out.size(); ++j) {
      err = std::max<double>(err, std::abs(out[j] - ref[j]));
      mag = std::max<double>(mag, std::abs(ref[j]));
    }
  }
  EXPECT_LT(err, 0.1 * mag) << "max |logit| " << mag;
}

INSTANTIATE_TEST_SUITE_P(BuiltIn, ExportModels, ::testing::Values("mlp", "lenet5"));

TEST(Export, PrunedLayersBecomeCsr) {
  auto model = nn::make_model("mlp");
  for (auto& [name, p] : model->named_parameters()) {
    if (p.ndim() != 2) continue;
    float* w = p.value().data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i)
      if (i % 10 != 0) w[i] = 0.f;  // 90% zeros
  }
  ExportOptions o;
  o.precision = Precision::int8;
  auto r = export_vdm(*model, o, random_inputs(8, 784, 4), 8);
  auto m = load(r);
  ASSERT_NE(m, nullptr);
  for (std::size_t i = 1; i < m->num_layers(); ++i)
    EXPECT_EQ(m->layer(i).encoding, vdm::Encoding::int8_csr);
  EXPECT_NE(r.layers[1].description.find("int8 CSR, 90.0% zero weights"), std::string::npos)
      << r.layers[1].description;
}

// Zeros in whole 4x4 blocks (block-structured pruning) select the block-sparse encoding,
// whose outputs equal the dense int8 export of the same weights.
TEST(Export, BlockPrunedLayersBecomeBlockSparse) {
  auto model = nn::make_model("mlp");
  for (auto& [name, p] : model->named_parameters()) {
    if (p.ndim() != 2) continue;
    const std::int64_t k = p.shape()[1];
    float* w = p.value().data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i)
      if (((i / k) / 4 + (i % k) / 4) % 8 != 0) w[i] = 0.f;  // 7 of 8 blocks
  }
  ExportOptions o;
  o.precision = Precision::int8;
  const auto cal = random_inputs(8, 784, 5);
  auto r = export_vdm(*model, o, cal, 8);
  auto m = load(r);
  ASSERT_NE(m, nullptr);
  for (std::size_t i = 1; i < m->num_layers(); ++i)
    EXPECT_EQ(m->layer(i).encoding, vdm::Encoding::int8_bsr) << "layer " << i;
  EXPECT_NE(r.layers[1].description.find("int8 4x4-block sparse"), std::string::npos)
      << r.layers[1].description;
  o.sparse = SparseMode::never;
  auto dense = load(export_vdm(*model, o, cal, 8));
  ASSERT_NE(dense, nullptr);
  EXPECT_LT(m->macs(), dense->macs() / 4);
  std::vector<float> a(10), b(10);
  m->run(cal.data(), 784, a.data(), 10);
  dense->run(cal.data(), 784, b.data(), 10);
  EXPECT_EQ(a, b);
}

std::string export_error(nn::Sequential& s) {
  try {
    export_vdm(s, ExportOptions{}, {}, 0);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Export, UnsupportedLayerNamesIt) {
  nn::Sequential s;
  s.push_back(std::make_shared<nn::Flatten>());
  s.push_back(std::make_shared<nn::Linear>(4, 3));
  s.push_back(std::make_shared<nn::Tanh>());
  s.set_input_shape({4});
  EXPECT_EQ(export_error(s),
            "layer 2 (Tanh): the .vdm runtime has no Tanh (it fuses only ReLU after a Linear or "
            "Conv2d); export this model to ONNX (format onnx) instead");
  auto bn = nn::parse_model_yaml(
      "input: [4]\nlayers:\n  - linear: {out_features: 3}\n  - relu\n  - batchnorm1d\n", "m");
  EXPECT_EQ(export_error(*bn),
            "layer 2 (BatchNorm1d): .vdm folds BatchNorm only directly after a Linear or Conv2d");
  // A softmax before the last layer changes what the next layer sees: not left out.
  auto sm = nn::parse_model_yaml(
      "input: [4]\nlayers:\n  - linear: {out_features: 3}\n  - softmax\n  - linear: "
      "{out_features: 2}\n",
      "m");
  EXPECT_EQ(export_error(*sm).rfind("layer 1 (Softmax): the .vdm runtime has no Softmax", 0), 0u);
}

// What ONNX import produces: BatchNorm after Conv2d/Linear (folded), depthwise and dilated
// convolutions (stored dense), global average pooling (the runtime's avg pool), a final
// LogSoftmax (left out). The .vdm reproduces the engine up to that LogSoftmax.
TEST(Export, ImportedLayersFoldDensifyAndMatchTheEngine) {
  auto model = nn::parse_model_yaml(R"(input: [2, 10, 10]
layers:
  - conv2d: {out_channels: 4, kernel: 3, padding: 1, bias: false}
  - batchnorm2d
  - relu
  - conv2d: {out_channels: 4, kernel: 3, padding: 1, groups: 4}
  - batchnorm2d: {eps: 0.001}
  - relu
  - maxpool2d: {kernel: 2}
  - conv2d: {out_channels: 6, kernel: 3, padding: 2, dilation: 2}
  - relu
  - avgpool2d: {kernel: 5}
  - flatten
  - linear: {out_features: 8}
  - batchnorm1d
  - relu
  - dropout: {p: 0.5}
  - linear: {out_features: 3}
  - logsoftmax
)",
                                    "m.yaml");
  test_support::set_batch_norm_statistics(*model);
  std::mt19937 g(5);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  for (auto& [name, p] : model->named_parameters())
    if (name.find("bias") != std::string::npos)
      for (std::int64_t i = 0; i < p.numel(); ++i) p.value().data<float>()[i] = u(g) - 1.f;
  model->eval();
  auto r = export_vdm(*model, ExportOptions{}, {}, 0);
  ASSERT_EQ(r.notes.size(), 4u);
  EXPECT_EQ(r.notes[0], "3 BatchNorm layer(s) folded into the Linear/Conv2d before them");
  EXPECT_NE(r.notes[1].find("layer 3 (Conv2d): grouped convolution stored as an equivalent dense"),
            std::string::npos)
      << r.notes[1];
  EXPECT_NE(r.notes[2].find("layer 7 (Conv2d): dilated"), std::string::npos) << r.notes[2];
  EXPECT_NE(r.notes[3].find("layer 16 (LogSoftmax): left out"), std::string::npos) << r.notes[3];
  auto m = load(r);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->num_layers(), 6u);  // conv, conv+pool, conv+avgpool, flatten, linear, linear
  const std::size_t n = m->input_size();
  const auto xs = random_inputs(6, n, 7);
  for (std::size_t i = 0; i < 6; ++i) {
    const auto ref = engine_forward(*model, xs.data() + i * n, n);  // log-probabilities
    std::vector<float> out(m->output_size());
    ASSERT_EQ(m->run(xs.data() + i * n, n, out.data(), out.size()), runtime::RunStatus::ok);
    double lse = 0;
    const float top = *std::max_element(out.begin(), out.end());
    for (float v : out) lse += std::exp(double{v} - top);
    for (std::size_t j = 0; j < out.size(); ++j)
      EXPECT_NEAR(out[j] - top - std::log(lse), ref[j], 1e-4) << i << " " << j;
  }
  // int8 of the same model loads and mostly agrees.
  ExportOptions o8;
  o8.precision = Precision::int8;
  const auto cal = random_inputs(64, n, 8);
  auto m8 = load(export_vdm(*model, o8, cal, 64));
  ASSERT_NE(m8, nullptr);
  int same = 0;
  for (std::size_t i = 0; i < 6; ++i)
    same += m8->predict(xs.data() + i * n, n) == m->predict(xs.data() + i * n, n);
  EXPECT_GE(same, 5);
}

TEST(Export, Int8WithoutCalibrationIsAnError) {
  auto model = nn::make_model("mlp");
  ExportOptions o;
  o.precision = Precision::int8;
  EXPECT_THROW(export_vdm(*model, o, {}, 0), Error);
}

// A folder of its own per test, removed afterwards.
class ExportFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("verdant_export_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::size_t files_in_dir() const {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir_),
                                                  std::filesystem::directory_iterator()));
  }
  std::filesystem::path dir_;
};

// The exported file loads as a model equal to the in-memory export.
TEST_F(ExportFile, WritesAModelThatLoads) {
  auto model = nn::make_model("mlp");
  ExportOptions o;
  o.precision = Precision::int8;
  const auto path = (dir_ / "m.vdm").string();
  const auto r = export_vdm_file(*model, o, random_inputs(8, 784, 6), 8, path);
  std::string err;
  auto m = runtime::Model::load_file(path, &err);
  ASSERT_NE(m, nullptr) << err;
  EXPECT_EQ(m->file_size(), r.bytes.size());
  EXPECT_EQ(files_in_dir(), 1u);
}

// The one line export_vdm_file throws, or "" when it succeeds.
std::string file_export_error(nn::Sequential& model, const ExportOptions& o,
                              const std::vector<float>& calibration, const std::string& path) {
  try {
    export_vdm_file(model, o, calibration, calibration.size() / 784, path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A NaN or infinite weight stops the export with one line naming the parameter and the
// file it came from, before anything is written; an older file at the path stays as it was.
TEST_F(ExportFile, NonFiniteWeightFailsNamingItAndWritesNothing) {
  auto model = nn::make_model("mlp");
  ExportOptions o;
  o.source = "runs/mlp.vckpt";
  const auto cal = random_inputs(8, 784, 7);
  const auto kept = (dir_ / "kept.vdm").string();
  ASSERT_EQ(file_export_error(*model, o, {}, kept), "");
  const std::vector<std::uint8_t> before = export_vdm(*model, o, {}, 0).bytes;
  auto params = model->named_parameters();
  ASSERT_GE(params.size(), 2u);
  const std::string weight = params[0].first, bias = params[1].first;
  float* w = params[0].second.value().data<float>();
  float* b = params[1].second.value().data<float>();
  const std::string suffix = "; a .vdm model needs finite weights";
  const auto path = (dir_ / "m.vdm").string();
  for (Precision precision : {Precision::fp32, Precision::int8}) {
    o.precision = precision;
    w[17] = std::nanf("");
    EXPECT_EQ(file_export_error(*model, o, cal, path),
              "runs/mlp.vckpt: parameter '" + weight + "' element 17 is NaN" + suffix);
    EXPECT_EQ(file_export_error(*model, o, cal, kept),
              "runs/mlp.vckpt: parameter '" + weight + "' element 17 is NaN" + suffix);
    w[17] = 0.f;
    b[3] = -std::numeric_limits<float>::infinity();
    EXPECT_EQ(file_export_error(*model, o, cal, path),
              "runs/mlp.vckpt: parameter '" + bias + "' element 3 is -infinity" + suffix);
    b[3] = 0.f;
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_EQ(files_in_dir(), 1u);  // kept.vdm only: no temporary left behind
  }
  std::string err;
  auto m = runtime::Model::load_file(kept, &err);
  ASSERT_NE(m, nullptr) << err;
  EXPECT_EQ(std::vector<std::uint8_t>(m->file_data(), m->file_data() + m->file_size()), before);
}

}  // namespace
}  // namespace verdant::exporter
