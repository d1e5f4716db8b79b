// ONNX export: fp32 files import back to the same computation; int8 files are QDQ with the
// given quantization; pruned weights stay zeros and smaller models make smaller files.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include <onnx/onnx_pb.h>

#include "support/error_helpers.hpp"
#include "support/models.hpp"
#include "verdant/interop/onnx_export.hpp"
#include "verdant/interop/onnx_import.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"

namespace verdant::interop {
namespace {

using autograd::Variable;
using test_support::contains;
using test_support::error_of;

onnx::ModelProto parse(const std::vector<std::uint8_t>& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return m;
}

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> c;
  for (const auto& n : m.graph().node()) ++c[n.op_type()];
  return c;
}

const onnx::TensorProto* initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

Tensor sample(Shape s) {
  Tensor x(std::move(s), DType::f32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * i);
  return x;
}

Tensor forward(nn::Sequential& m, const Tensor& x) {
  nn::NoGradGuard g;
  m.eval();
  return m(Variable(x)).value();
}

// Every layer type, with batch-norm statistics that matter.
std::shared_ptr<nn::Sequential> every_layer() {
  auto m = nn::parse_model_yaml(test_support::kEveryLayerYaml, "every.yaml");
  test_support::set_batch_norm_statistics(*m);
  return m;
}

TEST(OnnxExport, Fp32ImportsBackToTheSameOutputs) {
  auto m = every_layer();
  const auto bytes = export_onnx(*m, {.name = "every", .opset = 13});
  const auto proto = parse(bytes);
  EXPECT_EQ(proto.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  EXPECT_EQ(proto.graph().output(0).name(), "logits");
  const auto ops = op_counts(proto);
  EXPECT_EQ(ops.at("Conv"), 3);
  EXPECT_EQ(ops.at("BatchNormalization"), 2);
  EXPECT_EQ(ops.at("Erf"), 1);  // GELU, decomposed
  EXPECT_EQ(ops.count("Dropout"), 0u);
  const ImportedModel back = import_onnx_bytes(bytes, "every.onnx", {});
  ASSERT_EQ(back.model->size(), m->size() - 1);  // all but the Dropout
  for (std::size_t i = 0, j = 0; i < m->size(); ++i) {
    if ((*m)[i]->type_name() == "Dropout") continue;
    EXPECT_EQ((*back.model)[j]->describe(), (*m)[i]->describe()) << i;
    EXPECT_EQ((*back.model)[j++]->type_name(), (*m)[i]->type_name()) << i;
  }
  const Tensor x = sample({3, 4, 12, 12});
  const Tensor a = forward(*m, x), b = forward(*back.model, x);
  ASSERT_EQ(a.shape(), b.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.at(i), b.at(i), 1e-6);
  for (std::int64_t opset : {11, 17})
    EXPECT_EQ(op_counts(parse(export_onnx(*m, {.opset = opset}))), ops) << opset;
}

// conv -> relu -> maxpool -> flatten -> linear -> relu -> linear, with given quantization.
TEST(OnnxExport, Int8IsQdqWithTheGivenQuantization) {
  auto m = nn::parse_model_yaml(R"(input: [1, 6, 6]
layers:
  - conv2d: {out_channels: 2, kernel: 3}
  - relu
  - avgpool2d: {kernel: 2}
  - flatten
  - linear: {out_features: 3}
  - relu
  - linear: {out_features: 2, bias: false}
)",
                                "q.yaml");
  OnnxExportOptions o;
  o.int8 = {{.input = {0.02f, 40}, .weight_scale = {0.01f, 0.02f}},
            {.input = {0.05f, 0}, .weight_scale = {}},
            {.input = {0.1f, 3}, .weight_scale = {}}};
  const auto proto = parse(export_onnx(*m, o));
  const auto ops = op_counts(proto);
  // Inputs of the three weight layers, and the average pool (on quantized values).
  EXPECT_EQ(ops.at("QuantizeLinear"), 4);
  // Those four, three weights and two biases.
  EXPECT_EQ(ops.at("DequantizeLinear"), 9);
  const auto* w = initializer(proto, "0.weight_quantized");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->data_type(), onnx::TensorProto::INT8);
  const float* fw = (*m)[0]->named_parameters()[0].second.value().data<float>();
  for (int i = 0; i < 18; ++i) {
    const float s = i < 9 ? 0.01f : 0.02f;
    const long q = std::clamp<long>(std::lround(fw[i] / s), -127, 127);
    EXPECT_EQ(static_cast<std::int8_t>(w->raw_data()[static_cast<std::size_t>(i)]), q) << i;
  }
  const auto* b = initializer(proto, "0.bias_quantized");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->data_type(), onnx::TensorProto::INT32);
  const auto* zp = initializer(proto, "/0/input_quant.zero_point");
  ASSERT_NE(zp, nullptr);
  EXPECT_EQ(zp->data_type(), onnx::TensorProto::UINT8);
  EXPECT_EQ(static_cast<std::uint8_t>(zp->raw_data()[0]), 40);
  for (const auto& n : proto.graph().node())
    if (n.op_type() == "DequantizeLinear" && n.output(0).find(".weight") != std::string::npos)
      EXPECT_EQ(n.attribute(0).name(), "axis");
  EXPECT_EQ(initializer(proto, "6.bias_quantized"), nullptr);  // no bias
}

TEST(OnnxExport, PrunedWeightsStayZeroAndSmallerModelsAreSmaller) {
  auto big = nn::make_model("mlp");
  float* w = (*big)[1]->named_parameters()[0].second.value().data<float>();
  for (int i = 0; i < 784 * 300; i += 2) w[i] = 0.f;
  const auto proto = parse(export_onnx(*big, {}));
  const auto* t = initializer(proto, "1.weight");
  ASSERT_NE(t, nullptr);
  const auto* v = reinterpret_cast<const float*>(t->raw_data().data());
  for (int i = 0; i < 784 * 300; ++i) ASSERT_EQ(v[i] == 0.f, i % 2 == 0) << i;
  // Neuron pruning leaves a smaller Sequential (300 -> 100 hidden units): a smaller file.
  auto small = nn::parse_model_yaml(nn::model_yaml(*big, {{"1", 100}}), "small");
  EXPECT_LT(export_onnx(*small, {}).size() * 2, export_onnx(*big, {}).size());
}

TEST(OnnxExport, RefusalsAreOneLineErrors) {
  auto m = every_layer();
  OnnxExportOptions o;
  o.int8.resize(6);
  std::string e = error_of([&] { export_onnx(*m, o); });
  EXPECT_TRUE(contains(e, "layer 1 (BatchNorm2d): fold BatchNorm into the layer before it")) << e;
  o.int8.resize(2);
  e = error_of([&] { export_onnx(*m, o); });
  EXPECT_TRUE(contains(e, "2 int8 layer descriptions for a model with 6 Linear/Conv2d")) << e;
  e = error_of([&] { export_onnx(*m, {.opset = 9}); });
  EXPECT_TRUE(contains(e, "opset 9 is not in [11, 17]")) << e;
}

}  // namespace
}  // namespace verdant::interop
