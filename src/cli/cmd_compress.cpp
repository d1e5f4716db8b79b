// `verdant compress --model M --recipe R`: prune / sparse-train / quantize / distill as the
// recipe says, then print what it saved (accuracy, sparsity, FLOPs, bytes, energy).
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "verdant/compress/run.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/threading.hpp"

namespace verdant::cli {
namespace {
struct CompressFlags {
  compress::RunOptions run;
  std::string data, out;
  std::int64_t epochs = -1;
  double lr = -1;
  int threads = 0;
  bool no_energy = false;
  bool quiet = false;
};

const bool registered = register_command(
    {"compress", "Apply a compression recipe (prune, sparse_train, quantize, distill) to a model",
     [](CLI::App& sub) -> Runner {
       auto f = std::make_shared<CompressFlags>();
       sub.add_option("--model", f->run.model,
                      "Checkpoint (.vckpt) to compress, or a model name/YAML file to train from "
                      "scratch (sparse training, distillation)")
           ->required();
       sub.add_option("--recipe", f->run.recipe, "Recipe YAML (see recipes/)")->required();
       sub.add_option("--data", f->data, "Fashion-MNIST directory")
           ->default_str("/usr/share/datasets/fashion-mnist");
       sub.add_option("--out", f->out, "Directory for model.vckpt, model.vcz and report.json");
       sub.add_option("--epochs", f->epochs, "Override the recipe's epochs");
       sub.add_option("--lr", f->lr, "Override the recipe's learning rate");
       sub.add_option("--batch-size", f->run.batch_size, "Batch size")->default_val(64);
       sub.add_option("--momentum", f->run.momentum, "SGD momentum")->default_val(0.9);
       sub.add_option("--weight-decay", f->run.weight_decay, "SGD weight decay")->default_val(0.0);
       sub.add_option("--seed", f->run.seed, "Seed for init, data order and masks")->default_val(0);
       sub.add_option("--threads", f->threads, "Threads (0: all)")->default_val(0);
       sub.add_option("--limit-train", f->run.limit_train, "Use the first N training images");
       sub.add_option("--limit-test", f->run.limit_test, "Use the first N test images");
       sub.add_flag("--no-energy", f->no_energy, "Do not track energy");
       sub.add_flag("--quiet", f->quiet, "No per-epoch lines");
       return [f] {
         if (f->run.batch_size <= 0) throw UsageError("--batch-size must be positive");
         if (f->threads < 0) throw UsageError("--threads must not be negative");
         if (f->run.limit_train < 0) throw UsageError("--limit-train must not be negative");
         if (f->run.limit_test < 0) throw UsageError("--limit-test must not be negative");
         if (f->epochs < -1) throw UsageError("--epochs must not be negative");
         set_num_threads(f->threads);
         if (!f->data.empty()) f->run.data_dir = f->data;
         f->run.out_dir = f->out;
         if (f->epochs >= 0) f->run.epochs = f->epochs;
         if (f->lr >= 0) f->run.lr = f->lr;
         f->run.measure_energy = !f->no_energy;
         f->run.verbose = !f->quiet;
         const auto report = compress::run_recipe(f->run);
         std::fputs(compress::format_report(report).c_str(), stdout);
         return 0;
       };
     }});
}  // namespace
}  // namespace verdant::cli
