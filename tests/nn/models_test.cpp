#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include <unistd.h>

#include "support/models.hpp"
#include "verdant/core/error.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/optim.hpp"

namespace verdant::nn {
namespace {

// DESIGN.md: "`mlp` is LeNet-300-100 (784-300-100-10, 266,610 parameters); `lenet5` is
// Caffe's LeNet-5 (...; 431,080 parameters)".
std::int64_t design_md_count(const std::string& model) {
  std::ifstream f(std::string(VERDANT_SOURCE_DIR) + "/../shared/DESIGN.md");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::smatch m;
  const std::regex re("`" + model + "`[^;]*?([0-9]{3},[0-9]{3}) parameters");
  if (!std::regex_search(text, m, re)) return -1;
  std::string digits = m[1].str();
  digits.erase(std::remove(digits.begin(), digits.end(), ','), digits.end());
  return std::stoll(digits);
}

TEST(Models, ParameterCountsMatchTheDesign) {
  const std::int64_t mlp = make_model("mlp")->num_parameters();
  const std::int64_t lenet5 = make_model("lenet5")->num_parameters();
  EXPECT_EQ(mlp, 266610);
  EXPECT_EQ(lenet5, 431080);
  const std::int64_t doc_mlp = design_md_count("mlp"), doc_lenet = design_md_count("lenet5");
  if (doc_mlp > 0) EXPECT_EQ(mlp, doc_mlp);
  if (doc_lenet > 0) EXPECT_EQ(lenet5, doc_lenet);
}

TEST(Models, ForwardShapesAndNames) {
  for (const std::string name : {"mlp", "lenet5"}) {
    auto m = make_model(name);
    EXPECT_EQ(m->input_shape(), (Shape{1, 28, 28}));
    Variable y = (*m)(Variable(Tensor::zeros({3, 1, 28, 28})));
    EXPECT_EQ(y.shape(), (Shape{3, 10})) << name;
  }
  auto lenet = make_model("lenet5");
  auto named = lenet->named_parameters();
  EXPECT_EQ(named.front().first, "0.weight");
  EXPECT_EQ(named.back().first, "9.bias");
  EXPECT_EQ(named[0].second.shape(), (Shape{20, 1, 5, 5}));
  EXPECT_EQ(named[6].second.shape(), (Shape{10, 500}));
}

TEST(Models, UnknownNameIsAUsageErrorListingValidNames) {
  try {
    make_model("resnet");
    FAIL();
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet"), std::string::npos);
    EXPECT_NE(msg.find("mlp"), std::string::npos);
    EXPECT_NE(msg.find("lenet5"), std::string::npos);
  }
}

TEST(Models, SameSeedSameWeightsDifferentSeedDifferent) {
  Generator a(7), b(7), c(8);
  auto ma = make_model("lenet5", a), mb = make_model("lenet5", b), mc = make_model("lenet5", c);
  auto pa = ma->parameters(), pb = mb->parameters(), pc = mc->parameters();
  bool any_diff = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    ASSERT_EQ(std::memcmp(pa[i].value().raw(), pb[i].value().raw(), pa[i].value().nbytes()), 0);
    any_diff = any_diff ||
               std::memcmp(pa[i].value().raw(), pc[i].value().raw(), pa[i].value().nbytes()) != 0;
  }
  EXPECT_TRUE(any_diff);
}

TEST(Models, SeededTrainingIsBitReproducible) {
  auto train = [](std::uint64_t seed) {
    Generator gen(seed);
    auto m = make_model("mlp", gen);
    m->push_back(std::make_shared<Dropout>(0.2f, gen));  // exercises the dropout stream too
    SGD opt(m->named_parameters(), {.lr = 0.05, .momentum = 0.9});
    Tensor x({8, 1, 28, 28}, DType::f32);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = gen.uniform();
    Tensor y = Tensor::zeros({8}, DType::i32);
    for (int i = 0; i < 8; ++i) y.data<std::int32_t>()[i] = i % 10;
    for (int s = 0; s < 3; ++s) {
      opt.zero_grad();
      autograd::cross_entropy((*m)(Variable(x)), y).backward();
      opt.step();
    }
    return m->parameters()[0].value().clone();
  };
  Tensor a = train(3), b = train(3);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
}

TEST(Models, MlpOverfitsASmallBatch) {
  Generator gen(1);
  auto m = make_model("mlp", gen);
  SGD opt(m->named_parameters(), {.lr = 0.05, .momentum = 0.9});
  Tensor x({16, 1, 28, 28}, DType::f32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = gen.uniform();
  Tensor y = Tensor::zeros({16}, DType::i32);
  for (int i = 0; i < 16; ++i) y.data<std::int32_t>()[i] = i % 10;
  float first = 0, last = 0;
  for (int s = 0; s < 30; ++s) {
    opt.zero_grad();
    Variable loss = autograd::cross_entropy((*m)(Variable(x)), y);
    if (s == 0) first = loss.item();
    last = loss.item();
    loss.backward();
    opt.step();
  }
  EXPECT_GT(first, 1.5f);
  EXPECT_LT(last, 0.1f);
}

// ------------------------------------------------------------------ YAML
std::shared_ptr<Sequential> parse(const std::string& text) {
  return parse_model_yaml(text, "m.yaml");
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ModelYaml, BuildsTheLayerStackWithInferredShapes) {
  auto m = parse(R"(input: [1, 28, 28]
layers:
  - conv2d: {out_channels: 20, kernel: 5}
  - relu
  - maxpool2d: {kernel: 2}
  - conv2d: {out_channels: 50, kernel: 5}
  - relu
  - maxpool2d: {kernel: 2}
  - flatten
  - linear: {out_features: 500}
  - relu
  - linear: {out_features: 10}
)");
  EXPECT_EQ(m->num_parameters(), 431080);  // the same network as lenet5
  EXPECT_EQ((*m)(Variable(Tensor::zeros({2, 1, 28, 28}))).shape(), (Shape{2, 10}));
  auto all = parse(R"(input: [3, 8, 8]
layers:
  - conv2d: {out_channels: 4, kernel: 3, stride: 1, padding: 1, bias: false}
  - batchnorm2d
  - gelu
  - avgpool2d: {kernel: 2, stride: 2}
  - tanh
  - flatten
  - dropout: {p: 0.1}
  - linear: {out_features: 6}
  - batchnorm1d: {eps: 0.001, momentum: 0.2}
  - sigmoid
  - linear: {out_features: 2, bias: false}
)");
  EXPECT_EQ(all->size(), 11u);
  EXPECT_EQ((*all)(Variable(Tensor::zeros({4, 3, 8, 8}))).shape(), (Shape{4, 2}));
  EXPECT_EQ(all->num_parameters(), 4 * 27 + 8 + 64 * 6 + 6 + 12 + 12);
}

// Every layer type the YAML knows, through the writer and back: the same layers, hyper-
// parameters and outputs (weights copied over).
TEST(ModelYaml, WriterRoundTripsEveryLayerType) {
  auto m = parse(test_support::kEveryLayerYaml);
  EXPECT_EQ(summarize(*m).layers.back().output_shape, (Shape{3}));
  auto* depthwise = dynamic_cast<Conv2d*>((*m)[3].get());
  ASSERT_NE(depthwise, nullptr);
  EXPECT_EQ(depthwise->weight().shape(), (Shape{8, 1, 3, 3}));
  const std::string yaml = model_yaml(*m);
  EXPECT_NE(yaml.find("groups: 8"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("dilation: 2"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("leakyrelu: {negative_slope: 0.125}"), std::string::npos) << yaml;
  auto back = parse_model_yaml(yaml, "written.yaml");
  ASSERT_EQ(back->size(), m->size());
  for (std::size_t i = 0; i < m->size(); ++i) {
    EXPECT_EQ((*back)[i]->type_name(), (*m)[i]->type_name()) << i;
    EXPECT_EQ((*back)[i]->describe(), (*m)[i]->describe()) << i;
  }
  EXPECT_EQ(model_yaml(*back), yaml);
  auto src = m->named_parameters();
  auto dst = back->named_parameters();
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i)
    std::copy_n(src[i].second.value().data<float>(), src[i].second.numel(),
                dst[i].second.value().data<float>());
  m->eval();
  back->eval();
  Tensor x({2, 4, 12, 12}, DType::f32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * i);
  NoGradGuard g;
  const Variable a = (*m)(Variable(x)), b = (*back)(Variable(x));
  for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.value().at(i), b.value().at(i));
  // The last layer is a softmax: rows sum to one.
  EXPECT_NEAR(a.value().at(0) + a.value().at(1) + a.value().at(2), 1.f, 1e-6);
}

TEST(FoldBatchNorm, SameOutputsInEvalModeWithFewerLayers) {
  auto m = parse(R"(input: [3, 6, 6]
layers:
  - conv2d: {out_channels: 4, kernel: 3, bias: false}
  - batchnorm2d: {eps: 0.01}
  - relu
  - batchnorm2d
  - flatten
  - linear: {out_features: 5}
  - batchnorm1d
)");
  test_support::set_batch_norm_statistics(*m, 0.1f);
  for (auto& [name, p] : m->named_parameters())
    for (std::int64_t i = 0; i < p.numel(); ++i) p.value().data<float>()[i] += 0.05f * (i % 7);
  m->eval();
  auto f = fold_batch_norm(*m);
  // The BatchNorm after the ReLU stays; the other two are folded.
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ((*f)[2]->type_name(), "BatchNorm2d");
  EXPECT_TRUE(dynamic_cast<Conv2d*>((*f)[0].get())->options().bias);
  Tensor x({2, 3, 6, 6}, DType::f32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::cos(0.1f * i);
  NoGradGuard g;
  const Variable a = (*m)(Variable(x)), b = (*f)(Variable(x));
  ASSERT_EQ(a.shape(), b.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.value().at(i), b.value().at(i), 1e-5);
}

TEST(Layers, LeakyReluDepthwiseAndGroupErrors) {
  LeakyReLU lr(0.2f);
  NoGradGuard g;
  const Variable y = lr(Variable(Tensor::from({4}, {-2.f, -0.5f, 0.f, 3.f})));
  EXPECT_FLOAT_EQ(y.value().at(0), -0.4f);
  EXPECT_FLOAT_EQ(y.value().at(1), -0.1f);
  EXPECT_FLOAT_EQ(y.value().at(3), 3.f);
  EXPECT_THROW(Conv2d(Conv2dOptions{.in_channels = 3, .out_channels = 4, .kernel = 3, .groups = 2}),
               Error);
  EXPECT_NE(
      error_of("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel: 3, groups: 2}\n")
          .find("m.yaml:3: conv2d groups 2 must divide"),
      std::string::npos);
  EXPECT_NE(error_of("input: [1, 8, 8]\nlayers:\n  - softmax\n").find("softmax needs a flat input"),
            std::string::npos);
  EXPECT_NE(
      error_of("input: [1, 6, 6]\nlayers:\n  - conv2d: {out_channels: 1, kernel: 3, dilation: 3}\n")
          .find("conv2d kernel 3 (dilation 3) is larger"),
      std::string::npos);
}

TEST(ModelYaml, ErrorsNameFileAndLine) {
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - relu\n  - conv3d: {kernel: 3}\n")
                .rfind("m.yaml:4: unknown layer 'conv3d'", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - conv2d: {out_channels: 2, kernal: 3}\n")
                .rfind("m.yaml:3: unknown key 'kernal' for conv2d", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - conv2d: {out_channels: 2}\n")
                .rfind("m.yaml:3: conv2d needs 'kernel'", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - linear: {out_features: 10}\n")
                .rfind("m.yaml:3: linear needs a flat input", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: -1}\n")
                .rfind("m.yaml:4: 'out_features' must be positive", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: ten}\n")
                .rfind("m.yaml:4: 'out_features' must be an integer", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 4, 4]\nlayers:\n  - conv2d: {out_channels: 2, kernel: 5}\n")
                .rfind("m.yaml:3: conv2d kernel 5 is larger", 0),
            0u);
  EXPECT_EQ(
      error_of("input: [1, 28, 28]\nlayer:\n  - relu\n").rfind("m.yaml:2: unknown key 'layer'", 0),
      0u);
  EXPECT_EQ(error_of("layers:\n  - relu\n").rfind("m.yaml: missing 'input'", 0), 0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers: [\n").rfind("m.yaml:", 0), 0u);  // YAML syntax
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - relu: {inplace: true}\n")
                .rfind("m.yaml:3: unknown key 'inplace' for relu", 0),
            0u);
  EXPECT_EQ(error_of("- 1\n- 2\n").rfind("m.yaml: a model file must be a map", 0), 0u);
  for (const std::string text :
       {"input: [1, 28, 28]\nlayers:\n  - conv3d: {kernel: 3}\n", "input: [0]\nlayers: [relu]\n"}) {
    const std::string e = error_of(text);
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_NE(e, "(no error)");
  }
}

TEST(ModelYaml, LayersTooLargeToHoldAreRefusedNotAllocated) {
  // A layer of 784 x 1e11 weights used to escape as std::bad_alloc naming no file, and one of
  // 784 x 3e6 quietly took 9 GB; a checkpoint's model.yaml reaches this parser too.
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: "
                     "100000000000}\n"),
            "m.yaml:4: linear's weights would hold more than 268435456 values per layer, this "
            "library's limit");
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: "
                     "3000000}\n")
                .rfind("m.yaml:4: linear's weights would hold more than", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 100000, 100000]\nlayers: [relu]\n")
                .rfind("m.yaml:1: 'input' would hold more than", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - conv2d: {out_channels: 100000, kernel: "
                     "3, padding: 4611686018427387904}\n")
                .rfind("m.yaml:3: conv2d's padding would hold more than", 0),
            0u);
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - conv2d: {out_channels: 400000, kernel: "
                     "3, padding: 1}\n")
                .rfind("m.yaml:3: conv2d's output would hold more than", 0),
            0u);
  // A layer well within the limit still parses.
  EXPECT_EQ(error_of("input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: "
                     "10}\n"),
            "(no error)");
}

TEST(ModelYaml, KeyThatIsNotAPlainNameNamesFileAndLine) {
  EXPECT_EQ(error_of("? [a, b]\n: 1\n"), "m.yaml:1: a key must be a plain name, not a list");
  EXPECT_EQ(error_of("input: [4]\nlayers:\n  - ? [linear]\n    : {out_features: 2}\n"),
            "m.yaml:3: a key must be a plain name, not a list");
  EXPECT_EQ(error_of("input: [4]\nlayers:\n  - linear: {? {out_features: 1} : 2}\n"),
            "m.yaml:3: a key must be a plain name, not a map");
}

TEST(ModelYaml, LoadFromFileAndMissingFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("verdant_nn_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "tiny.yaml";
  std::ofstream(path) << "input: [4]\nlayers:\n  - linear: {out_features: 2}\n  - bogus\n";
  try {
    load_model(path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ":4: unknown layer 'bogus'", 0), 0u)
        << e.what();
  }
  std::ofstream(path) << "input: [4]\nlayers:\n  - linear: {out_features: 2}\n";
  EXPECT_EQ(load_model(path.string())->num_parameters(), 10);
  EXPECT_THROW(load_model((dir / "missing.yaml").string()), Error);
  EXPECT_EQ(load_model("mlp")->num_parameters(), 266610);
  std::filesystem::remove_all(dir);
}

TEST(Summary, LayersShapesParamsFlops) {
  auto m = make_model("lenet5");
  ModelSummary s = summarize(*m);
  ASSERT_EQ(s.layers.size(), 10u);
  EXPECT_EQ(s.layers[0].output_shape, (Shape{20, 24, 24}));
  EXPECT_EQ(s.layers[5].output_shape, (Shape{50, 4, 4}));
  EXPECT_EQ(s.layers[0].flops, 2 * 25 * 20 * 24 * 24);
  EXPECT_EQ(s.layers[7].flops, 2 * 800 * 500);
  EXPECT_EQ(s.total_parameters, 431080);
  EXPECT_TRUE(m->is_training());  // restored
  const std::string text = format_summary(s);
  EXPECT_NE(text.find("431,080"), std::string::npos);
  EXPECT_NE(text.find("Conv2d"), std::string::npos);
  ModelSummary mlp = summarize(*make_model("mlp"));
  EXPECT_EQ(mlp.total_flops, 2 * 266200 + 400);  // MACs x2 plus ReLUs (300 + 100)
}

}  // namespace
}  // namespace verdant::nn
