// Export of a quantization-aware model: the runtime's integer arithmetic follows compress's
// fake-quant simulation when the export takes the learned 7-bit activation ranges.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "verdant/compress/quantize.hpp"
#include "verdant/core/error.hpp"
#include "verdant/export/export.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::exporter {
namespace {

constexpr std::size_t kIn = 3 * 5 * 5;  // odd sizes on purpose

std::shared_ptr<nn::Sequential> tiny_model() {
  auto s = std::make_shared<nn::Sequential>();
  s->push_back(std::make_shared<nn::Flatten>());
  s->push_back(std::make_shared<nn::Linear>(kIn, 37));
  s->push_back(std::make_shared<nn::ReLU>());
  s->push_back(std::make_shared<nn::Linear>(37, 10));
  s->set_input_shape({3, 5, 5});
  s->eval();
  // QAT leaves every weight on its per-channel symmetric int8 grid (compress::Session::finish).
  for (auto& [name, p] : s->named_parameters()) {
    if (p.value().ndim() < 2) continue;
    Tensor fq =
        compress::fake_quantize_per_channel(p.value(), compress::per_channel_params(p.value(), 8));
    std::copy_n(fq.data<float>(), fq.numel(), p.value().data<float>());
  }
  return s;
}

std::vector<float> inputs(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.2f, 1.f);
  std::vector<float> v(n * kIn);
  for (float& x : v) x = d(g);
  return v;
}

// A few QAT steps of range learning: moving-average observers at each Linear input, with the
// forward pass fake-quantized by the current ranges, as compress's training mode does.
std::vector<ActivationQuant> learn_ranges(nn::Sequential& model, int bits) {
  std::vector<compress::RangeObserver> obs(2, compress::RangeObserver(0.9));
  const auto x = inputs(64, 7);
  nn::NoGradGuard guard;
  for (std::size_t i = 0; i < 64; ++i) {
    std::vector<float> h(x.begin() + i * kIn, x.begin() + (i + 1) * kIn);
    std::size_t site = 0;
    for (const auto& [name, mod] : model.named_children()) {
      if (dynamic_cast<nn::Linear*>(mod.get())) {
        obs[site].observe(h);
        compress::fake_quantize(h, h, obs[site].params(bits));
        ++site;
      }
      Tensor t = Tensor::from({1, static_cast<std::int64_t>(h.size())}, std::span<const float>(h));
      if (name == model.named_children().front().first) continue;  // flatten: h is flat already
      autograd::Variable out = mod->forward(autograd::Variable(t));
      h.assign(out.value().data<float>(), out.value().data<float>() + out.numel());
    }
  }
  std::vector<ActivationQuant> aq;
  for (auto& o : obs) {
    const auto p = o.params(bits);
    aq.push_back({p.scale, p.zero_point, bits});
  }
  return aq;
}

std::unique_ptr<runtime::Model> load(const ExportResult& r) {
  std::string err;
  auto m = runtime::Model::load_buffer(r.bytes.data(), r.bytes.size(), &err);
  EXPECT_NE(m, nullptr) << err;
  return m;
}

TEST(QatExport, RuntimeFollowsTheFakeQuantSimulation) {
  auto model = tiny_model();
  const auto aq = learn_ranges(*model, 7);
  ExportOptions o;
  o.precision = Precision::int8;
  o.activation_quant = aq;
  auto m = load(export_vdm(*model, o, {}, 0));
  ASSERT_NE(m, nullptr);
  // The learned ranges are used exactly: layer 1 reads the input grid, layer 2 the hidden one.
  EXPECT_EQ(m->layer(1).in_scale, aq[0].scale);
  EXPECT_EQ(m->layer(1).in_zero_point, aq[0].zero_point);
  EXPECT_EQ(m->layer(2).in_scale, aq[1].scale);
  EXPECT_EQ(m->layer(2).in_zero_point, aq[1].zero_point);

  const std::size_t n = 400;
  const auto xs = inputs(n, 11);
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float* x = xs.data() + i * kIn;
    const auto sim = simulate_fake_quant(*model, aq, x, kIn);
    std::vector<float> out(m->output_size());
    ASSERT_EQ(m->run(x, kIn, out.data(), out.size()), runtime::RunStatus::ok);
    ASSERT_EQ(out.size(), sim.size());
    float span = 0.f;
    for (float v : sim) span = std::max(span, std::abs(v));
    // Same integers up to rounding ties and the int32 bias: logits within a few output steps.
    for (std::size_t j = 0; j < out.size(); ++j) EXPECT_NEAR(out[j], sim[j], 0.02f * span + 1e-3f);
    same += std::max_element(out.begin(), out.end()) - out.begin() ==
            std::max_element(sim.begin(), sim.end()) - sim.begin();
  }
  EXPECT_GE(same, n * 99 / 100) << same << " of " << n << " predictions agree";
}

