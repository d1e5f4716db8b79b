// `verdant eval`: accuracy and loss of a checkpoint on the Fashion-MNIST test set.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/data/dataset.hpp"
#include "verdant/train/session.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::cli {
namespace {

struct EvalFlags {
  std::string checkpoint;
  std::string data = data::kFashionMnistDefaultDir;
  std::int64_t batch_size = 256;
  std::int64_t limit_test = 0;
  int threads = 0;
  std::string json_out;
};

int run_eval(const EvalFlags& f) {
  if (f.batch_size <= 0)
    throw UsageError("--batch-size must be positive, got " + std::to_string(f.batch_size));
  if (f.threads < 0) throw UsageError("--threads must not be negative");
  set_num_threads(f.threads);
  auto ckpt = train::load_checkpoint(f.checkpoint);
  auto model = train::model_from_checkpoint(ckpt, f.checkpoint);
  auto split = train::load_fashion_mnist(f.data, train::Parts::test, 0, f.limit_test);
  train::EvalResult r = train::evaluate(*model, *split.test, f.batch_size);
  const std::string* spec = ckpt.find_meta("model.spec");
  std::printf("%s: model %s, %s\n", f.checkpoint.c_str(), spec ? spec->c_str() : "?",
              split.description.c_str());
  std::printf("test accuracy %.2f%% (%lld/%lld), loss %.4f\n", 100.0 * r.accuracy,
              static_cast<long long>(r.correct), static_cast<long long>(r.samples), r.loss);
  if (!f.json_out.empty()) {
    nlohmann::json j = {{"command", "eval"},
                        {"checkpoint", f.checkpoint},
                        {"model", spec ? *spec : ""},
                        {"accuracy", r.accuracy},
                        {"loss", r.loss},
                        {"samples", r.samples},
                        {"correct", r.correct}};
    write_file_atomic(f.json_out, j.dump(2) + "\n");
  }
  return 0;
}

const bool registered = register_command(
    {"eval", "Evaluate a checkpoint on the Fashion-MNIST test set", [](CLI::App& sub) -> Runner {
       auto f = std::make_shared<EvalFlags>();
       sub.add_option("--checkpoint", f->checkpoint, "A .vckpt file written by `verdant train`")
           ->required();
       sub.add_option("--data", f->data, "Directory with the Fashion-MNIST IDX files")
           ->capture_default_str();
       sub.add_option("--batch-size", f->batch_size, "Samples per forward pass")
           ->capture_default_str();
       sub.add_option("--limit-test", f->limit_test, "Use only the first N test images (0: all)");
       sub.add_option("--threads", f->threads, "Threads (0: all cores)");
       sub.add_option("--json", f->json_out, "Also write the result to this JSON file");
       return [f] { return run_eval(*f); };
     }});

}  // namespace
}  // namespace verdant::cli
