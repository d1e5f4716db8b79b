// The recipe session driving real engine models: masks through optimizer steps, structured
// removal, fake-quant through autograd, and the checks run_recipe makes before any work.
#include "verdant/compress/session.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "support/error_helpers.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/compress/compact.hpp"
#include "verdant/compress/prune.hpp"
#include "verdant/compress/run.hpp"
#include "verdant/compress/training.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/kernels/block_sparse.hpp"
#include "verdant/kernels/csr.hpp"
#include "verdant/nn/layers.hpp"
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
      s.step_begin(e, k, global);
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
  s.step_begin(0, 0, 0);  // the one-shot update at epoch 0
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

// Removing channels next to a grouped (depthwise) convolution would change its groups.
TEST(Session, StructuredRemovalNextToAGroupedConvolutionIsRefused) {
  auto model = verdant::nn::parse_model_yaml(
      "input: [1, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel: 3}\n  - relu\n"
      "  - conv2d: {out_channels: 4, kernel: 3, groups: 4}\n  - flatten\n"
      "  - linear: {out_features: 3}\n",
      "dw.yaml");
  auto r = vc::parse_recipe("modifiers:\n  - prune: {structure: channels, final_sparsity: 0.5}\n",
                            "r.yaml");
  vc::Session s(r, model, 1);
  s.begin(1, 0);
  s.step_begin(0, 0, 0);
  s.before_optimizer_step(0, 0, 0);
  s.step_end();
  try {
    s.finish();
    FAIL() << "expected an error";
  } catch (const verdant::Error& e) {
    EXPECT_NE(std::string(e.what()).find("next to the grouped convolution 2 (groups 4) is not "
                                         "supported; set remove: false"),
              std::string::npos)
        << e.what();
  }
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

// With the optimizer attached, RigL's Linear layers train on the CSR kernels, compute the dense
// weight gradient only on mask-update steps, and their masked-out weights and momentum stay
// exactly zero without masking passes.
TEST(Session, RiglLinearsTrainOnCsrKernelsAndMaskedWeightsStayZero) {
  verdant::autograd::manual_seed(4);
  auto model = verdant::nn::make_model("mlp");
  auto r = vc::parse_recipe(
      "modifiers:\n  - sparse_train: {method: rigl, sparsity: 0.9, update_every: 5, end_epoch: "
      "2}\n",
      "r.yaml");
  vc::Session s(r, model, 4);
  verdant::nn::SGD opt(model->named_parameters(),
                       {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4});
  s.attach_optimizer(&opt);
  s.begin(10, 3);
  auto fc1 = std::dynamic_pointer_cast<verdant::nn::Linear>((*model)[1]);
  ASSERT_NE(fc1, nullptr);
  ASSERT_NE(fc1->csr_pattern(), nullptr);
  EXPECT_LT(fc1->csr_pattern()->density(), 0.2);
  const verdant::kernels::CsrPattern first = *fc1->csr_pattern();
  std::int64_t global = 0, dense_steps = 0;
  for (int e = 0; e < 3; ++e) {
    for (int k = 0; k < 10; ++k, ++global) {
      s.step_begin(e, k, global);
      // Updates every 5 steps after the start, before end_epoch 2 (step 20).
      const bool update = global > 0 && global % 5 == 0 && global < 20;
      EXPECT_EQ(fc1->dense_weight_grad(), update) << global;
      dense_steps += fc1->dense_weight_grad();
      opt.zero_grad();
      Variable out = s.forward_model()->forward(Variable(random_input({8, 1, 28, 28}, global)));
      verdant::autograd::cross_entropy(out, random_labels(8, global + 1000)).backward();
      s.before_optimizer_step(e, k, global);
      opt.step();
      s.step_end();
    }
    s.epoch_end(e);
  }
  EXPECT_EQ(dense_steps, 3);
  const verdant::kernels::CsrPattern& p = *fc1->csr_pattern();
  EXPECT_EQ(p.nnz(), first.nnz());
  EXPECT_NE(p.col, first.col);  // connections moved
  std::vector<std::uint8_t> kept(static_cast<std::size_t>(p.rows * p.cols), 0);
  for (std::int64_t row = 0; row < p.rows; ++row)
    for (std::uint32_t j = p.row_ptr[row]; j < p.row_ptr[row + 1]; ++j)
      kept[row * p.cols + p.col[j]] = 1;
  const Tensor* momentum = nullptr;
  const auto state = opt.state_dict();
  for (const auto& [name, t] : state)
    if (name == "1.weight.momentum_buffer") momentum = &t;
  ASSERT_NE(momentum, nullptr);
  const float* w = fc1->weight().value().data<float>();
  for (std::size_t i = 0; i < kept.size(); ++i)
    if (!kept[i]) {
      ASSERT_EQ(w[i], 0.f) << i;
      ASSERT_EQ(momentum->at(static_cast<std::int64_t>(i)), 0.f) << i;
    }
  s.finish();
  EXPECT_EQ(fc1->csr_pattern(), nullptr);
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

// mlp's weights: 1.weight [300, 784], 3.weight [100, 300], 5.weight [10, 100].
TEST(Session, RecipeThatLeavesALayerWithoutWeightsIsRefusedBeforeAnyChange) {
  using verdant::test_support::error_of;
  auto model = verdant::nn::make_model("mlp");
  const Tensor before = model->named_parameters()[0].second.value().clone();
  auto session_error = [&](const std::string& modifier) {
    return error_of(
        [&] { vc::Session(vc::parse_recipe("modifiers:\n" + modifier, "r.yaml"), model, 0); });
  };
  EXPECT_EQ(session_error("  - prune:\n      final_sparsity: 0.9999999\n"),
            "r.yaml:3: final_sparsity 0.9999999 leaves no weight in layer 1.weight (235200 "
            "weights)");
  EXPECT_EQ(session_error("  - prune: {sparsity: 0.9999, layers: '5'}\n"),
            "r.yaml:2: sparsity 0.9999 leaves no weight in layer 5.weight (1000 weights)");
  EXPECT_EQ(session_error("  - prune: {scope: global, final_sparsity: 0.9999999}\n"),
            "r.yaml:2: final_sparsity 0.9999999 leaves no weight in some of the 3 layers (scope "
            "global keeps 0 of 266200 weights)");
  EXPECT_EQ(session_error("  - prune: {structure: neurons, final_sparsity: 0.999}\n"),
            "r.yaml:2: final_sparsity 0.999 leaves no neuron in layer 1.weight (300 neurons)");
  // A layer keeps a 4x4 block only when its kept weights are at least half a block: 5.weight
  // keeps 7 weights at 0.993 (refused) and 8 at 0.992 (allowed, below).
  EXPECT_EQ(session_error("  - prune: {structure: block, final_sparsity: 0.993}\n"),
            "r.yaml:2: final_sparsity 0.993 leaves no block in layer 5.weight (1000 weights, "
            "blocks of 4x4)");
  EXPECT_EQ(
      session_error("  - prune: {structure: block, scope: global, final_sparsity: 0.99999}\n"),
      "r.yaml:2: final_sparsity 0.99999 leaves no block in some of the 3 layers (scope "
      "global keeps 3 of 266200 weights, blocks of 4x4)");
  EXPECT_EQ(session_error("  - sparse_train: {sparsity: 0.9999999, distribution: uniform}\n"),
            "r.yaml:2: sparsity 0.9999999 leaves no weight in layer 1.weight (235200 weights)");
  EXPECT_EQ(session_error("  - sparse_train: {method: set, epsilon: 0.000001, distribution: er}\n"),
            "r.yaml:2: epsilon 1e-06 leaves no weight in layer 1.weight (235200 weights)");
  const Tensor after = model->named_parameters()[0].second.value();
  for (std::int64_t i = 0; i < before.numel(); ++i) ASSERT_EQ(after.at(i), before.at(i));
}

TEST(Session, RecipesAtTheEdgeOfTheCheckKeepAWeightInEveryLayer) {
  for (const char* modifier :
       {"prune: {final_sparsity: 0.999}", "prune: {structure: neurons, final_sparsity: 0.99}",
        "prune: {structure: block, final_sparsity: 0.992}",
        "prune: {structure: block, final_sparsity: 0.992, block: [3, 5]}"}) {
    auto model = verdant::nn::make_model("mlp");
    vc::Session s(vc::parse_recipe(std::string("modifiers:\n  - ") + modifier + "\n", "r.yaml"),
                  model, 0);
    s.begin(1, 1);
    auto pruned = s.finish();
    for (auto& [name, p] : pruned->named_parameters())
      if (p.ndim() >= 2) EXPECT_GT(vc::count_nonzero(p.value()), 0) << modifier << ": " << name;
  }
}

TEST(Session, TeacherWithOtherOutputShapeIsRejectedBeforeAnyWrite) {
  TempDir tmp;
  // A teacher with 5 outputs, saved as a checkpoint.
  auto teacher = verdant::nn::parse_model_yaml(
      "input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: 5}\n", "t.yaml");
  verdant::train::Checkpoint c;
  c.set_meta("model.yaml", verdant::nn::model_yaml(*teacher));
  for (auto& [n, p] : teacher->named_parameters()) c.tensors.emplace_back("param/" + n, p.value());
  verdant::train::save_checkpoint(tmp.path / "teacher.vckpt", c);
  verdant::write_file_atomic(tmp.path / "r.yaml",
                             "epochs: 1\nmodifiers:\n  - distill:\n      teacher: teacher.vckpt\n");
  vc::RunOptions o;
  o.training.model = "mlp";
  o.recipe = tmp.path / "r.yaml";
  o.training.out_dir = tmp.path / "out";
  o.training.energy.enabled = false;
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

TEST(Session, GradualBlockPruningKeepsWholeBlocksThroughTraining) {
  verdant::autograd::manual_seed(6);
  auto model = verdant::nn::parse_model_yaml(
      "input: [1, 28, 28]\nlayers:\n  - conv2d: {out_channels: 6, kernel: 5}\n  - relu\n"
      "  - maxpool2d: {kernel: 4}\n  - flatten\n  - linear: {out_features: 30}\n  - relu\n"
      "  - linear: {out_features: 10}\n",
      "small.yaml");
  auto r = vc::parse_recipe(
      "modifiers:\n  - prune: {structure: block, scope: global, final_sparsity: 0.8, "
      "start_epoch: 0, end_epoch: 2, update_every: 0.5}\n",
      "r.yaml");
  vc::Session s(r, model, 6);
  train_steps(s, *model, 3, 8);
  s.finish();
  EXPECT_NEAR(weight_sparsity(*model), 0.8, 0.01);
  // Every 4x4 block of every weight matrix (conv flattened to [out, in*kh*kw]) is either all
  // zero or has a nonzero: no partly pruned block, and pruned blocks hold after training.
  std::int64_t zero_blocks = 0;
  for (auto& [name, p] : model->named_parameters()) {
    if (p.ndim() < 2) continue;
    const std::int64_t rows = p.dim(0), cols = p.numel() / rows;
    for (std::int64_t r0 = 0; r0 < rows; r0 += 4)
      for (std::int64_t c0 = 0; c0 < cols; c0 += 4) {
        std::int64_t zeros = 0, n = 0;
        for (std::int64_t i = r0; i < std::min(r0 + 4, rows); ++i)
          for (std::int64_t j = c0; j < std::min(c0 + 4, cols); ++j, ++n)
            zeros += p.value().at(i * cols + j) == 0.0f;
        // Live weights can be exactly zero only by chance; a pruned block is all zero.
        EXPECT_TRUE(zeros == n || zeros <= 1) << name << " block " << r0 << "," << c0;
        zero_blocks += zeros == n;
      }
  }
  EXPECT_GT(zero_blocks, 300);  // 80% of 6,930 weights in blocks of at most 16
}

// Once 4x4-block pruning leaves few blocks, the Linear layers train through the block-sparse
// kernels: the same function and gradients as the dense product, and back to dense after
// finish() (no mask keeps the weights inside the blocks any more).
TEST(Session, BlockPrunedLinearsTrainOnTheirBlocks) {
  verdant::autograd::manual_seed(8);
  auto model = verdant::nn::make_model("mlp");
  auto r = vc::parse_recipe(
      "modifiers:\n  - prune: {structure: block, scope: layer, final_sparsity: 0.95, "
      "start_epoch: 0, end_epoch: 1, update_every: 0.5}\n",
      "r.yaml");
  vc::Session s(r, model, 8);
  auto fc1 = std::dynamic_pointer_cast<verdant::nn::Linear>((*model)[1]);
  ASSERT_NE(fc1, nullptr);
  train_steps(s, *model, 1, 4);  // half-way: 95% * (1 - 0.5^3) = 83% pruned, 17% of blocks kept
  EXPECT_EQ(fc1->block_pattern(), nullptr);
  train_steps(s, *model, 2, 4);
  ASSERT_NE(fc1->block_pattern(), nullptr);
  EXPECT_NEAR(fc1->block_pattern()->density(), 0.05, 0.01);
  // The block path and the dense product agree on outputs and weight gradients.
  const Tensor x = random_input({8, 784}, 99);
  auto run = [&](bool blocks) {
    auto pattern =
        fc1->block_pattern()
            ? std::make_shared<const verdant::kernels::BlockPattern>(*fc1->block_pattern())
            : nullptr;
    if (!blocks) fc1->set_block_pattern(nullptr);
    fc1->weight().zero_grad();
    Variable y = fc1->forward(Variable(x));
    verdant::autograd::sum(y).backward();
    std::vector<float> out(y.value().data<float>(), y.value().data<float>() + y.numel());
    const Tensor& g = fc1->weight().grad();
    out.insert(out.end(), g.data<float>(), g.data<float>() + g.numel());
    fc1->set_block_pattern(pattern);
    return out;
  };
  const auto sparse = run(true), dense = run(false);
  ASSERT_EQ(sparse.size(), dense.size());
  const float* w = fc1->weight().value().data<float>();
  for (std::size_t i = 0; i < sparse.size(); ++i) {
    const std::size_t wi = i - std::min<std::size_t>(i, 8 * 300);        // weight index (gradients)
    const float expect = i >= 8 * 300 && w[wi] == 0.f ? 0.f : dense[i];  // pruned: no gradient
    ASSERT_NEAR(sparse[i], expect, 1e-4f) << i;
  }
  s.finish();
  EXPECT_EQ(fc1->block_pattern(), nullptr);
}

namespace {
// Stops the trainer after `n` optimizer steps (as a crash or a carbon pause would).
class StopAfter : public verdant::train::TrainerCallback {
 public:
  explicit StopAfter(std::int64_t n) : n_(n) {}
  void on_step_end(verdant::train::Trainer& t, const verdant::train::StepInfo& s) override {
    if (s.global_step + 1 == n_) t.request_stop("test stop");
  }

 private:
  std::int64_t n_;
};

struct RunState {
  verdant::train::Checkpoint session;  // masks and schedule state, via save_state()
  std::vector<Tensor> params;
};

// Trains a 784-32-10 MLP on noise through `recipe` for 3 epochs of 8 steps; with stop_after > 0 the
// run stops there and a fresh process-like set-up (new model, session, optimizer, trainer) resumes
// from the checkpoint and finishes.
RunState train_with_recipe(const std::string& recipe, const fs::path& ckpt,
                           std::int64_t stop_after) {
  NoiseDataset data;
  verdant::train::TrainOptions to;
  to.epochs = 3;
  to.batch_size = 32;
  to.seed = 9;
  to.checkpoint_path = ckpt;
  auto make = [&](std::shared_ptr<verdant::nn::Sequential>& model,
                  std::shared_ptr<vc::Session>& session) {
    verdant::autograd::manual_seed(7);
    model = verdant::nn::parse_model_yaml(
        "input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: 32}\n  - relu\n"
        "  - linear: {out_features: 10}\n",
        "small.yaml");
    session = std::make_shared<vc::Session>(vc::parse_recipe(recipe, "r.yaml"), model, 7);
  };
  verdant::nn::SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  std::shared_ptr<verdant::nn::Sequential> model;
  std::shared_ptr<vc::Session> session;
  make(model, session);
  {
    verdant::nn::SGD opt(model->named_parameters(), o);
    verdant::train::Trainer t(*model, opt, data, to);
    t.add_callback(std::make_shared<vc::RecipeCallback>(session));
    if (stop_after > 0) t.add_callback(std::make_shared<StopAfter>(stop_after));
    t.fit();
  }
  if (stop_after > 0) {
    make(model, session);
    verdant::nn::SGD opt(model->named_parameters(), o);
    verdant::train::Trainer t(*model, opt, data, to);
    t.add_callback(std::make_shared<vc::RecipeCallback>(session));
    t.resume_from(ckpt);
    EXPECT_EQ(t.global_step(), stop_after);
    t.fit();
  }
  RunState r;
  session->save_state(r.session);
  for (auto& [n, p] : model->named_parameters()) r.params.push_back(p.value().clone());
  return r;
}

void expect_same_run(const RunState& a, const RunState& b) {
  std::size_t masks = 0;
  for (const auto& [name, m] : a.session.tensors) {
    const Tensor* other = b.session.find_tensor(name);
    ASSERT_NE(other, nullptr) << name;
    ASSERT_EQ(other->shape(), m.shape()) << name;
    EXPECT_EQ(std::memcmp(other->raw(), m.raw(), m.nbytes()), 0) << name << " differs";
    ++masks;
  }
  EXPECT_EQ(masks, 2u);  // the two weights
  ASSERT_EQ(a.params.size(), b.params.size());
  for (std::size_t i = 0; i < a.params.size(); ++i)
    EXPECT_EQ(std::memcmp(a.params[i].raw(), b.params[i].raw(), a.params[i].nbytes()), 0) << i;
}
}  // namespace

TEST(SessionCheckpoint, ResumedRiglRunHasTheSameMasks) {
  TempDir tmp;
  const std::string recipe =
      "modifiers:\n  - sparse_train: {method: rigl, sparsity: 0.9, drop_fraction: 0.3, "
      "update_every: 3, end_epoch: 2}\n";
  const RunState whole = train_with_recipe(recipe, tmp.path / "a.vckpt", 0);
  // Stopped right after a mask update (global step 12 is a multiple of 3).
  const RunState resumed = train_with_recipe(recipe, tmp.path / "b.vckpt", 13);
  expect_same_run(whole, resumed);
  // The checkpoint itself carries the masks.
  const auto c = verdant::train::load_checkpoint(tmp.path / "b.vckpt");
  EXPECT_NE(c.find_tensor("compress/mask/1.weight"), nullptr);
  EXPECT_NE(c.find_tensor("compress/mask/3.weight"), nullptr);
  EXPECT_NE(c.find_meta("compress.rng"), nullptr);
}

TEST(SessionCheckpoint, ResumedSetRunKeepsConnectionsRegrownAtZero) {
  TempDir tmp;
  const std::string recipe =
      "modifiers:\n  - sparse_train: {method: set, sparsity: 0.8, drop_fraction: 0.3}\n";
  const RunState whole = train_with_recipe(recipe, tmp.path / "a.vckpt", 0);
  // Stopped at the end of epoch 1: the checkpoint is written right after SET regrew
  // connections, which start at exactly zero; rebuilding the masks from the zeros loses them.
  const RunState resumed = train_with_recipe(recipe, tmp.path / "b.vckpt", 8);
  expect_same_run(whole, resumed);
}

TEST(SessionCheckpoint, ResumedGradualPruningRunHasTheSameMasks) {
  TempDir tmp;
  const std::string recipe =
      "modifiers:\n  - prune: {structure: block, scope: global, final_sparsity: 0.9, "
      "start_epoch: 0, end_epoch: 2, update_every: 0.5}\n";
  const RunState whole = train_with_recipe(recipe, tmp.path / "a.vckpt", 0);
  const RunState resumed = train_with_recipe(recipe, tmp.path / "b.vckpt", 10);
  expect_same_run(whole, resumed);
}

TEST(SessionCheckpoint, MaskOfAWeightThatIsZeroByChanceSurvives) {
  verdant::autograd::manual_seed(8);
  const auto recipe = vc::parse_recipe(
      "modifiers:\n  - sparse_train: {method: rigl, sparsity: 0.5, update_every: 1}\n", "r.yaml");
  auto model = verdant::nn::make_model("mlp");
  vc::Session s(recipe, model, 8);
  s.begin(4, 2);
  // A live connection whose weight is exactly zero (as a regrown RigL weight starts).
  auto w = model->named_parameters()[0].second;
  std::int64_t live_zero = -1;
  verdant::train::Checkpoint before;
  s.save_state(before);
  const Tensor& mask = *before.find_tensor("compress/mask/1.weight");
  for (std::int64_t i = 0; i < mask.numel() && live_zero < 0; ++i)
    if (mask.data<std::uint8_t>()[i]) live_zero = i;
  ASSERT_GE(live_zero, 0);
  w.value().data<float>()[live_zero] = 0.0f;
  verdant::train::Checkpoint c;
  s.save_state(c);
  for (auto& [n, p] : model->named_parameters()) c.tensors.emplace_back("param/" + n, p.value());

  auto model2 = verdant::nn::make_model("mlp");
  for (auto& [n, p] : model2->named_parameters())
    std::memcpy(p.value().raw(), c.find_tensor("param/" + n)->raw(), p.value().nbytes());
  vc::Session s2(recipe, model2, 99);
  ASSERT_TRUE(s2.restore_state(c, "c.vckpt"));
  s2.begin(4, 2);
  verdant::train::Checkpoint after;
  s2.save_state(after);
  const Tensor& m2 = *after.find_tensor("compress/mask/1.weight");
  EXPECT_EQ(m2.data<std::uint8_t>()[live_zero], 1);
  EXPECT_EQ(std::memcmp(m2.raw(), mask.raw(), mask.nbytes()), 0);
  EXPECT_EQ(*after.find_meta("compress.rng"), *c.find_meta("compress.rng"));
}

TEST(SessionCheckpoint, MasksThatDoNotFitAreOneLineErrorsAndChangeNothing) {
  auto model = verdant::nn::make_model("mlp");
  const auto recipe = vc::parse_recipe("modifiers:\n  - prune: {final_sparsity: 0.5}\n", "r.yaml");
  vc::Session s(recipe, model, 1);
  verdant::train::Checkpoint none;
  EXPECT_FALSE(s.restore_state(none, "old.vckpt"));  // an older checkpoint: rebuilt as before
  verdant::train::Checkpoint c;
  s.save_state(c);
  // A recipe that prunes only fc1 has one mask where the checkpoint has three.
  auto only_first = vc::parse_recipe(
      "modifiers:\n  - prune: {final_sparsity: 0.5, layers: ['1.weight']}\n", "r.yaml");
  vc::Session s1(only_first, model, 1);
  try {
    s1.restore_state(c, "run/checkpoint.vckpt");
    FAIL();
  } catch (const verdant::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("run/checkpoint.vckpt: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("another recipe"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  // Wrong shape, corrupt random state.
  for (auto& [name, t] : c.tensors)
    if (name == "compress/mask/5.weight") t = Tensor({3, 3}, verdant::DType::u8);
  EXPECT_THROW(s.restore_state(c, "x.vckpt"), verdant::Error);
  verdant::train::Checkpoint d;
  s.save_state(d);
  d.set_meta("compress.rng", "not a state");
  EXPECT_THROW(s.restore_state(d, "x.vckpt"), verdant::Error);
  // Nothing was half-restored: begin() still builds the schedule from scratch.
  s.begin(4, 1);
  EXPECT_EQ(s.log().size(), 0u);
}
