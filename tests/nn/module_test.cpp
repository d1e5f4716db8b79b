#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "verdant/core/error.hpp"
#include "verdant/nn/init.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"

namespace verdant::nn {
namespace {

class Block : public Module {
 public:
  explicit Block(Generator& gen) {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(1, 2, 3, 1, 1, true, gen));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(2));
    scale = register_parameter("scale", Tensor::full({1}, 2.f));
    steps = register_buffer("steps", Tensor::zeros({1}));
  }
  Variable forward(const Variable& x) override {
    return autograd::relu(bn->forward(conv1->forward(x)));
  }
  std::string type_name() const override { return "Block"; }
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn;
  Variable scale;
  Tensor steps;
};

class Net : public Module {
 public:
  explicit Net(Generator& gen) {
    features = register_module("features", std::make_shared<Block>(gen));
    head = register_module(
        "head", std::make_shared<Sequential>(std::vector<ModulePtr>{
                    std::make_shared<Flatten>(), std::make_shared<Linear>(32, 3, true, gen)}));
  }
  Variable forward(const Variable& x) override { return head->forward(features->forward(x)); }
  std::string type_name() const override { return "Net"; }
  std::shared_ptr<Block> features;
  std::shared_ptr<Sequential> head;
};

TEST(Module, DottedNamesInRegistrationOrder) {
  Generator gen(1);
  Net net(gen);
  std::vector<std::string> names;
  for (auto& [n, p] : net.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"features.scale", "features.conv1.weight",
                                             "features.conv1.bias", "features.bn.weight",
                                             "features.bn.bias", "head.1.weight", "head.1.bias"}));
  std::vector<std::string> buffers;
  for (auto& [n, b] : net.named_buffers()) buffers.push_back(n);
  EXPECT_EQ(buffers, (std::vector<std::string>{"features.steps", "features.bn.running_mean",
                                               "features.bn.running_var",
                                               "features.bn.num_batches_tracked"}));
  EXPECT_EQ(net.named_parameters(false).size(), 0u);
  EXPECT_EQ(net.parameters().size(), 7u);
  EXPECT_EQ(net.num_parameters(), 1 + 18 + 2 + 2 + 2 + 96 + 3);
}

TEST(Module, ParametersShareStorageWithTheModule) {
  Generator gen(1);
  Net net(gen);
  auto params = net.named_parameters();
  Variable w = params[5].second;  // head.1.weight
  std::memset(w.value().raw(), 0, w.value().nbytes());
  auto* lin = dynamic_cast<Linear*>((*net.head)[1].get());
  ASSERT_NE(lin, nullptr);
  EXPECT_EQ(lin->weight().value().at(7), 0.f);
  net.named_buffers()[0].second.data<float>()[0] = 5.f;
  EXPECT_EQ(net.features->steps.at(0), 5.f);
}

TEST(Module, TrainEvalIsRecursive) {
  Generator gen(1);
  Net net(gen);
  EXPECT_TRUE(net.features->bn->is_training());
  net.eval();
  EXPECT_FALSE(net.features->bn->is_training());
  EXPECT_FALSE((*net.head)[0]->is_training());
  net.train();
  EXPECT_TRUE(net.features->conv1->is_training());
}

TEST(Module, ForwardBackwardAndZeroGrad) {
  Generator gen(3);
  Net net(gen);
  Variable x(Tensor::full({2, 1, 4, 4}, 0.5f));
  Tensor labels = Tensor::zeros({2}, DType::i32);
  autograd::cross_entropy(net(x), labels).backward();
  for (auto& [n, p] : net.named_parameters()) {
    if (n == "features.scale") continue;  // not used in forward
    ASSERT_TRUE(p.grad().defined()) << n;
  }
  net.zero_grad();
  for (auto& [n, p] : net.named_parameters())
    if (p.grad().defined())
      for (std::int64_t i = 0; i < p.numel(); ++i) ASSERT_EQ(p.grad().at(i), 0.f);
  EXPECT_EQ(net.features->bn->named_buffers()[2].second.data<std::int32_t>()[0], 1);
}

// Sequential runs a ReLU followed by a max-pool as one fused op: the same values and input
// gradient as running each layer on its own.
TEST(Module, SequentialFusesReluAndMaxPoolWithoutChangingResults) {
  Generator gen(5);
  Sequential seq;
  seq.push_back(std::make_shared<Conv2d>(1, 3, 3, 1, 1, true, gen));
  seq.push_back(std::make_shared<ReLU>());
  seq.push_back(std::make_shared<MaxPool2d>(2));
  seq.push_back(std::make_shared<ReLU>());  // last: nothing to fuse with
  Tensor input({2, 1, 6, 6}, DType::f32);
  for (std::int64_t i = 0; i < input.numel(); ++i)
    input.data<float>()[i] = std::sin(0.7f * static_cast<float>(i));
  Variable x_seq(input, true), x_each(input, true);
  Variable fused = seq.forward(x_seq);
  Variable each = x_each;
  for (std::size_t i = 0; i < seq.size(); ++i) each = seq[i]->forward(each);
  ASSERT_EQ(fused.shape(), each.shape());
  for (std::int64_t i = 0; i < fused.numel(); ++i)
    ASSERT_EQ(fused.value().at(i), each.value().at(i)) << i;
  autograd::sum(fused).backward();
  autograd::sum(each).backward();
  for (std::int64_t i = 0; i < input.numel(); ++i)
    ASSERT_EQ(x_seq.grad().at(i), x_each.grad().at(i)) << i;
}

