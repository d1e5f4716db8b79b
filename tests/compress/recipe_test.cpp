#include "verdant/compress/recipe.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/error_helpers.hpp"
#include "verdant/core/error.hpp"

namespace vc = verdant::compress;

namespace {
// The error message of parsing `text`, or "" if it parses.
std::string parse_error(const std::string& text) {
  try {
    vc::parse_recipe(text, "r.yaml");
  } catch (const verdant::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Recipe, ParsesAllModifiers) {
  const auto r = vc::parse_recipe(R"(epochs: 12
lr: 0.01
modifiers:
  - prune:
      layers: ["*.weight"]
      scope: global
      init_sparsity: 0.0
      final_sparsity: 0.92
      start_epoch: 1
      end_epoch: 8
      update_every: 0.5
  - sparse_train: {method: set, epsilon: 20, distribution: er, drop_fraction: 0.3}
  - quantize: {mode: ptq, calibration: percentile, percentile: 99.9, layers: fc1}
  - distill: {teacher: t.vckpt, teacher_model: lenet5, alpha: 0.3, temperature: 2}
)",
                                  "r.yaml");
  ASSERT_EQ(r.modifiers.size(), 4u);
  EXPECT_EQ(*r.epochs, 12);
  const auto& p = r.modifiers[0];
  EXPECT_EQ(p.kind, vc::ModifierKind::prune);
  EXPECT_EQ(p.prune.scope, vc::PruneScope::global);
  EXPECT_DOUBLE_EQ(p.prune.final_sparsity, 0.92);
  EXPECT_DOUBLE_EQ(p.start_epoch, 1);
  EXPECT_DOUBLE_EQ(p.end_epoch, 8);
  EXPECT_EQ(p.line, 4);
  EXPECT_EQ(p.line_of("final_sparsity"), 8);
  EXPECT_EQ(r.modifiers[1].sparse.method, vc::SparseMethod::set);
  EXPECT_DOUBLE_EQ(*r.modifiers[1].sparse.epsilon, 20);
  EXPECT_EQ(r.modifiers[2].quant.calibration, vc::Calibration::percentile);
  EXPECT_EQ(r.modifiers[2].layers, std::vector<std::string>{"fc1"});
  EXPECT_EQ(r.modifiers[3].distill.teacher, "t.vckpt");
  EXPECT_DOUBLE_EQ(r.modifiers[3].distill.alpha, 0.3);
  EXPECT_DOUBLE_EQ(r.last_epoch(), 8);
}

TEST(Recipe, InvalidYamlNamesFileAndLine) {
  const auto e = parse_error("modifiers:\n  - prune: {final_sparsity: 0.5\n");
  EXPECT_NE(e.find("r.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
}

TEST(Recipe, UnknownModifierNamesLine) {
  const auto e = parse_error("modifiers:\n  - prune: {}\n  - shrink: {}\n");
  EXPECT_NE(e.find("r.yaml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown modifier 'shrink'"), std::string::npos) << e;
}

TEST(Recipe, UnknownKeyNamesLineAndKey) {
  const auto e = parse_error("modifiers:\n  - prune:\n      final_sparsty: 0.5\n");
  EXPECT_NE(e.find("r.yaml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'final_sparsty'"), std::string::npos) << e;
  const auto top = parse_error("modifers: []\n");
  EXPECT_NE(top.find("r.yaml:1: unknown key 'modifers'"), std::string::npos) << top;
}

TEST(Recipe, KeyThatIsNotAPlainNameNamesFileAndLine) {
  using verdant::test_support::error_of;
  auto parse = [](const std::string& text) { return [text] { vc::parse_recipe(text, "r.yaml"); }; };
  EXPECT_EQ(error_of(parse("? [a, b]\n: 1\n")), "r.yaml:1: a key must be a plain name, not a list");
  EXPECT_EQ(error_of(parse("modifiers:\n  - ? {prune: 1}\n    : {}\n")),
            "r.yaml:2: a key must be a plain name, not a map");
  EXPECT_EQ(error_of(parse("modifiers:\n  - prune:\n      ? [final_sparsity]\n      : 0.5\n")),
            "r.yaml:3: modifier 'prune': a key must be a plain name, not a list");
}

TEST(Recipe, SparsityOutsideRange) {
  for (const char* v : {"1.0", "-0.1", "1.5"}) {
    const auto e =
        parse_error(std::string("modifiers:\n  - prune:\n      final_sparsity: ") + v + "\n");
    EXPECT_NE(e.find("r.yaml:3:"), std::string::npos) << e;
    EXPECT_NE(e.find("final_sparsity"), std::string::npos) << e;
    EXPECT_NE(e.find("outside [0, 1)"), std::string::npos) << e;
  }
  const auto s = parse_error("modifiers:\n  - sparse_train: {sparsity: 1}\n");
  EXPECT_NE(s.find("r.yaml:2:"), std::string::npos) << s;
  EXPECT_EQ(parse_error("modifiers:\n  - prune: {final_sparsity: 0.0}\n"), "");
  EXPECT_EQ(parse_error("modifiers:\n  - prune: {final_sparsity: 0.999}\n"), "");
}

TEST(Recipe, WrongTypesAndValues) {
  EXPECT_NE(parse_error("modifiers:\n  - prune: {final_sparsity: lots}\n").find("a number"),
            std::string::npos);
  EXPECT_NE(parse_error("modifiers:\n  - prune: {scope: everywhere}\n").find("unknown value"),
            std::string::npos);
  EXPECT_NE(parse_error("modifiers:\n  - distill: {alpha: 0.5}\n").find("needs key 'teacher'"),
            std::string::npos);
  EXPECT_NE(
      parse_error("modifiers:\n  - prune: {start_epoch: 5, end_epoch: 2}\n").find("end_epoch"),
      std::string::npos);
  EXPECT_NE(parse_error("modifiers: []\n").find("non-empty"), std::string::npos);
  EXPECT_NE(parse_error("- prune\n").find("r.yaml:1:"), std::string::npos);
}

TEST(Recipe, BlockPruning) {
  const auto r = vc::parse_recipe(
      "modifiers:\n  - prune: {structure: block, final_sparsity: 0.92}\n"
      "  - prune:\n      structure: block\n      block: [2, 8]\n      norm: l1\n",
      "r.yaml");
  const auto& a = r.modifiers[0].prune;
  EXPECT_EQ(a.structure, vc::PruneStructure::block);
  EXPECT_EQ(a.block_rows, 4);  // default [4, 4]
  EXPECT_EQ(a.block_cols, 4);
  EXPECT_EQ(a.norm, vc::Norm::l2);  // blocks rank by L2 unless told
  const auto& b = r.modifiers[1].prune;
  EXPECT_EQ(b.block_rows, 2);
  EXPECT_EQ(b.block_cols, 8);
  EXPECT_EQ(b.norm, vc::Norm::l1);
  // Bad block keys name the line and the key, in one line.
  for (const char* v : {"[4]", "[0, 4]", "[4, 2.5]", "four", "[4, 4, 4]", "[-1, 4]"}) {
    const auto e = parse_error(
        std::string("modifiers:\n  - prune:\n      structure: block\n      block: ") + v + "\n");
    EXPECT_NE(e.find("r.yaml:4:"), std::string::npos) << v << ": " << e;
    EXPECT_NE(e.find("'block'"), std::string::npos) << v << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  const auto e = parse_error("modifiers:\n  - prune:\n      block: [4, 4]\n");
  EXPECT_NE(e.find("r.yaml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("needs structure: block"), std::string::npos) << e;
}

TEST(Recipe, PatternsSelectWeightsInModelOrder) {
  const std::vector<std::string> names = {"0.weight", "2.weight", "4.weight"};
  auto r = vc::parse_recipe("modifiers:\n  - prune:\n      layers: ['4', '0.*']\n", "r.yaml");
  EXPECT_EQ(vc::select_layers(r, r.modifiers[0], names),
            (std::vector<std::string>{"0.weight", "4.weight"}));
  r = vc::parse_recipe("modifiers:\n  - prune: {}\n", "r.yaml");
  EXPECT_EQ(vc::select_layers(r, r.modifiers[0], names), names);
  EXPECT_TRUE(vc::pattern_matches("features.conv?", "features.conv1.weight"));
  EXPECT_FALSE(vc::pattern_matches("fc", "fc1.weight"));
}

TEST(Recipe, PatternMatchingNothingNamesLineAndKey) {
  const auto r = vc::parse_recipe(
      "modifiers:\n  - prune:\n      final_sparsity: 0.5\n"
      "      layers: [fc9]\n",
      "r.yaml");
  try {
    vc::select_layers(r, r.modifiers[0], {"0.weight", "2.weight"});
    FAIL() << "expected an error";
  } catch (const verdant::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("r.yaml:4:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'fc9' matches no layer"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(Recipe, ShippedRecipesParse) {
  const std::filesystem::path dir = std::filesystem::path(VERDANT_SOURCE_DIR) / "recipes";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(vc::load_recipe(entry.path())) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 4);
}

TEST(Recipe, MissingFileNamesIt) {
  try {
    vc::load_recipe("/nonexistent/recipe.yaml");
    FAIL();
  } catch (const verdant::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/recipe.yaml"), std::string::npos);
  }
}
