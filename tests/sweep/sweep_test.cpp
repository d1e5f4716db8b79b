// The sweep's decisions: the Pareto front against a brute-force check (ties included), the
// pick within an absolute or relative accuracy budget, break-even, and the sweep file's
// errors, each "file:line:" before any training.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "support/error_helpers.hpp"
#include "verdant/compress/recipe.hpp"
#include "verdant/sweep/pareto.hpp"
#include "verdant/sweep/run.hpp"
#include "verdant/sweep/spec.hpp"

namespace verdant::sweep {
namespace {

using test_support::contains;
using test_support::error_of;

std::vector<std::size_t> brute_force_front(const std::vector<TradeOff>& p) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    bool dominated = false;
    for (std::size_t j = 0; j < p.size() && !dominated; ++j)
      dominated = p[j].accuracy >= p[i].accuracy && p[j].cost <= p[i].cost &&
                  (p[j].accuracy > p[i].accuracy || p[j].cost < p[i].cost);
    if (!dominated) out.push_back(i);
  }
  return out;
}

TEST(Pareto, MatchesBruteForceOnRandomPointsWithTies) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    // Few distinct values, so equal accuracies, equal costs and equal points all occur.
    std::uniform_int_distribution<int> n(1, 25), v(0, 6);
    std::vector<TradeOff> p(static_cast<std::size_t>(n(rng)));
    for (auto& t : p) t = {double(v(rng)), double(v(rng))};
    EXPECT_EQ(pareto_front(p), brute_force_front(p)) << "round " << round;
  }
  EXPECT_TRUE(pareto_front({}).empty());
}

TEST(Pareto, CheapestWithinTheFloor) {
  const std::vector<TradeOff> p = {{0.90, 10}, {0.895, 4}, {0.88, 1}, {0.895, 4}, {0.899, 4}};
  EXPECT_EQ(cheapest_within(p, 0.89), std::optional<std::size_t>(4));  // more accurate tie
  EXPECT_EQ(cheapest_within(p, 0.85), std::optional<std::size_t>(2));
  EXPECT_EQ(cheapest_within(p, 0.95), std::nullopt);
}

TrialResult trial(const std::string& candidate, double acc, double train_j, double inf_j,
                  std::int64_t bytes) {
  TrialResult t;
  t.id = "mlp-" + candidate + "-seed1";
  t.model = "mlp";
  t.candidate = candidate;
  t.accuracy = acc;
  t.train_joules = train_j;
  t.inference_joules_per_1000 = inf_j;
  t.bytes = bytes;
  t.latency_us = inf_j;
  return t;
}