TEST(QatExport, EightBitRangesAreReGriddedToSevenBits) {
  auto model = tiny_model();
  const auto aq = learn_ranges(*model, 8);
  ExportOptions o;
  o.precision = Precision::int8;
  o.activation_quant = aq;
  auto m = load(export_vdm(*model, o, {}, 0));
  ASSERT_NE(m, nullptr);
  // Same real range [-zp * s, (255 - zp) * s] on 127 steps.
  EXPECT_NEAR(m->layer(1).in_scale, aq[0].scale * 255.f / 127.f, 1e-3f * aq[0].scale);
  EXPECT_NEAR(m->layer(1).in_zero_point, aq[0].zero_point * 127.0 / 255.0, 1.0);
}

TEST(QatExport, BadLearnedRangesAreErrors) {
  auto model = tiny_model();
  ExportOptions o;
  o.precision = Precision::int8;
  o.activation_quant = {{0.1f, 0, 7}};  // two Linear layers need two
  EXPECT_THROW(export_vdm(*model, o, {}, 0), Error);
  o.activation_quant = {{0.1f, 0, 7}, {0.1f, 128, 7}};  // zero point off the 7-bit grid
  EXPECT_THROW(export_vdm(*model, o, {}, 0), Error);
  o.activation_quant = {{0.1f, 0, 7}, {-1.f, 0, 7}};
  EXPECT_THROW(export_vdm(*model, o, {}, 0), Error);
}

TEST(QatExport, LearnedRangesComeFromCheckpointMetadata) {
  train::Checkpoint c;
  EXPECT_TRUE(learned_activations(c, "m.vckpt", 7).empty());  // not a QAT checkpoint
  c.set_meta("compress.activation.0.scale", "0.022287");
  c.set_meta("compress.activation.0.zero_point", "36");
  c.set_meta("compress.activation.1.scale", "0.125");
  c.set_meta("compress.activation.1.zero_point", "0");
  auto aq = learned_activations(c, "m.vckpt", 7);
  ASSERT_EQ(aq.size(), 2u);
  EXPECT_FLOAT_EQ(aq[0].scale, 0.022287f);
  EXPECT_EQ(aq[0].zero_point, 36);
  EXPECT_EQ(aq[1].bits, 7);
  // bits 0: read from the recipe the checkpoint names.
  const auto dir =
      std::filesystem::temp_directory_path() / ("verdant_qat_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto recipe = (dir / "qat.yaml").string();
  std::ofstream(recipe) << "epochs: 1\nmodifiers:\n  - quantize:\n      mode: qat\n"
                           "      activation_bits: 7\n";
  c.set_meta("compress.recipe", recipe);
  EXPECT_EQ(learned_activations(c, "m.vckpt", 0)[1].bits, 7);
  c.set_meta("compress.recipe", (dir / "gone.yaml").string());
  EXPECT_THROW(learned_activations(c, "m.vckpt", 0), UsageError);
  c.set_meta("compress.activation.1.scale", "wide");
  try {
    learned_activations(c, "m.vckpt", 7);
    FAIL() << "bad metadata accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.vckpt: metadata 'compress.activation.1'"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace verdant::exporter
