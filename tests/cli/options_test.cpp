// The shared flags: each validator's one-line message, and library settings worded as the
// verb's own flags.
#include "options.hpp"

#include <gtest/gtest.h>

#include "verdant/core/error.hpp"

namespace verdant::cli {
namespace {

// The parse error for `args` (empty when they parse).
std::string parse_error(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes them last to first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return {};
}

TEST(Validators, SayWhatWasExpectedAndWhatCame) {
  CLI::App app;
  train::TrainingOptions o;
  TrainingFlags flags;
  add_training_options(app, o, flags);
  EXPECT_EQ(parse_error(app, {"--batch-size", "0"}), "--batch-size: must be positive, got 0");
  EXPECT_EQ(parse_error(app, {"--batch-size", "abc"}), "--batch-size: must be a number, got 'abc'");
  EXPECT_EQ(parse_error(app, {"--momentum", "1"}), "--momentum: must be in [0, 1), got 1");
  EXPECT_EQ(parse_error(app, {"--cycle-epochs", "0"}), "--cycle-epochs: must be positive, got 0");
  EXPECT_EQ(parse_error(app, {"--cycle-mult", "-2"}), "--cycle-mult: must be positive, got -2");
  EXPECT_NE(parse_error(app, {"--schedule", "linear"}).find("--schedule"), std::string::npos);
  EXPECT_EQ(parse_error(app, {"--pue", "0.5"}), "--pue: must be at least 1, got 0.5");
  EXPECT_EQ(parse_error(app, {"--pue", "nan"}), "--pue: must be at least 1, got nan");
  EXPECT_EQ(parse_error(app, {"--price", "-5"}), "--price: must be non-negative, got -5");
  EXPECT_NE(parse_error(app, {"--threads", "100000"}).find("--threads: must be a whole number"),
            std::string::npos);
  EXPECT_NE(parse_error(app, {"--threads", "2.5"}), "");
  EXPECT_EQ(parse_error(app, {"--threads", "2", "--lr", "0.1", "--epochs", "3"}), "");
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.epochs, 3);
}

TEST(SettingNames, BecomeTheVerbsFlags) {
  CLI::App app;
  train::TrainingOptions o;
  TrainingFlags flags;
  add_training_options(app, o, flags);
  std::string spec;
  app.add_option("spec", spec);
  EXPECT_EQ(flag_for_setting(app, "limit_train"), "--limit-train");
  EXPECT_EQ(flag_for_setting(app, "batch_size"), "--batch-size");
  EXPECT_EQ(flag_for_setting(app, "spec"), "SPEC");
  EXPECT_EQ(flag_for_setting(app, "no_such_setting"), "");
  const SettingError e("limit_train", "limit_train 100000 exceeds the 400 samples available");
  const auto flag = [&](const std::string& s) { return flag_for_setting(app, s); };
  EXPECT_EQ(e.worded_as(flag), "--limit-train 100000 exceeds the 400 samples available");
  // Every whole-word mention of a recorded setting, and nothing else.
  const Error hint("diverged; try a lower lr, or warmup 200 (not lr_x, nor blr)", {"lr", "warmup"});
  EXPECT_EQ(hint.worded_as(flag),
            "diverged; try a lower --lr, or --warmup 200 (not lr_x, nor blr)");
}

}  // namespace
}  // namespace verdant::cli
