// `verdant train`: binds train::TrainingOptions to flags, runs train::run_training and prints
// the summary (progress while it runs, a table of epochs at the end).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "command.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "table.hpp"
#include "verdant/compress/training.hpp"
#include "verdant/schedule/carbon_training.hpp"
#include "verdant/train/run.hpp"

namespace verdant::cli {
namespace {

struct TrainCommand {
  train::TrainingOptions options;
  TrainingFlags flags;
  std::string recipe;  // compression recipe applied while training; empty: none
  schedule::CarbonTrainingOptions carbon;
};

void add_carbon_options(CLI::App& sub, schedule::CarbonTrainingOptions& c) {
  sub.add_option("--carbon-aware", c.policy,
                 "Carbon-aware training: wait (for the best window) or pause (checkpoint "
                 "while intensity is above --threshold); needs --grid-zone; runs on the real "
                 "clock (the series must cover now) unless --simulate-clock is given")
      ->check(CLI::IsMember({"wait", "pause"}));
  sub.add_option("--threshold", c.threshold,
                 "--carbon-aware pause: gCO2eq/kWh above which training pauses (default: the "
                 "series' median)")
      ->check(non_negative());
  sub.add_option("--simulate-clock", c.simulate_clock,
                 "--carbon-aware: replay the series from this UTC time on a simulated clock");
  sub.add_option("--sim-step", c.sim_step,
                 "--carbon-aware: simulated time per optimizer step (default 60s); live, `wait` "
                 "uses it to estimate the run's length");
  sub.add_option("--sim-power-w", c.sim_power_w,
                 "--carbon-aware: assumed power while training, W (default 250; simulated or "
                 "live)")
      ->check(positive());
  sub.add_option("--carbon-horizon", c.horizon,
                 "--carbon-aware wait: how long the start may be delayed (default 24h)");
  sub.add_option("--carbon-max-delay", c.max_delay,
                 "--carbon-aware pause: most total pausing before running on (default 7d)");
}

std::string fixed(double v, const char* format) {
  char b[32];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

void print_summary(const train::TrainingReport& r) {
  for (const auto& note : r.notes) std::printf("%s\n", note.c_str());
  TextTable table({"epoch", "train loss", "train acc", "test loss", "test acc", "lr", "time (s)"});
  for (const auto& e : r.fit.epochs) {
    const bool tested = e.eval_accuracy >= 0;
    table.add_row({std::to_string(e.epoch + 1), fixed(e.loss, "%.4f"),
                   fixed(100.0 * e.accuracy, "%.2f%%"), tested ? fixed(e.eval_loss, "%.4f") : "-",
                   tested ? fixed(100.0 * e.eval_accuracy, "%.2f%%") : "-", fixed(e.lr, "%.4g"),
                   fixed(e.seconds, "%.2f")});
  }
  std::printf("\n%s", table.str().c_str());
  if (r.test)
    std::printf("test accuracy %.2f%% on %lld samples\n", 100.0 * r.test->accuracy,
                static_cast<long long>(r.test->samples));
  std::printf("median epoch %.2f s, this run %.1f s, peak memory %.0f MiB\n",
              r.median_epoch_seconds, r.fit.train_seconds, r.peak_rss_mib);
  if (r.fit.stopped_early) std::printf("stopped early: %s\n", r.fit.stop_reason.c_str());
  if (r.files.size() >= 2) std::printf("wrote %s and %s\n", r.files[0].c_str(), r.files[1].c_str());
}

int run_train(TrainCommand& c) {
  train::TrainingOptions& o = c.options;
  const auto comm = apply_training_flags(o, c.flags);
  const bool out = reports();
  if (out) {
    o.callbacks.push_back(std::make_shared<ProgressCallback>());
    o.log = print_line;
  }
  if (!c.recipe.empty())
    o.extensions.push_back(std::make_shared<compress::RecipeExtension>(c.recipe));
  if (!c.carbon.policy.empty()) {
    c.carbon.zone = o.energy.location.grid_zone;
    c.carbon.log = print_line;
    o.extensions.push_back(std::make_shared<schedule::CarbonAwareExtension>(c.carbon));
  }
  const train::TrainingReport report = train::run_training(o);
  if (out) {
    print_summary(report);
    if (comm->steps > 0)
      std::printf(
          "distributed: %d processes on %d node(s); allreduce waits %.1f%% of the step time\n",
          dist::Communicator::world().size(), dist::Communicator::world().nodes(),
          100.0 * comm->allreduce_seconds / std::max(comm->step_seconds, 1e-9));
  }
  return 0;
}

const bool registered = register_command(
    {"train", "Train a model (default: lenet5 on Fashion-MNIST)", [](CLI::App& sub) -> Runner {
       auto c = std::make_shared<TrainCommand>();
       add_training_options(sub, c->options, c->flags);
       sub.add_option("--recipe", c->recipe,
                      "Compression recipe YAML applied while training (prune, sparse_train, "
                      "quantize, distill; see recipes/)");
       add_carbon_options(sub, c->carbon);
       return [c] { return run_train(*c); };
     }});

}  // namespace
}  // namespace verdant::cli