TEST(Module, DuplicateOrDottedNamesAreRejected) {
  class Bad : public Module {
   public:
    explicit Bad(int which) {
      register_parameter("w", Tensor::zeros({1}));
      if (which == 0) register_parameter("w", Tensor::zeros({1}));
      if (which == 1) register_parameter("a.b", Tensor::zeros({1}));
    }
    Variable forward(const Variable& x) override { return x; }
    std::string type_name() const override { return "Bad"; }
  };
  EXPECT_THROW(Bad(0), Error);
  EXPECT_THROW(Bad(1), Error);
}

TEST(Layers, LinearIsXWTransposePlusBias) {
  Generator gen(1);
  Linear lin(2, 3, true, gen);
  EXPECT_EQ(lin.weight().shape(), (Shape{3, 2}));
  const float w[] = {1, 2, 3, 4, 5, 6};
  std::memcpy(lin.weight().value().raw(), w, sizeof w);
  lin.bias().value().fill(0.5f);
  Variable y = lin(Variable(Tensor::from({1, 2}, {1.f, -1.f})));
  EXPECT_FLOAT_EQ(y.value().at(0), -1.f + 0.5f);
  EXPECT_FLOAT_EQ(y.value().at(2), -1.f + 0.5f);
  Linear nb(2, 3, false, gen);
  EXPECT_FALSE(nb.bias().defined());
  EXPECT_EQ(nb.named_parameters().size(), 1u);
  EXPECT_THROW(Linear(0, 3), Error);
}

TEST(Layers, DropoutOnlyInTraining) {
  Generator gen(9);
  Dropout d(0.5f, gen);
  Variable x(Tensor::full({1000}, 1.f));
  Variable y = d(x);
  int zeros = 0;
  for (int i = 0; i < 1000; ++i) zeros += y.value().at(i) == 0.f;
  EXPECT_GT(zeros, 400);
  EXPECT_LT(zeros, 600);
  d.eval();
  EXPECT_TRUE(d(x).value().same_storage(x.value()));
}

TEST(Layers, BatchNormShapesAndEval) {
  BatchNorm1d bn(3);
  EXPECT_THROW(bn(Variable(Tensor::zeros({2, 3, 1, 1}))), Error);
  Variable y = bn(Variable(Tensor::from({2, 3}, {1, 2, 3, 3, 4, 5})));
  EXPECT_NEAR(y.value().at(0), -1.f, 1e-3);
  EXPECT_NEAR(bn.running_mean().at(0), 0.2f, 1e-6);
  bn.eval();
  Variable e = bn(Variable(Tensor::from({1, 3}, {0.2f, 0.3f, 0.4f})));
  EXPECT_NEAR(e.value().at(0), 0.f, 1e-5);
}

TEST(Init, BoundsAndStatistics) {
  Generator gen(11);
  Tensor w({200, 50}, DType::f32);
  init::kaiming_uniform(w, gen);
  const float bound = std::sqrt(2.f) * std::sqrt(3.f / 50.f);
  double s = 0, s2 = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    ASSERT_LE(std::abs(w.at(i)), bound);
    s += w.at(i);
    s2 += w.at(i) * w.at(i);
  }
  EXPECT_NEAR(s / w.numel(), 0.0, 0.01);
  EXPECT_NEAR(s2 / w.numel(), 2.0 / 50.0, 0.004);  // Var = gain^2 / fan_in
  init::xavier_normal(w, gen);
  s2 = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) s2 += w.at(i) * w.at(i);
  EXPECT_NEAR(s2 / w.numel(), 2.0 / 250.0, 0.0008);
  Tensor c({4, 3, 5, 5}, DType::f32);
  EXPECT_EQ(init::fan_in(c), 75);
  EXPECT_EQ(init::fan_out(c), 100);
  init::xavier_uniform(c, gen);
  for (std::int64_t i = 0; i < c.numel(); ++i) ASSERT_LE(std::abs(c.at(i)), std::sqrt(6.f / 175.f));
  init::kaiming_normal(c, gen);
  Tensor b({3}, DType::f32);
  EXPECT_THROW(init::kaiming_uniform(b, gen), Error);
}

}  // namespace
}  // namespace verdant::nn
