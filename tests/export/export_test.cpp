// Export against the engine: fp32 .vdm reproduces the engine's outputs; int8 stays close.
#include <gtest/gtest.h>

#include <random>

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

TEST(Export, UnsupportedLayerNamesIt) {
  nn::Sequential s;
  s.push_back(std::make_shared<nn::Flatten>());
  s.push_back(std::make_shared<nn::Linear>(4, 3));
  s.push_back(std::make_shared<nn::Tanh>());
  s.set_input_shape({4});
  try {
    export_vdm(s, ExportOptions{}, {}, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "layer 2 (Tanh): not supported by the .vdm format (Linear, Conv2d, ReLU, "
                 "max/avg pooling, Flatten, Dropout)");
  }
}

TEST(Export, Int8WithoutCalibrationIsAnError) {
  auto model = nn::make_model("mlp");
  ExportOptions o;
  o.precision = Precision::int8;
  EXPECT_THROW(export_vdm(*model, o, {}, 0), Error);
}

}  // namespace
}  // namespace verdant::exporter
