// `verdant compress --model M --recipe R`: prune / sparse-train / quantize / distill as the
// recipe says, through the same training loop and flags as `train`, then print what it saved
// (accuracy, sparsity, FLOPs, bytes, energy).
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "verdant/compress/run.hpp"

namespace verdant::cli {
namespace {

struct CompressCommand {
  compress::RunOptions run;
  TrainingFlags flags;
  bool quiet = false;
};

int run_compress(CompressCommand& c) {
  train::TrainingOptions& o = c.run.training;
  apply_training_flags(o, c.flags);
  const bool out = reports();
  if (!c.quiet && out) {
    o.callbacks.push_back(std::make_shared<ProgressCallback>(stderr));
    o.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
  o.energy.print = !c.quiet;
  const auto report = compress::run_recipe(c.run);
  if (out) std::fputs(compress::format_report(report).c_str(), stdout);
  return 0;
}

const bool registered = register_command(
    {"compress", "Apply a compression recipe (prune, sparse_train, quantize, distill) to a model",
     [](CLI::App& sub) -> Runner {
       auto c = std::make_shared<CompressCommand>();
       add_training_options(sub, c->run.training, c->flags);
       sub.get_option("--model")
           ->description(
               "Checkpoint to compress, or a model name/YAML file to train from scratch (sparse "
               "training, distillation)")
           ->required();
       sub.get_option("--out")->description(
           "Directory for model.vckpt, model.vcz, report.json and the run's results.json, "
           "checkpoint.vckpt and energy records (default: write nothing)");
       // Epochs 0 applies a recipe without training (post-training quantization).
       sub.get_option("--epochs")->get_validator("POSITIVE")->active(false);
       sub.get_option("--epochs")->check(non_negative());
       sub.add_option("--recipe", c->run.recipe, "Recipe YAML (see recipes/)")->required();
       sub.add_flag("--quiet", c->quiet, "No progress or per-epoch lines");
       return [c] { return run_compress(*c); };
     }});

}  // namespace
}  // namespace verdant::cli
