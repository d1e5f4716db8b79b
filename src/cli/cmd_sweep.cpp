// `verdant sweep SWEEP.yaml`: trains and measures every trial (skipping finished ones), then
// prints the table of candidates, the Pareto fronts, the pick and why, break-even and the
// edge-or-cloud comparison.
#include <cstdio>
#include <memory>
#include <string>

#include "command.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "table.hpp"
#include "verdant/dist/sweep.hpp"
#include "verdant/sweep/run.hpp"

namespace verdant::cli {
namespace {

std::string fixed(double v, const char* format) {
  char b[48];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

bool on_front(const std::vector<std::size_t>& front, std::size_t i) {
  return std::find(front.begin(), front.end(), i) != front.end();
}

void print_report(const sweep::SweepReport& r) {
  TextTable t({"candidate", "model", "seeds", "test acc", "+- sd", "train J", "J/1k inf",
               "latency us", "bytes", "nonzero", "front"});
  for (std::size_t i = 0; i < r.summaries.size(); ++i) {
    const auto& s = r.summaries[i];
    std::string front;
    if (on_front(r.front_train_energy, i)) front += "T";
    if (on_front(r.front_inference_energy, i)) front += "I";
    if (on_front(r.front_bytes, i)) front += "B";
    if (on_front(r.front_latency, i)) front += "L";
    if (r.pick && r.pick->index == i) front += " <- pick";
    t.add_row({s.candidate, s.model, std::to_string(s.seeds), fixed(100 * s.accuracy, "%.2f%%"),
               fixed(100 * s.accuracy_std, "%.2f"), fixed(s.train_joules, "%.1f"),
               fixed(s.inference_joules_per_1000, "%.3g"), fixed(s.latency_us, "%.2f"),
               std::to_string(s.bytes), std::to_string(s.nonzero), front});
  }
  std::printf("\n%s", t.str().c_str());
  std::printf(
      "front: on the Pareto front of accuracy against T training energy, I inference energy, "
      "B bytes, L latency\n");
  if (!r.trials.empty())
    std::printf("energy: training %s; inference %s\n", r.trials[0].train_energy_label.c_str(),
                r.trials[0].inference_energy_label.c_str());
  if (r.pick)
    std::printf("%s\n%s\n", r.pick->reason.c_str(), r.break_even.text.c_str());
  else
    std::printf("no candidate within the accuracy budget (%s)\n", r.spec.budget.text().c_str());
  if (r.edge_or_cloud) std::printf("%s\n", r.edge_or_cloud->text.c_str());
  const double bookkeeping = r.total_seconds - r.trial_seconds;
  std::printf(
      "%zu trials run, %zu already done; %.1f s in all, %.2f s (%.2f%%) outside the "
      "trials\n",
      r.trials_run, r.trials_skipped, r.total_seconds, bookkeeping,
      r.total_seconds > 0 ? 100 * bookkeeping / r.total_seconds : 0.0);
}

struct SweepCommand {
  sweep::SweepOptions options;
  std::string objective;
};

int run_sweep_command(SweepCommand& c) {
  auto& o = c.options;
  if (c.objective == "total-energy") o.objective = sweep::Objective::total_energy;
  if (c.objective == "inference-energy") o.objective = sweep::Objective::inference_energy;
  if (c.objective == "bytes") o.objective = sweep::Objective::bytes;
  o.log = print_line;
  o.on_progress = [](const sweep::SweepProgress& p) {
    std::printf("[%zu/%zu] %s%s%s%s\n", p.done + 1, p.total, p.running.c_str(),
                p.eta_seconds > 0 ? (", ETA " + format_duration(p.eta_seconds)).c_str() : "",
                p.best.empty() ? "" : ", best so far ", p.best.c_str());
    std::fflush(stdout);
  };
  const sweep::SweepReport report = dist::run_distributed_sweep(o);
  if (!reports()) return 0;
  print_report(report);
  std::printf("results in %s (trials/*.json; the pick in pick/)\n", o.out.c_str());
  return 0;
}

const bool registered = register_command(
    {"sweep", "Train and measure many candidates, show the Pareto fronts and pick the balance",
     [](CLI::App& sub) -> Runner {
       auto c = std::make_shared<SweepCommand>();
       auto& o = c->options;
       sub.add_option("sweep", o.sweep, "Sweep file (YAML; see recipes/sweeps/mlp.yaml)")
           ->required();
       sub.add_option("--out", o.out, "Results folder (a rerun skips finished trials)")
           ->capture_default_str();
       sub.add_option("--epochs", o.epochs, "Override the sweep's training budget")
           ->check(positive());
       sub.add_option("--limit-train", o.limit_train, "Use only the first N training samples")
           ->check(non_negative());
       sub.add_option("--limit-test", o.limit_test, "Use only the first N test samples")
           ->check(non_negative());
       add_threads_option(sub, o.threads);
       sub.add_option("--max-accuracy-loss", o.max_accuracy_loss,
                      "Budget against dense: points (0.5) or relative (1%)");
       sub.add_option("--objective", c->objective,
                      "What the pick minimises: total-energy (training + --inferences), "
                      "inference-energy or bytes")
           ->check(CLI::IsMember({"total-energy", "inference-energy", "bytes"}));
       sub.add_option("--inferences", o.inferences,
                      "Inferences over the model's life, for total-energy and break-even")
           ->check(positive());
       add_location_options(sub, o.energy.location, o.energy.price_per_kwh);
       return [c] { return run_sweep_command(*c); };
     }});

}  // namespace
}  // namespace verdant::cli