TEST(Pick, HonoursTheBudgetInBothModes) {
  SweepSpec spec;
  spec.models = {"mlp"};
  spec.inferences = 100000;
  const std::vector<TrialResult> trials = {
      trial("dense", 0.900, 100, 10, 1000), trial("a", 0.896, 120, 2, 300),
      trial("b", 0.890, 90, 1, 100), trial("c", 0.850, 50, 0.5, 50)};
  // 0.5 points: a (0.4 lost) qualifies, b (1.0 lost) does not.
  spec.budget = parse_accuracy_budget("0.5");
  SweepReport r = analyse(spec, trials);
  ASSERT_TRUE(r.pick);
  EXPECT_EQ(r.summaries[r.pick->index].candidate, "a");
  EXPECT_DOUBLE_EQ(r.pick->objective, 120 + 100000 * 2 / 1000.0);
  EXPECT_TRUE(contains(r.pick->reason, "picked a")) << r.pick->reason;
  // 1% relative: 0.9 x 0.99 = 0.891 > 0.890: b still out; 2%: b in and cheapest.
  spec.budget = parse_accuracy_budget("1%");
  EXPECT_EQ(analyse(spec, trials).summaries[analyse(spec, trials).pick->index].candidate, "a");
  spec.budget = parse_accuracy_budget("2%");
  r = analyse(spec, trials);
  EXPECT_EQ(r.summaries[r.pick->index].candidate, "b");
  // Break-even: b trains for less and runs for less.
  ASSERT_TRUE(r.break_even.inferences);
  EXPECT_EQ(*r.break_even.inferences, 0.0);
  // a: 20 J more training, 8 J less per 1,000 inferences: 2,500 inferences to pay back.
  spec.budget = parse_accuracy_budget("0.5");
  r = analyse(spec, trials);
  ASSERT_TRUE(r.break_even.inferences);
  EXPECT_NEAR(*r.break_even.inferences, 2500, 1e-6);
  // Smallest file within 5 points: c.
  spec.objective = Objective::bytes;
  spec.budget = parse_accuracy_budget("5");
  r = analyse(spec, trials);
  EXPECT_EQ(r.summaries[r.pick->index].candidate, "c");
  // The fronts: accuracy against each cost.
  EXPECT_EQ(r.front_bytes, (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_THROW(parse_accuracy_budget("half"), SettingError);
  EXPECT_THROW(parse_accuracy_budget("-1"), SettingError);
}

TEST(SweepFile, GridExpandsWithTheDenseBaselineFirst) {
  const SweepSpec s = parse_sweep(
      "models: [mlp]\nepochs: 4\nseeds: [1, 2]\ncandidates:\n  grid:\n"
      "    sparsity: [0.9, 0, 0.8]\n    structure: [unstructured, block]\n"
      "    precision: [fp32, int8_qat]\n",
      "s.yaml");
  // 0 gives one dense point per precision; 0.8 and 0.9 two structures each.
  ASSERT_EQ(s.candidates.size(), 2u * 2 * 2 + 2);
  EXPECT_EQ(s.candidates[0].name, "dense");
  EXPECT_EQ(s.seeds, (std::vector<std::uint64_t>{1, 2}));
  for (const auto& c : s.candidates) {
    const auto recipe = compress::parse_recipe(c.recipe_yaml, c.name);  // they parse
    EXPECT_EQ(recipe.find(compress::ModifierKind::quantize) != nullptr, c.precision == "int8_qat")
        << c.name;
  }
  // The epochs override reaches the generated schedules.
  const SweepSpec longer =
      parse_sweep("models: mlp\ncandidates: {grid: {sparsity: [0.5]}}\n", "s.yaml", 10);
  EXPECT_EQ(longer.epochs, 10);
  EXPECT_TRUE(contains(longer.candidates.back().recipe_yaml, "end_epoch: 6.00"));
}

TEST(SweepFile, ErrorsNameFileAndLine) {
  auto bad = [](const std::string& text, const std::string& what) {
    const std::string msg = error_of([&] { parse_sweep(text, "s.yaml"); });
    EXPECT_TRUE(contains(msg, what)) << msg;
  };
  bad("models: [mlp]\nbogus: 1\ncandidates: {grid: {sparsity: [0.5]}}\n",
      "s.yaml:2: unknown key 'bogus'");
  bad("models: [mlp]\ncandidates:\n  grid: {}\n", "s.yaml:3: key 'grid' must be a non-empty map");
  bad("models: [mlp]\ncandidates:\n  grid:\n    sparsity: []\n", "s.yaml:4:");
  bad("models: [mlp]\ncandidates:\n  grid:\n    sparsity: [1.5]\n", "s.yaml:4: grid sparsity 1.5");
  bad("models: [mlp]\ncandidates:\n  grid:\n    colour: [red]\n",
      "s.yaml:4: unknown grid key 'colour'");
  bad("models: [mlp]\ncandidates:\n  recipes: [nowhere.yaml]\n", "s.yaml:3: recipe does not load");
  bad("models: [mlp]\ncandidates:\n  grid:\n    distill: [absent.vckpt]\n", "s.yaml:4: teacher");
  bad("models: [mlp]\nmax_accuracy_loss: lots\ncandidates: {grid: {sparsity: [0.5]}}\n",
      "s.yaml:2:");
  bad("candidates: {grid: {sparsity: [0.5]}}\n", "names no model");
  bad("models: [mlp]\n", "no candidates");
  bad("models: [mlp\n", "invalid YAML");
}

}  // namespace
}  // namespace verdant::sweep

namespace verdant::sweep {
namespace {

TEST(SweepFile, ShippedSweepsParse) {
  const std::filesystem::path dir =
      std::filesystem::path(VERDANT_SOURCE_DIR) / "recipes" / "sweeps";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    const SweepSpec s = load_sweep(entry.path());
    EXPECT_GE(s.candidates.size(), 2u) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 1);
}

}  // namespace
}  // namespace verdant::sweep
