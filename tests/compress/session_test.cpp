// The recipe session driving real engine models: masks through optimizer steps, structured
// removal, fake-quant through autograd, and the checks run_recipe makes before any work.
#include "verdant/compress/session.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "verdant/autograd/ops.hpp"
#include "verdant/compress/callback.hpp"
#include "verdant/compress/compact.hpp"
#include "verdant/compress/prune.hpp"
#include "verdant/compress/run.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/train/checkpoint.hpp"
#include "verdant/train/trainer.hpp"

namespace vc = verdant::compress;
namespace fs = std::filesystem;
using verdant::Tensor;
using verdant::autograd::Variable;

namespace {
Tensor random_input(verdant::Shape shape, std::uint64_t seed) {
  verdant::autograd::Generator g(seed);
  Tensor t(shape, verdant::DType::f32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = g.normal();
  return t;
}

Tensor random_labels(std::int64_t n, std::uint64_t seed) {
  verdant::autograd::Generator g(seed);
  Tensor y({n}, verdant::DType::i32);
  for (std::int64_t i = 0; i < n; ++i)
    y.data<std::int32_t>()[i] = static_cast<std::int32_t>(g.below(10));
  return y;
}

// Trains `steps` SGD-momentum steps on random data through the session's hooks.
void train_steps(vc::Session& s, verdant::nn::Sequential& model, int epochs, int steps) {
  verdant::nn::SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  verdant::nn::SGD opt(model.named_parameters(), o);
  s.begin(steps, epochs);
  std::int64_t global = 0;
  for (int e = 0; e < epochs; ++e) {
    for (int k = 0; k < steps; ++k) {
      s.step_begin(e, k);
      opt.zero_grad();
      Variable out = s.forward_model()->forward(Variable(random_input({8, 1, 28, 28}, global)));
      verdant::autograd::cross_entropy(out, random_labels(8, global + 1000)).backward();
      s.before_optimizer_step(e, k, global);
      opt.step();
      s.step_end();
      ++global;
    }
    s.epoch_end(e);
  }
}

double weight_sparsity(verdant::nn::Module& m) {
  std::int64_t n = 0, z = 0;
  for (auto& [name, p] : m.named_parameters()) {
    if (p.ndim() < 2) continue;
    n += p.numel();
    z += p.numel() - vc::count_nonzero(p.value());
  }
  return double(z) / double(n);
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("verdant_compress_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST(Session, GradualPruningMasksHoldThroughManyOptimizerSteps) {
  verdant::autograd::manual_seed(1);
  auto model = verdant::nn::make_model("mlp");
  auto r = vc::parse_recipe(
      "modifiers:\n  - prune: {scope: global, final_sparsity: 0.9, start_epoch: 0, end_epoch: 2, "
      "update_every: 0.5}\n",
      "r.yaml");
  vc::Session s(r, model, 1);
  train_steps(s, *model, 3, 20);  // 60 optimizer steps, 40 of them after the last update
  const auto w = model->named_parameters()[0].second;  // a handle: the vector is temporary
  Tensor before = w.value().clone();
  EXPECT_NEAR(weight_sparsity(*model), 0.9, 1e-3);
  s.finish();
  EXPECT_NEAR(weight_sparsity(*model), 0.9, 1e-3);
  // Zeros after finish are exactly the zeros during training.
  for (std::int64_t i = 0; i < before.numel(); ++i)
    if (before.at(i) == 0.0f) ASSERT_EQ(w.value().at(i), 0.0f);
}

TEST(Session, StructuredRemovalKeepsTheFunction) {
  verdant::autograd::manual_seed(2);
  auto model = verdant::nn::parse_model_yaml(
      "input: [1, 12, 12]\nlayers:\n  - conv2d: {out_channels: 6, kernel: 3}\n  - relu\n"
      "  - maxpool2d: {kernel: 2}\n  - flatten\n  - linear: {out_features: 16}\n  - relu\n"
      "  - linear: {out_features: 10}\n",
      "small.yaml");
  auto r = vc::parse_recipe(
      "modifiers:\n  - prune: {structure: channels, norm: l2, final_sparsity: 0.5}\n", "r.yaml");
  vc::Session s(r, model, 2);
  s.begin(1, 0);
  s.step_begin(0, 0);  // the one-shot update at epoch 0
  s.before_optimizer_step(0, 0, 0);
  s.step_end();
  const Tensor x = random_input({4, 1, 12, 12}, 7);
  model->eval();
  const Tensor masked_out = model->forward(Variable(x)).value().clone();
  const auto before = model->num_parameters();
  auto smaller = s.finish();
  smaller->eval();
  EXPECT_NE(smaller.get(), model.get());
  // 3 of 6 channels, 8 of 16 neurons left; the output layer keeps its 10 classes.
  const auto params = smaller->named_parameters();
  EXPECT_EQ(params[0].second.shape(), (verdant::Shape{3, 1, 3, 3}));
  EXPECT_EQ(params[2].second.shape(), (verdant::Shape{8, 75}));
  EXPECT_EQ(params[4].second.shape(), (verdant::Shape{10, 8}));
  EXPECT_LT(smaller->num_parameters(), before / 2);
  const Tensor out = smaller->forward(Variable(x)).value();
  ASSERT_EQ(out.numel(), masked_out.numel());
  for (std::int64_t i = 0; i < out.numel(); ++i) EXPECT_NEAR(out.at(i), masked_out.at(i), 1e-4f);
}

TEST(Session, RiglKeepsEachLayersDensity) {
  verdant::autograd::manual_seed(3);
  auto model = verdant::nn::make_model("mlp");
  auto r = vc::parse_recipe(
      "modifiers:\n  - sparse_train: {method: rigl, sparsity: 0.9, update_every: 5, end_epoch: "
      "2}\n",
      "r.yaml");
  vc::Session s(r, model, 3);
  std::vector<std::int64_t> nnz;
  s.begin(10, 3);
  for (auto& [n, p] : model->named_parameters())
    if (p.ndim() >= 2) nnz.push_back(vc::count_nonzero(p.value()));
  EXPECT_NEAR(weight_sparsity(*model), 0.9, 2e-3);
  train_steps(s, *model, 3, 10);
  std::size_t k = 0;
  for (auto& [n, p] : model->named_parameters())
    if (p.ndim() >= 2) EXPECT_LE(vc::count_nonzero(p.value()), nnz[k++]) << n;
  EXPECT_NEAR(weight_sparsity(*model), 0.9, 2e-3);
}

TEST(Session, QatWeightsEndOnTheInt8GridAndActivationsAreQuantized) {
  verdant::autograd::manual_seed(4);
  auto model = verdant::nn::make_model("mlp");
  auto r = vc::parse_recipe("modifiers:\n  - quantize: {mode: qat}\n", "r.yaml");
  vc::Session s(r, model, 4);
  ASSERT_TRUE(s.quantizes());
  train_steps(s, *model, 1, 5);
  s.finish();
  for (auto& [name, p] : model->named_parameters()) {
    if (p.ndim() < 2) continue;
    const auto params = vc::per_channel_params(p.value());
    const Tensor fq = vc::fake_quantize_per_channel(p.value(), params);
    for (std::int64_t i = 0; i < fq.numel(); ++i) ASSERT_EQ(fq.at(i), p.value().at(i)) << name;
  }
  const auto acts = s.activation_params();
  ASSERT_EQ(acts.size(), 3u);        // inputs of the three Linear layers
  EXPECT_EQ(acts[1].zero_point, 0);  // after a ReLU the range starts at zero
  // The fake-quant op passes gradients straight through inside the range.
  auto net = s.forward_model();
  net->train();
  Variable x(random_input({2, 1, 28, 28}, 9), true);
  verdant::autograd::sum(net->forward(x)).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(vc::count_nonzero(x.grad()), 0);
}

TEST(Session, PatternMatchingNoLayerIsAnError) {
  auto model = verdant::nn::make_model("mlp");
  auto r = vc::parse_recipe("modifiers:\n  - prune:\n      layers: [conv1]\n", "r.yaml");
  try {
    vc::Session s(r, model, 0);
    FAIL();
  } catch (const verdant::Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.yaml:3:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'conv1' matches no layer"), std::string::npos);
  }
}

TEST(Session, TeacherWithOtherOutputShapeIsRejectedBeforeAnyWrite) {
  TempDir tmp;
  // A teacher with 5 outputs, saved as a checkpoint.
  auto teacher = verdant::nn::parse_model_yaml(
      "input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: 5}\n", "t.yaml");
  verdant::train::Checkpoint c;
  c.set_meta("model.yaml", vc::model_yaml(*teacher));
  for (auto& [n, p] : teacher->named_parameters()) c.tensors.emplace_back("param/" + n, p.value());
  verdant::train::save_checkpoint(tmp.path / "teacher.vckpt", c);
  verdant::write_file_atomic(tmp.path / "r.yaml",
                             "epochs: 1\nmodifiers:\n  - distill:\n      teacher: teacher.vckpt\n");
  vc::RunOptions o;
  o.model = "mlp";
  o.recipe = tmp.path / "r.yaml";
  o.out_dir = tmp.path / "out";
  o.measure_energy = false;
  try {
    vc::run_recipe(o);
    FAIL();
  } catch (const verdant::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("r.yaml:4:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("teacher"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[5]"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
  // A missing teacher names the recipe line too.
  verdant::write_file_atomic(tmp.path / "r.yaml",
                             "modifiers:\n  - distill: {teacher: nothere.vckpt}\n");
  try {
    vc::run_recipe(o);
    FAIL();
  } catch (const verdant::Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.yaml:2:"), std::string::npos) << e.what();
  }
}

namespace {
// Random 1x28x28 samples with random labels, for driving the Trainer.
class NoiseDataset : public verdant::data::Dataset {
 public:
  std::int64_t size() const override { return 256; }
  verdant::Shape sample_shape() const override { return {1, 28, 28}; }
  int num_classes() const override { return 10; }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override {
    for (std::size_t k = 0; k < indices.size(); ++k) {
      verdant::autograd::Generator g(static_cast<std::uint64_t>(indices[k]) + 1);
      for (int i = 0; i < 784; ++i) x[k * 784 + i] = g.normal();
      y[k] = static_cast<std::int32_t>(g.below(10));
    }
  }
};
}  // namespace

TEST(RecipeCallback, PrunesThroughTheTrainersHooks) {
  verdant::autograd::manual_seed(5);
  auto model = verdant::nn::make_model("mlp");
  auto session = std::make_shared<vc::Session>(
      vc::parse_recipe(
          "modifiers:\n  - prune: {final_sparsity: 0.8, end_epoch: 1, update_every: 0.5}\n",
          "r.yaml"),
      model, 5);
  NoiseDataset data;
  verdant::nn::SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  verdant::nn::SGD opt(model->named_parameters(), o);
  verdant::train::TrainOptions to;
  to.epochs = 2;
  to.batch_size = 32;
  verdant::train::Trainer trainer(*model, opt, data, to);
  trainer.add_callback(std::make_shared<vc::RecipeCallback>(session));
  trainer.fit();
  EXPECT_NEAR(weight_sparsity(*model), 0.8, 1e-3);
  // Distillation needs its own loss: refused with the recipe's line.
  auto d = vc::parse_recipe("modifiers:\n  - distill: {teacher: t.vckpt}\n", "d.yaml");
  auto s2 = std::make_shared<vc::Session>(d, model, 0);
  EXPECT_THROW(vc::RecipeCallback cb(s2), verdant::Error);
}
